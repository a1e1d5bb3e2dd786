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
 * collected (the same contract as gc.freeze()), which is why only definitions are settled.
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
/* A circular list like a generation's head; static storage, so it outlives the interpreter
 * state (objects freed after finalization still unlink from it safely). */
static PyGC_Head settled_head;

static void
settled_init(void)
{
    if (settled_head._gc_next == 0) {
        settled_head._gc_next = (uintptr_t)&settled_head;
        settled_head._gc_prev = (uintptr_t)&settled_head;
    }
}

static void
move_to_settled(PyGC_Head *gc)
{
    PyGC_Head *prev = _PyGCHead_PREV(gc);
    PyGC_Head *next = _PyGCHead_NEXT(gc);
    _PyGCHead_SET_NEXT(prev, next);
    _PyGCHead_SET_PREV(next, prev);
    /* A list head's _gc_prev has no flag bits; an object's keeps its FINALIZED bit. */
    PyGC_Head *last = (PyGC_Head *)settled_head._gc_prev;
    _PyGCHead_SET_NEXT(last, gc);
    _PyGCHead_SET_PREV(gc, last);
    _PyGCHead_SET_NEXT(gc, &settled_head);
    settled_head._gc_prev = (uintptr_t)gc;
}
#endif

PyDoc_STRVAR(settle_doc,
"settle(objects) -> int\n\n"
"Move each tracked object of the sequence out of the collector's generations. Returns how many\n"
"were moved, 0 where this interpreter cannot (free-threaded, incremental collector), or -1\n"
"when a collection is in progress or this is not the main interpreter (try again later).");

static PyObject *
settle(PyObject *module, PyObject *objects)
{
    PyObject *fast = PySequence_Fast(objects, "settle() takes a sequence of objects");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t moved = 0;
#ifdef HEAP_SETTLE
    PyInterpreterState *interp = _PyInterpreterState_GET();
    if (interp != PyInterpreterState_Main() || interp->gc.collecting) {
        /* A finalizer run by a collection can let the GIL go to our thread: the collection's
         * working lists must not change under it. */
        Py_DECREF(fast);
        return PyLong_FromLong(-1);
    }
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
        move_to_settled(gc);
        moved++;
    }
#endif
    Py_DECREF(fast);
    return PyLong_FromSsize_t(moved);
}

PyDoc_STRVAR(settled_count_doc,
"settled_count() -> int\n\nHow many objects are in the settled list now.");

static PyObject *
settled_count(PyObject *module, PyObject *unused)
{
    Py_ssize_t n = 0;
#ifdef HEAP_SETTLE
    for (PyGC_Head *gc = (PyGC_Head *)settled_head._gc_next; gc != &settled_head;
         gc = (PyGC_Head *)gc->_gc_next) {
        n++;
    }
#endif
    return PyLong_FromSsize_t(n);
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
    {"settled_count", settled_count, METH_NOARGS, settled_count_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef heap_module = {
    PyModuleDef_HEAD_INIT, "_gc_accel",
    "The agent and the cyclic collector: its definitions out of the generations, its pause "
    "timer.", -1, heap_methods,
};

PyMODINIT_FUNC
PyInit__gc_accel(void)
{
#ifdef HEAP_SETTLE
    settled_init();
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
