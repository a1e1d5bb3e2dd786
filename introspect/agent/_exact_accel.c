/* Exact accounting's inner loop in C: run the event loop's ready handles like
 * `BaseEventLoop._run_once` does, and time each one (busy time, scheduling delay, steps per
 * task, log2 histograms per kind) without a Python operation per handle.
 *
 * Optional: introspect/agent/exact.py falls back to a pure-Python loop when this module is not
 * built. Everything here runs with the GIL held, on the loop's thread (run, mark) or on any
 * thread (stats). It never raises out of its own bookkeeping: a failure there counts the step
 * as a plain callback and clears the error; only what the handle itself raises propagates
 * (SystemExit, KeyboardInterrupt: the stdlib's Handle._run contains everything else).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <time.h>

/* 3.13 renamed `_PyObject_LookupAttr` to the public `PyObject_GetOptionalAttr` (same contract:
 * 1 found, 0 missing with no error set, -1 error) and removed the old name. */
#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif


typedef struct {
    PyObject_HEAD
    PyObject *first_seen; /* callable(task) -> (slot, kind) | None */
    PyObject *task_types; /* tuple of types whose instances are accounted per task */
    PyObject *attr;       /* the per-task attribute caching (token, slot) */
    PyObject *token;      /* identifies this recorder's values of `attr` */
    /* the handle classes whose `_cancelled` / `_callback` slots are read by offset */
    PyTypeObject *handle_types[2];
    Py_ssize_t off_cancelled, off_callback;
    int buckets;
    /* per task slot */
    Py_ssize_t cap_slots;
    long long *steps;
    double *busy, *delay_sum, *delay_max;
    int *kind;
    /* per kind: buckets counters each */
    Py_ssize_t cap_kinds;
    long long *busy_hist, *delay_hist;
    long long cb_steps;
    double cb_busy;
    /* run-queue marks: (count, time) in order of arrival; their counts add up to `known` */
    Py_ssize_t *mark_count;
    double *mark_time;
    Py_ssize_t mhead, mtail, mcap;
    Py_ssize_t known;
} Recorder;

static PyObject *str_popleft, *str_cancelled, *str_run, *str_callback, *str_self;

static inline double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* == min(int(seconds * 1e6).bit_length(), buckets - 1), as the pure-Python path computes */
static inline int
bucket_of(double seconds, int buckets)
{
    if (!(seconds > 0.0))
        return 0;
    double us = seconds * 1e6;
    if (us >= 9.0e18)
        return buckets - 1;
    unsigned long long v = (unsigned long long)us;
    int b = v ? 64 - __builtin_clzll(v) : 0;
    return b < buckets ? b : buckets - 1;
}

static int
grow(void **p, Py_ssize_t old_n, Py_ssize_t new_n, size_t item)
{
    void *q = PyMem_Realloc(*p, (size_t)new_n * item);
    if (q == NULL)
        return -1;
    memset((char *)q + (size_t)old_n * item, 0, (size_t)(new_n - old_n) * item);
    *p = q;
    return 0;
}

static int
ensure_slot(Recorder *self, Py_ssize_t slot)
{
    if (slot < self->cap_slots)
        return 0;
    Py_ssize_t n = self->cap_slots ? self->cap_slots : 256;
    while (n <= slot)
        n *= 2;
    Py_ssize_t o = self->cap_slots;
    if (grow((void **)&self->steps, o, n, sizeof(long long)) < 0 ||
        grow((void **)&self->busy, o, n, sizeof(double)) < 0 ||
        grow((void **)&self->delay_sum, o, n, sizeof(double)) < 0 ||
        grow((void **)&self->delay_max, o, n, sizeof(double)) < 0 ||
        grow((void **)&self->kind, o, n, sizeof(int)) < 0)
        return -1; /* arrays already grown stay valid; cap_slots still the old size */
    self->cap_slots = n;
    return 0;
}

static int
ensure_kind(Recorder *self, Py_ssize_t kind)
{
    if (kind < self->cap_kinds)
        return 0;
    Py_ssize_t n = self->cap_kinds ? self->cap_kinds : 16;
    while (n <= kind)
        n *= 2;
    Py_ssize_t o = self->cap_kinds;
    size_t row = sizeof(long long) * (size_t)self->buckets;
    if (grow((void **)&self->busy_hist, o, n, row) < 0 ||
        grow((void **)&self->delay_hist, o, n, row) < 0)
        return -1;
    self->cap_kinds = n;
    return 0;
}

