/* The agent and CPython's cyclic collector (issue 17): the agent's permanent objects kept out
 * of the collector's generations, and the timer of its pauses.
 *
 * Every full collection walks every object in the three generation lists. The agent's modules,
 * classes, functions and descriptors live until the process exits and can never be garbage,
 * yet they were walked by every full collection of the app (~4,000 objects for a started
 * agent). `settle(objects)` moves such objects out of the generation lists into a list of our
 * own, as `gc.freeze()` moves everything into the permanent generation, but only what the
 * caller names (introspect/agent/permanent.py picks them). They stay tracked: an object that
 * is deallocated later unlinks itself from our list exactly as it would from a generation, so
 * replacing or deleting one is safe; one that became part of a garbage cycle would not be
 * collected (the same contract as gc.freeze()), which is why this list holds definitions only.
 * The agent's run-time state goes to a second list, `settle_runtime(objects)`, which
 * `release()` moves back into the oldest generation as a whole (as gc.unfreeze() does): the
 * agent releases and settles it again every pass and releases it at stop(), so a settled
 * object that became garbage is the collector's again, and a stopped agent is collectable.
 *
 * Generational collectors only (CPython 3.11 to 3.14 with the GIL): a collection visits the
 * objects of the generations it collects and ignores every other object it reaches, whatever
 * list that object is in. Elsewhere (a free-threaded build, or 3.14's incremental collector,
 * which marks across lists) settle() moves nothing and returns 0.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <time.h>

#if !defined(Py_GIL_DISABLED)
#define Py_BUILD_CORE 1
#undef _PyGC_FINALIZED /* 3.12: Python.h's macro of that name would clash with the header's */
#include <internal/pycore_gc.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_pystate.h>
#if !defined(_PyGC_NEXT_MASK_OLD_SPACE_1)
#define HEAP_SETTLE 1
#endif
#endif

#ifdef HEAP_SETTLE
/* Circular lists like a generation's head; static storage, so they outlive the interpreter
 * state (objects freed after finalization still unlink from them safely). `settled_head`
 * holds definitions, for good; `runtime_head` the agent's run-time state, until `release()`
 * moves it back into the oldest generation (a settled object that became garbage is then
 * collected as usual). */
static PyGC_Head settled_head;
static PyGC_Head runtime_head;

static void
list_init(PyGC_Head *head)
{
    if (head->_gc_next == 0) {
        head->_gc_next = (uintptr_t)head;
        head->_gc_prev = (uintptr_t)head;
    }
}

static void
move_to(PyGC_Head *gc, PyGC_Head *head)
{
    PyGC_Head *prev = _PyGCHead_PREV(gc);
    PyGC_Head *next = _PyGCHead_NEXT(gc);
    _PyGCHead_SET_NEXT(prev, next);
    _PyGCHead_SET_PREV(next, prev);
    /* A list head's _gc_prev has no flag bits; an object's keeps its FINALIZED bit. */
    PyGC_Head *last = (PyGC_Head *)head->_gc_prev;
    _PyGCHead_SET_NEXT(last, gc);
    _PyGCHead_SET_PREV(gc, last);
    _PyGCHead_SET_NEXT(gc, head);
    head->_gc_prev = (uintptr_t)gc;
}

/* Moves each tracked object of `fast` that is not marked COLLECTING (a collection's, or one
 * our caller marked as settled already) to the list `head`; `mark`: marks each one moved, so an
 * object listed twice moves once (the caller clears the marks). Returns how many moved. */
static Py_ssize_t
move_items(PyObject *fast, PyGC_Head *head, int mark)
{
    Py_ssize_t moved = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    PyObject **items = PySequence_Fast_ITEMS(fast);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *op = items[i];
        if (!PyObject_IS_GC(op) || !_PyObject_GC_IS_TRACKED(op)) {
            continue;
        }
        PyGC_Head *gc = _Py_AS_GC(op);
        if (gc->_gc_prev & _PyGC_PREV_MASK_COLLECTING) {
            continue;
        }
        move_to(gc, head);
        if (mark) {
            gc->_gc_prev |= _PyGC_PREV_MASK_COLLECTING;
        }
        moved++;
    }
    return moved;
}

