/* The agent's permanent objects, kept out of the cyclic collector's generations (issue 17).
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

static PyMethodDef heap_methods[] = {
    {"settle", settle, METH_O, settle_doc},
    {"settled_count", settled_count, METH_NOARGS, settled_count_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef heap_module = {
    PyModuleDef_HEAD_INIT, "_heap_accel",
    "The agent's permanent objects out of the collector's generations.", -1, heap_methods,
};

PyMODINIT_FUNC
PyInit__heap_accel(void)
{
#ifdef HEAP_SETTLE
    settled_init();
#endif
    PyObject *m = PyModule_Create(&heap_module);
    if (m == NULL) {
        return NULL;
    }
#ifdef HEAP_SETTLE
    if (PyModule_AddIntConstant(m, "AVAILABLE", 1) < 0) {
#else
    if (PyModule_AddIntConstant(m, "AVAILABLE", 0) < 0) {
#endif
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