static int
push_mark(Recorder *self, Py_ssize_t count, double t)
{
    if (self->mtail == self->mcap) {
        if (self->mhead > 0) {
            Py_ssize_t live = self->mtail - self->mhead;
            memmove(self->mark_count, self->mark_count + self->mhead, live * sizeof(Py_ssize_t));
            memmove(self->mark_time, self->mark_time + self->mhead, live * sizeof(double));
            self->mhead = 0;
            self->mtail = live;
        }
        if (self->mtail == self->mcap) {
            Py_ssize_t n = self->mcap ? self->mcap * 2 : 1024;
            Py_ssize_t *c = PyMem_Realloc(self->mark_count, n * sizeof(Py_ssize_t));
            if (c == NULL)
                return -1;
            self->mark_count = c;
            double *tt = PyMem_Realloc(self->mark_time, n * sizeof(double));
            if (tt == NULL)
                return -1;
            self->mark_time = tt;
            self->mcap = n;
        }
    }
    self->mark_count[self->mtail] = count;
    self->mark_time[self->mtail] = t;
    self->mtail++;
    self->known += count;
    return 0;
}

/* The wake-up time of the run-queue's head entry, consumed. NAN when unknown. */
static inline double
pop_mark(Recorder *self)
{
    if (self->known > 0)
        self->known--;
    if (self->mhead == self->mtail)
        return NAN;
    double t = self->mark_time[self->mhead];
    if (--self->mark_count[self->mhead] <= 0) {
        self->mhead++;
        if (self->mhead == self->mtail)
            self->mhead = self->mtail = 0;
    }
    return t;
}

/* Entries in the run queue the marks don't cover yet were queued by now. */
static void
sync_marks(Recorder *self, Py_ssize_t len_ready, double t)
{
    if (len_ready < self->known) { /* someone emptied the queue behind our back */
        self->mhead = self->mtail = 0;
        self->known = 0;
    }
    if (len_ready > self->known && push_mark(self, len_ready - self->known, t) < 0) {
        PyErr_Clear();
        self->mhead = self->mtail = 0;
        self->known = 0;
    }
}

/* The task a handle's callback belongs to (new reference), or NULL (no error set). */
static PyObject *
owner_of(PyObject *cb)
{
    PyObject *owner = NULL;
    if (PyCFunction_Check(cb)) {
        owner = PyCFunction_GET_SELF(cb);
        Py_XINCREF(owner);
    }
    else if (PyMethod_Check(cb)) {
        owner = PyMethod_GET_SELF(cb);
        Py_XINCREF(owner);
    }
    else if (!PyFunction_Check(cb)) {
        if (PyObject_GetOptionalAttr(cb, str_self, &owner) < 0) {
            PyErr_Clear();
            owner = NULL;
        }
    }
    return owner;
}

static inline int
is_task(Recorder *self, PyObject *owner)
{
    Py_ssize_t n = PyTuple_GET_SIZE(self->task_types);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyObject_TypeCheck(owner, (PyTypeObject *)PyTuple_GET_ITEM(self->task_types, i)))
            return 1;
    }
    return 0;
}

/* The (token, slot) cached on the task, as a borrowed reference, or NULL. */
static PyObject *
cached_of(Recorder *self, PyObject *task)
{
    if (Py_TYPE(task)->tp_dictoffset > 0) { /* _asyncio.Task: its own dict, read it directly */
        PyObject **dictptr = _PyObject_GetDictPtr(task);
        if (dictptr == NULL || *dictptr == NULL)
            return NULL;
        PyObject *v = PyDict_GetItemWithError(*dictptr, self->attr);
        if (v == NULL)
            PyErr_Clear();
        return v;
    }
    PyObject *v = NULL;
    if (PyObject_GetOptionalAttr(task, self->attr, &v) < 0) {
        PyErr_Clear();
        return NULL;
    }
    Py_XDECREF(v); /* the task keeps it alive: it is in the task's own dict */
    return v;
}