/* Marks every object of a list with the COLLECTING bit (set: 1, clear: 0). Only while no
 * collection runs and with the GIL held: no one else reads the bit meanwhile. */
static void
mark_list(PyGC_Head *head, int set)
{
    for (PyGC_Head *gc = (PyGC_Head *)head->_gc_next; gc != head;
         gc = (PyGC_Head *)gc->_gc_next) {
        if (set) {
            gc->_gc_prev |= _PyGC_PREV_MASK_COLLECTING;
        }
        else {
            gc->_gc_prev &= ~(uintptr_t)_PyGC_PREV_MASK_COLLECTING;
        }
    }
}

static Py_ssize_t
list_length(PyGC_Head *head)
{
    Py_ssize_t n = 0;
    for (PyGC_Head *gc = (PyGC_Head *)head->_gc_next; gc != head;
         gc = (PyGC_Head *)gc->_gc_next) {
        n++;
    }
    return n;
}

/* The main interpreter, no collection running: the only state in which our lists and the
 * generations may change (a finalizer run by a collection can let the GIL go to our thread:
 * the collection's working lists must not change under it). */
static int
may_move(void)
{
    PyInterpreterState *interp = _PyInterpreterState_GET();
    return interp == PyInterpreterState_Main() && !interp->gc.collecting;
}
#endif

PyDoc_STRVAR(settle_doc,
"settle(objects) -> int\n\n"
"Move each tracked object of the sequence out of the collector's generations, for good. Returns\n"
"how many were moved, 0 where this interpreter cannot (free-threaded, incremental collector),\n"
"or -1 when a collection is in progress or this is not the main interpreter (try again later).");

static PyObject *
settle(PyObject *module, PyObject *objects)
{
    PyObject *fast = PySequence_Fast(objects, "settle() takes a sequence of objects");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t moved = 0;
#ifdef HEAP_SETTLE
    if (!may_move()) {
        Py_DECREF(fast);
        return PyLong_FromLong(-1);
    }
    moved = move_items(fast, &settled_head, 0);
#endif
    Py_DECREF(fast);
    return PyLong_FromSsize_t(moved);
}

PyDoc_STRVAR(settle_runtime_doc,
"settle_runtime(objects) -> int\n\n"
"Move each tracked object of the sequence that is in one of the collector's generations into\n"
"the run-time list, until release(). An object already settled (either list) stays where it\n"
"is. Returns how many were moved; 0 and -1 as settle().");

static PyObject *
settle_runtime(PyObject *module, PyObject *objects)
{
    PyObject *fast = PySequence_Fast(objects, "settle_runtime() takes a sequence of objects");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t moved = 0;
#ifdef HEAP_SETTLE
    if (!may_move()) {
        Py_DECREF(fast);
        return PyLong_FromLong(-1);
    }
    /* What is settled already is marked, so that a definition never joins the run-time list
     * (release() would hand it back to the collector) and nothing is moved twice. */
    mark_list(&settled_head, 1);
    mark_list(&runtime_head, 1);
    moved = move_items(fast, &runtime_head, 1);
    mark_list(&settled_head, 0);
    mark_list(&runtime_head, 0);
#endif
    Py_DECREF(fast);
    return PyLong_FromSsize_t(moved);
}

PyDoc_STRVAR(release_doc,
"release() -> int\n\n"
"Move every object of the run-time list back into the collector's oldest generation, where a\n"
"full collection examines it again. Returns how many; -1 as settle() (try again later).");