/* The task's slot in this session (-1: not accounted per task). Never leaves an error set. */
static Py_ssize_t
slot_of(Recorder *self, PyObject *task)
{
    PyObject *cached = cached_of(self, task);
    if (cached != NULL && PyTuple_CheckExact(cached) && PyTuple_GET_SIZE(cached) == 2 &&
        PyTuple_GET_ITEM(cached, 0) == self->token) {
        Py_ssize_t slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(cached, 1));
        if (slot == -1 && PyErr_Occurred())
            PyErr_Clear();
        return slot;
    }
    Py_ssize_t slot = -1, kind = -1;
    PyObject *res = PyObject_CallOneArg(self->first_seen, task);
    if (res == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (PyTuple_Check(res) && PyTuple_GET_SIZE(res) == 2) {
        slot = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 0));
        kind = PyLong_AsSsize_t(PyTuple_GET_ITEM(res, 1));
        if (PyErr_Occurred()) {
            PyErr_Clear();
            slot = kind = -1;
        }
    }
    Py_DECREF(res);
    if (slot < 0 || kind < 0 || kind > INT_MAX || ensure_slot(self, slot) < 0 ||
        ensure_kind(self, kind) < 0) {
        PyErr_Clear();
        slot = -1;
    }
    else {
        self->kind[slot] = (int)kind;
    }
    PyObject *mark = Py_BuildValue("(On)", self->token, slot);
    if (mark == NULL || PyObject_SetAttr(task, self->attr, mark) < 0)
        PyErr_Clear();
    Py_XDECREF(mark);
    return slot;
}

/* A handle's slot `name` (new reference): by offset for the stdlib's handle classes. */
static inline PyObject *
handle_slot(Recorder *self, PyObject *handle, Py_ssize_t offset, PyObject *name)
{
    if (offset > 0 && (Py_TYPE(handle) == self->handle_types[0] ||
                       Py_TYPE(handle) == self->handle_types[1])) {
        PyObject *v = *(PyObject **)((char *)handle + offset);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(handle, name);
}

static void
account(Recorder *self, PyObject *handle, double t0, double t1, double enqueued)
{
    double busy = t1 - t0;
    Py_ssize_t slot = -1;
    PyObject *cb = handle_slot(self, handle, self->off_callback, str_callback);
    if (cb == NULL) {
        PyErr_Clear();
    }
    else {
        PyObject *owner = owner_of(cb);
        Py_DECREF(cb);
        if (owner != NULL) {
            if (is_task(self, owner))
                slot = slot_of(self, owner);
            Py_DECREF(owner);
        }
    }
    if (slot < 0) {
        self->cb_steps++;
        self->cb_busy += busy;
        return;
    }
    double delay = isnan(enqueued) ? 0.0 : t0 - enqueued;
    if (delay < 0.0)
        delay = 0.0;
    self->steps[slot]++;
    self->busy[slot] += busy;
    self->delay_sum[slot] += delay;
    if (delay > self->delay_max[slot])
        self->delay_max[slot] = delay;
    Py_ssize_t row = (Py_ssize_t)self->kind[slot] * self->buckets;
    self->busy_hist[row + bucket_of(busy, self->buckets)]++;
    self->delay_hist[row + bucket_of(delay, self->buckets)]++;
}

/* run(ready, ntodo, debug_run=None): pop and run `ntodo` handles from the deque `ready`,
 * skipping cancelled ones, as the stdlib's loop does; `debug_run(handle)` replaces
 * `handle._run()` when given (the loop's debug mode: current handle, slow-callback log). */
static PyObject *
Recorder_run(Recorder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "run(ready, ntodo, debug_run=None)");
        return NULL;
    }
    PyObject *ready = args[0];
    Py_ssize_t ntodo = PyLong_AsSsize_t(args[1]);
    if (ntodo == -1 && PyErr_Occurred())
        return NULL;
    PyObject *debug_run = (nargs == 3 && args[2] != Py_None) ? args[2] : NULL;
    PyObject *popleft = PyObject_GetAttr(ready, str_popleft);
    if (popleft == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < ntodo; i++) {
        PyObject *handle = PyObject_CallNoArgs(popleft);
        if (handle == NULL)
            goto error;
        double enqueued = pop_mark(self);
        PyObject *cancelled = handle_slot(self, handle, self->off_cancelled, str_cancelled);
        if (cancelled == NULL) {
            Py_DECREF(handle);
            goto error;
        }
        int skip = cancelled == Py_False ? 0 : PyObject_IsTrue(cancelled);
        Py_DECREF(cancelled);
        if (skip != 0) {
            Py_DECREF(handle);
            if (skip < 0)
                goto error;
            continue;
        }
        double t0 = now();
        PyObject *res = debug_run ? PyObject_CallOneArg(debug_run, handle)
                                  : PyObject_CallMethodNoArgs(handle, str_run);
        double t1 = now();
        if (res == NULL) {
            Py_DECREF(handle);
            goto error;
        }
        Py_DECREF(res);
        Py_ssize_t len = PyObject_Length(ready);
        if (len < 0)
            PyErr_Clear();
        else if (len > self->known)
            sync_marks(self, len, t1);
        account(self, handle, t0, t1, enqueued);
        Py_DECREF(handle);
    }
    Py_DECREF(popleft);
    Py_RETURN_NONE;
error:
    Py_DECREF(popleft);
    return NULL;
}

/* mark(len_ready): run-queue entries not yet covered were queued by now. */
static PyObject *
Recorder_mark(Recorder *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    sync_marks(self, n, now());
    Py_RETURN_NONE;
}

static PyObject *
Recorder_now(Recorder *Py_UNUSED(self), PyObject *Py_UNUSED(unused))
{
    return PyFloat_FromDouble(now());
}

/* stats(nslots, nkinds) -> ([(steps, busy, delay_sum, delay_max)] * nslots,
 *                           [(busy_hist, delay_hist)] * nkinds, callback_steps, callback_busy) */
static PyObject *
Recorder_stats(Recorder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "stats(nslots, nkinds)");
        return NULL;
    }
    Py_ssize_t nslots = PyLong_AsSsize_t(args[0]);
    Py_ssize_t nkinds = PyLong_AsSsize_t(args[1]);
    if ((nslots == -1 || nkinds == -1) && PyErr_Occurred())
        return NULL;
    if (nslots < 0 || nkinds < 0) {
        PyErr_SetString(PyExc_ValueError, "negative size");
        return NULL;
    }
    if (nslots > self->cap_slots)
        nslots = self->cap_slots;
    if (nkinds > self->cap_kinds)
        nkinds = self->cap_kinds;
    PyObject *tasks = PyList_New(nslots), *kinds = NULL;
    if (tasks == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nslots; i++) {
        PyObject *row = Py_BuildValue("(Lddd)", self->steps[i], self->busy[i],
                                      self->delay_sum[i], self->delay_max[i]);
        if (row == NULL)
            goto error;
        PyList_SET_ITEM(tasks, i, row);
    }
    kinds = PyList_New(nkinds);
    if (kinds == NULL)
        goto error;
    for (Py_ssize_t k = 0; k < nkinds; k++) {
        PyObject *bh = PyList_New(self->buckets), *dh = PyList_New(self->buckets);
        if (bh == NULL || dh == NULL) {
            Py_XDECREF(bh);
            Py_XDECREF(dh);
            goto error;
        }
        for (int b = 0; b < self->buckets; b++) {
            PyObject *x = PyLong_FromLongLong(self->busy_hist[k * self->buckets + b]);
            PyObject *y = PyLong_FromLongLong(self->delay_hist[k * self->buckets + b]);
            if (x == NULL || y == NULL) {
                Py_XDECREF(x);
                Py_XDECREF(y);
                Py_DECREF(bh);
                Py_DECREF(dh);
                goto error;
            }
            PyList_SET_ITEM(bh, b, x);
            PyList_SET_ITEM(dh, b, y);
        }
        PyObject *pair = PyTuple_Pack(2, bh, dh);
        Py_DECREF(bh);
        Py_DECREF(dh);
        if (pair == NULL)
            goto error;
        PyList_SET_ITEM(kinds, k, pair);
    }
    PyObject *out = Py_BuildValue("(NNLd)", tasks, kinds, self->cb_steps, self->cb_busy);
    return out; /* "N" steals both lists, also on failure */
error:
    Py_DECREF(tasks);
    Py_XDECREF(kinds);
    return NULL;
}

/* The offset of a T_OBJECT(_EX) member `name` of `type` (0 when it isn't one). */
static Py_ssize_t
member_offset(PyTypeObject *type, PyObject *name)
{
    PyObject *d = _PyType_Lookup(type, name);
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type))
        return 0;
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if ((m->type != T_OBJECT_EX && m->type != T_OBJECT) || m->offset <= 0)
        return 0;
    return m->offset;
}