static PyObject *
release(PyObject *module, PyObject *unused)
{
    Py_ssize_t n = 0;
#ifdef HEAP_SETTLE
    if (!may_move()) {
        return PyLong_FromLong(-1);
    }
    n = list_length(&runtime_head);
    if (n > 0) {
        /* Spliced at the end of the oldest generation, as gc.unfreeze() does. */
        PyInterpreterState *interp = _PyInterpreterState_GET();
        PyGC_Head *old = &interp->gc.generations[NUM_GENERATIONS - 1].head;
        PyGC_Head *first = (PyGC_Head *)runtime_head._gc_next;
        PyGC_Head *last = (PyGC_Head *)runtime_head._gc_prev;
        PyGC_Head *tail = (PyGC_Head *)old->_gc_prev;
        _PyGCHead_SET_NEXT(tail, first);
        _PyGCHead_SET_PREV(first, tail);
        _PyGCHead_SET_NEXT(last, old);
        old->_gc_prev = (uintptr_t)last;
        runtime_head._gc_next = (uintptr_t)&runtime_head;
        runtime_head._gc_prev = (uintptr_t)&runtime_head;
    }
#endif
    return PyLong_FromSsize_t(n);
}

PyDoc_STRVAR(settled_count_doc,
"settled_count() -> int\n\nHow many objects are in the definitions' settled list now.");

static PyObject *
settled_count(PyObject *module, PyObject *unused)
{
#ifdef HEAP_SETTLE
    return PyLong_FromSsize_t(list_length(&settled_head));
#else
    return PyLong_FromLong(0);
#endif
}

PyDoc_STRVAR(runtime_count_doc,
"runtime_count() -> int\n\nHow many objects are in the run-time list now.");

static PyObject *
runtime_count(PyObject *module, PyObject *unused)
{
#ifdef HEAP_SETTLE
    return PyLong_FromSsize_t(list_length(&runtime_head));
#else
    return PyLong_FromLong(0);
#endif
}


/* PauseTimer: the agent's `gc.callbacks` entry. It runs inside every collection, twice, so it
 * is part of every pause it measures: in C it costs a clock read and a few additions, where
 * the Python callback and histogram cost ~2-3 us a call (~2 % of all pause time under task
 * churn). Per generation: counts per upper bound (the last is +Inf), sum and count. */

#define MAX_BUCKETS 32
#define GENERATIONS 3

typedef struct {
    PyObject_HEAD
    double bounds[MAX_BUCKETS];
    Py_ssize_t nbounds;
    double started;
    unsigned long long counts[GENERATIONS][MAX_BUCKETS + 1];
    double sums[GENERATIONS];
    unsigned long long observed[GENERATIONS];
    double total;
    double max;
} PauseTimer;

static PyObject *generation_key;  /* "generation", interned */

static double
now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
PauseTimer_init(PauseTimer *self, PyObject *args, PyObject *kwds)
{
    PyObject *bounds;
    if (!PyArg_ParseTuple(args, "O:PauseTimer", &bounds)) {
        return -1;
    }
    PyObject *fast = PySequence_Fast(bounds, "PauseTimer() takes a sequence of upper bounds");
    if (fast == NULL) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > MAX_BUCKETS) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "at most %d bounds", MAX_BUCKETS);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        double bound = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(fast, i));
        if (bound == -1.0 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        self->bounds[i] = bound;
    }
    Py_DECREF(fast);
    self->nbounds = n;
    return 0;
}