static int
Recorder_init(Recorder *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"first_seen", "task_types", "handle_types", "attr", "buckets",
                             NULL};
    PyObject *first_seen, *task_types, *handle_types, *attr;
    int buckets;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO!O!Ui", kwlist, &first_seen, &PyTuple_Type,
                                     &task_types, &PyTuple_Type, &handle_types, &attr,
                                     &buckets))
        return -1;
    if (self->first_seen != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Recorder already initialised");
        return -1;
    }
    if (!PyCallable_Check(first_seen) || buckets < 1 || buckets > 64 ||
        PyTuple_GET_SIZE(handle_types) != 2) {
        PyErr_SetString(PyExc_ValueError, "bad Recorder arguments");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(task_types); i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(task_types, i))) {
            PyErr_SetString(PyExc_TypeError, "task_types must hold types");
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < 2; i++) {
        if (!PyType_Check(PyTuple_GET_ITEM(handle_types, i))) {
            PyErr_SetString(PyExc_TypeError, "handle_types must hold types");
            return -1;
        }
    }
    PyTypeObject *h0 = (PyTypeObject *)PyTuple_GET_ITEM(handle_types, 0);
    PyTypeObject *h1 = (PyTypeObject *)PyTuple_GET_ITEM(handle_types, 1);
    Py_ssize_t oc = member_offset(h0, str_cancelled), ob = member_offset(h0, str_callback);
    /* both classes must agree on the slots' places, or we read neither by offset */
    if (oc != member_offset(h1, str_cancelled) || ob != member_offset(h1, str_callback))
        oc = ob = 0;
    PyObject *token = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (token == NULL)
        return -1;
    Py_INCREF(first_seen);
    Py_INCREF(task_types);
    Py_INCREF(attr);
    PyUnicode_InternInPlace(&attr);
    Py_INCREF(h0);
    Py_INCREF(h1);
    self->first_seen = first_seen;
    self->task_types = task_types;
    self->attr = attr;
    self->token = token;
    self->handle_types[0] = h0;
    self->handle_types[1] = h1;
    self->off_cancelled = oc;
    self->off_callback = ob;
    self->buckets = buckets;
    return 0;
}

static int
Recorder_traverse(Recorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->first_seen);
    Py_VISIT(self->task_types);
    return 0;
}

static int
Recorder_clear(Recorder *self)
{
    Py_CLEAR(self->first_seen);
    Py_CLEAR(self->task_types);
    return 0;
}

static void
Recorder_dealloc(Recorder *self)
{
    PyObject_GC_UnTrack(self);
    Recorder_clear(self);
    Py_CLEAR(self->attr);
    Py_CLEAR(self->token);
    Py_CLEAR(self->handle_types[0]);
    Py_CLEAR(self->handle_types[1]);
    PyMem_Free(self->steps);
    PyMem_Free(self->busy);
    PyMem_Free(self->delay_sum);
    PyMem_Free(self->delay_max);
    PyMem_Free(self->kind);
    PyMem_Free(self->busy_hist);
    PyMem_Free(self->delay_hist);
    PyMem_Free(self->mark_count);
    PyMem_Free(self->mark_time);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Recorder_methods[] = {
    {"run", (PyCFunction)(void (*)(void))Recorder_run, METH_FASTCALL,
     "run(ready, ntodo, debug_run=None): run and time ntodo handles from the deque"},
    {"mark", (PyCFunction)Recorder_mark, METH_O,
     "mark(len_ready): entries of the run queue not yet covered were queued now"},
    {"now", (PyCFunction)Recorder_now, METH_NOARGS, "the recorder's clock, in seconds"},
    {"stats", (PyCFunction)(void (*)(void))Recorder_stats, METH_FASTCALL,
     "stats(nslots, nkinds) -> (per slot rows, per kind histograms, callback steps, busy)"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "introspect.agent._exact_accel.Recorder",
    .tp_basicsize = sizeof(Recorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Exact accounting's timed run of the ready handles (see exact.py).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Recorder_init,
    .tp_traverse = (traverseproc)Recorder_traverse,
    .tp_clear = (inquiry)Recorder_clear,
    .tp_dealloc = (destructor)Recorder_dealloc,
    .tp_methods = Recorder_methods,
};

static struct PyModuleDef moduledef = {
    .m_base = PyModuleDef_HEAD_INIT,
    .m_name = "_exact_accel",
    .m_doc = "Exact accounting's inner loop (optional accelerator of introspect.agent.exact).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__exact_accel(void)
{
    if (PyType_Ready(&RecorderType) < 0)
        return NULL;
    if ((str_popleft = PyUnicode_InternFromString("popleft")) == NULL ||
        (str_cancelled = PyUnicode_InternFromString("_cancelled")) == NULL ||
        (str_run = PyUnicode_InternFromString("_run")) == NULL ||
        (str_callback = PyUnicode_InternFromString("_callback")) == NULL ||
        (str_self = PyUnicode_InternFromString("__self__")) == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RecorderType);
    if (PyModule_AddObject(m, "Recorder", (PyObject *)&RecorderType) < 0) {
        Py_DECREF(&RecorderType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