static PyObject *
PauseTimer_call(PauseTimer *self, PyObject *args, PyObject *kwds)
{
    PyObject *phase, *info;
    if (!PyArg_UnpackTuple(args, "PauseTimer", 2, 2, &phase, &info)) {
        return NULL;
    }
    double now = now_seconds();
    if (PyUnicode_Check(phase) && PyUnicode_GET_LENGTH(phase) == 5) {  /* "start" */
        self->started = now;
        Py_RETURN_NONE;
    }
    if (self->started == 0.0) {  /* installed during a collection: no start seen */
        Py_RETURN_NONE;
    }
    double pause = now - self->started;
    self->started = 0.0;
    long gen = 0;
    if (PyDict_Check(info)) {
        PyObject *value = PyDict_GetItemWithError(info, generation_key);
        if (value != NULL) {
            gen = PyLong_AsLong(value);
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();  /* never an error inside the host's collection */
            gen = 0;
        }
    }
    if (gen >= 0 && gen < GENERATIONS) {
        Py_ssize_t i = 0;
        while (i < self->nbounds && self->bounds[i] < pause) {  /* bisect_left */
            i++;
        }
        self->counts[gen][i]++;
        self->sums[gen] += pause;
        self->observed[gen]++;
    }
    self->total += pause;
    if (pause > self->max) {
        self->max = pause;
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(read_doc,
"read() -> (counts, sums, observed, total, max)\n\n"
"Per generation: counts per bucket (the last is +Inf), the sum and the number of pauses; then\n"
"the total and the longest pause, in seconds.");

static PyObject *
PauseTimer_read(PauseTimer *self, PyObject *unused)
{
    PyObject *counts = PyList_New(GENERATIONS);
    PyObject *sums = PyList_New(GENERATIONS);
    PyObject *observed = PyList_New(GENERATIONS);
    if (counts == NULL || sums == NULL || observed == NULL) {
        goto error;
    }
    for (int gen = 0; gen < GENERATIONS; gen++) {
        PyObject *row = PyList_New(self->nbounds + 1);
        if (row == NULL) {
            goto error;
        }
        PyList_SET_ITEM(counts, gen, row);
        for (Py_ssize_t i = 0; i <= self->nbounds; i++) {
            PyObject *n = PyLong_FromUnsignedLongLong(self->counts[gen][i]);
            if (n == NULL) {
                goto error;
            }
            PyList_SET_ITEM(row, i, n);
        }
        PyObject *sum = PyFloat_FromDouble(self->sums[gen]);
        PyObject *count = PyLong_FromUnsignedLongLong(self->observed[gen]);
        if (sum == NULL || count == NULL) {
            Py_XDECREF(sum);
            Py_XDECREF(count);
            goto error;
        }
        PyList_SET_ITEM(sums, gen, sum);
        PyList_SET_ITEM(observed, gen, count);
    }
    return Py_BuildValue("(NNNdd)", counts, sums, observed, self->total, self->max);
error:
    Py_XDECREF(counts);
    Py_XDECREF(sums);
    Py_XDECREF(observed);
    return NULL;
}

static PyMethodDef PauseTimer_methods[] = {
    {"read", (PyCFunction)PauseTimer_read, METH_NOARGS, read_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PauseTimerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "introspect.agent._gc_accel.PauseTimer",
    .tp_basicsize = sizeof(PauseTimer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "PauseTimer(bounds): a gc.callbacks entry timing each collection's pause",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)PauseTimer_init,
    .tp_call = (ternaryfunc)PauseTimer_call,
    .tp_methods = PauseTimer_methods,
};

static PyMethodDef heap_methods[] = {
    {"settle", settle, METH_O, settle_doc},
    {"settle_runtime", settle_runtime, METH_O, settle_runtime_doc},
    {"release", release, METH_NOARGS, release_doc},
    {"settled_count", settled_count, METH_NOARGS, settled_count_doc},
    {"runtime_count", runtime_count, METH_NOARGS, runtime_count_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef heap_module = {
    PyModuleDef_HEAD_INIT, "_gc_accel",
    "The agent and the cyclic collector: its definitions and run-time state out of the "
    "generations, its pause timer.", -1, heap_methods,
};

PyMODINIT_FUNC
PyInit__gc_accel(void)
{
#ifdef HEAP_SETTLE
    list_init(&settled_head);
    list_init(&runtime_head);
#endif
    if (generation_key == NULL) {
        generation_key = PyUnicode_InternFromString("generation");
        if (generation_key == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&PauseTimerType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&heap_module);
    if (m == NULL) {
        return NULL;
    }
#ifdef HEAP_SETTLE
    int available = 1;
#else
    int available = 0;
#endif
    Py_INCREF(&PauseTimerType);
    if (PyModule_AddIntConstant(m, "AVAILABLE", available) < 0
            || PyModule_AddObject(m, "PauseTimer", (PyObject *)&PauseTimerType) < 0) {
        Py_DECREF(&PauseTimerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
