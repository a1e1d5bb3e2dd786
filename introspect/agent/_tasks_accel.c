/* The per-task path of task counting in C: the task factory, the done callback and the
 * TaskMeta they share (introspect/agent/collectors/tasks.py has the same semantics in Python
 * and uses it when this module is not built).
 *
 * TaskMeta is a weak reference to the task that carries the task's seq, kind, creation time,
 * parent seq and creation site. The collector's registry (seq -> TaskMeta) keeps it alive until
 * the task is done; the task is found from its meta by the weak reference, and the meta from the
 * task by walking the task's list of weak references: nothing is set on the task (an attribute
 * would give every task a __dict__).
 *
 * Everything runs with the GIL held on the loop's thread. A failure in the bookkeeping is handed
 * to `on_error("tasks", exc)` and never breaks task creation.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

/* 3.13 renamed `_PyObject_LookupAttr` to the public `PyObject_GetOptionalAttr`. */
#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

typedef struct {
    PyWeakReference ref;
    PyObject *seq;
    PyObject *kind;
    PyObject *parent;
    PyObject *where_code; /* code object of the user frame that created the task, or NULL */
    int where_line;
    double created;  /* time.monotonic() */
} Meta;

static PyTypeObject MetaType;
static PyObject *str_done, *str_cr_code, *str_add_done_callback, *str_cancelled, *str_exception,
    *str_tasks, *str_loop, *str_ok, *str_error, *str_cancelled_outcome;

static inline double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
Meta_dealloc(Meta *self)
{
    Py_CLEAR(self->seq);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->where_code);
    _PyWeakref_RefType.tp_dealloc((PyObject *)self);
}

static int
Meta_traverse(Meta *self, visitproc visit, void *arg)
{
    Py_VISIT(self->where_code);
    return _PyWeakref_RefType.tp_traverse((PyObject *)self, visit, arg);
}

static int
Meta_clear(Meta *self)
{
    Py_CLEAR(self->where_code);
    return _PyWeakref_RefType.tp_clear((PyObject *)self);
}

static PyMemberDef Meta_members[] = {
    {"seq", T_OBJECT, offsetof(Meta, seq), 0, "creation order, the task's id"},
    {"kind", T_OBJECT, offsetof(Meta, kind), 0, "module.qualname of its coroutine"},
    {"parent", T_OBJECT, offsetof(Meta, parent), 0, "seq of the task that created it"},
    {"created", T_DOUBLE, offsetof(Meta, created), 0, "time.monotonic() at creation"},
    {NULL}};

static PyObject *
Meta_get_where(Meta *self, void *Py_UNUSED(closure))
{
    if (self->where_code == NULL)
        Py_RETURN_NONE;
    return Py_BuildValue("(Oi)", self->where_code, self->where_line);
}

static int
Meta_set_where(Meta *self, PyObject *value, void *Py_UNUSED(closure))
{
    PyObject *code = NULL;
    int line = 0;
    if (value != NULL && value != Py_None && !PyArg_ParseTuple(value, "Oi", &code, &line))
        return -1;
    Py_XINCREF(code);
    Py_XSETREF(self->where_code, code);
    self->where_line = line;
    return 0;
}

static PyGetSetDef Meta_getset[] = {
    {"where", (getter)Meta_get_where, (setter)Meta_set_where,
     "(code, line) of the user frame that called create_task, or None", NULL},
    {NULL}};

static PyTypeObject MetaType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.TaskMeta",
    .tp_basicsize = sizeof(Meta),
    .tp_dealloc = (destructor)Meta_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "a weak reference to a task with the agent's metadata about it",
    .tp_members = Meta_members,
    .tp_getset = Meta_getset,
    .tp_traverse = (traverseproc)Meta_traverse,
    .tp_clear = (inquiry)Meta_clear,
};

/* The task's Meta (borrowed), or NULL; never sets an error. */
static Meta *
meta_of(PyObject *task)
{
    /* As CPython's own _PyObject_GET_WEAKREFS_LISTPTR: the offset is negative for a type with
     * managed weak references (3.12+ heap types: _asyncio.Task from 3.13), in the pre-header */
    Py_ssize_t offset = Py_TYPE(task)->tp_weaklistoffset;
    if (offset == 0 || PyType_Check(task))
        return NULL;
    PyWeakReference *wr = *(PyWeakReference **)((char *)task + offset);
    for (; wr != NULL; wr = wr->wr_next) {
        if (Py_IS_TYPE((PyObject *)wr, &MetaType))
            return (Meta *)wr;
    }
    return NULL;
}

static PyObject *
py_meta_of(PyObject *Py_UNUSED(module), PyObject *task)
{
    Meta *meta = meta_of(task);
    if (meta == NULL)
        Py_RETURN_NONE;
    Py_INCREF(meta);
    return (PyObject *)meta;
}

/* Hand the pending error to on_error("tasks", exc); the error is cleared either way. */
static void
report(PyObject *on_error)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value != NULL && tb != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    PyObject *exc = value;
#endif
    if (exc == NULL)
        return;
    if (PyErr_GivenExceptionMatches(exc, PyExc_Exception)) {
        PyObject *res = PyObject_CallFunctionObjArgs(on_error, str_tasks, exc, NULL);
        if (res == NULL)
            PyErr_Clear();
        Py_XDECREF(res);
        Py_DECREF(exc);
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc); /* KeyboardInterrupt and friends go on */
#else
    PyErr_Restore((PyObject *)Py_TYPE(exc), exc, PyException_GetTraceback(exc));
    Py_INCREF(Py_TYPE(exc));
#endif
}

/* dict[key] += delta, for a counter dict */
static int
add_count(PyObject *dict, PyObject *key, long delta, long missing)
{
    PyObject *old = PyDict_GetItemWithError(dict, key);
    long value;
    if (old != NULL) {
        value = PyLong_AsLong(old);
        if (value == -1 && PyErr_Occurred())
            return -1;
    }
    else if (PyErr_Occurred()) {
        return -1;
    }
    else {
        value = missing;
    }
    PyObject *now = PyLong_FromLong(value + delta);
    if (now == NULL)
        return -1;
    int rc = PyDict_SetItem(dict, key, now);
    Py_DECREF(now);
    return rc;
}

/* ---- the done callback ----------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *registry, *live, *finished, *on_crash, *on_error;
    PyObject *young;        /* list: new tasks not yet given the done callback (see sweep) */
    Py_ssize_t young_limit; /* the factory sweeps when this many joined since the last */
    Py_ssize_t marked;      /* the first `marked` of `young` survived a sweep already */
} Done;

static int
done_account(Done *self, PyObject *task)
{
    Meta *meta = meta_of(task);
    if (meta == NULL || meta->kind == NULL || meta->seq == NULL)
        return 0;
    Py_INCREF(meta); /* popping it from the registry would free it */
    int rc = -1;
    PyObject *outcome = NULL, *exc = NULL, *key = NULL;
    PyObject *popped = NULL;
    if (PyDict_Contains(self->registry, meta->seq) == 1 &&
        PyDict_DelItem(self->registry, meta->seq) < 0)
        goto out;
    (void)popped;
    if (add_count(self->live, meta->kind, -1, 1) < 0)
        goto out;
    PyObject *cancelled = PyObject_CallMethodNoArgs(task, str_cancelled);
    if (cancelled == NULL)
        goto out;
    int is_cancelled = PyObject_IsTrue(cancelled);
    Py_DECREF(cancelled);
    if (is_cancelled < 0)
        goto out;
    if (is_cancelled) {
        outcome = str_cancelled_outcome;
    }
    else {
        /* the field, not task.exception(): that would mark it retrieved and silence
         * asyncio's own "exception was never retrieved" report */
        if (PyObject_GetOptionalAttr(task, str_exception, &exc) < 0)
            goto out;
        outcome = (exc == NULL || exc == Py_None) ? str_ok : str_error;
        if (outcome == str_error) {
            PyObject *res = PyObject_CallFunctionObjArgs(self->on_crash, task, (PyObject *)meta,
                                                         exc, NULL);
            if (res == NULL)
                goto out;
            Py_DECREF(res);
        }
    }
    key = PyTuple_Pack(2, meta->kind, outcome);
    if (key == NULL || add_count(self->finished, key, 1, 0) < 0)
        goto out;
    rc = 0;
out:
    Py_XDECREF(key);
    Py_XDECREF(exc);
    Py_DECREF(meta);
    return rc;
}

static PyObject *
Done_vectorcall(Done *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "done callback takes the task");
        return NULL;
    }
    if (done_account(self, args[0]) < 0) {
        report(self->on_error);
        if (PyErr_Occurred())
            return NULL;
    }
    Py_RETURN_NONE;
}

/* Account the done tasks of `young` (the list the factory appends each new task to); a
 * pending task that was already pending at the previous sweep (one of the first `*marked`)
 * gets the done callback and leaves the list, the others stay for one more sweep. A task
 * that finishes young — most of them, under churn — costs no done-callback Handle at all,
 * and the list never holds more than two sweeps' worth of tasks. */
static int
sweep(Done *self)
{
    PyObject *young = self->young;
    Py_ssize_t *marked = &self->marked;
    Py_ssize_t n = PyList_GET_SIZE(young);
    Py_ssize_t old = *marked < n ? *marked : n;
    *marked = 0;
    if (n == 0)
        return 0;
    PyObject *items = PyList_GetSlice(young, 0, n);
    if (items == NULL || PyList_SetSlice(young, 0, n, NULL) < 0) {
        Py_XDECREF(items);
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *task = PyList_GET_ITEM(items, i);
        PyObject *done = PyObject_CallMethodNoArgs(task, str_done);
        int state = done == NULL ? -1 : PyObject_IsTrue(done);
        Py_XDECREF(done);
        if (state > 0) {
            if (done_account(self, task) < 0)
                state = -1;
        }
        else if (state == 0 && i < old) {
            PyObject *res = PyObject_CallMethodOneArg(task, str_add_done_callback,
                                                      (PyObject *)self);
            Py_XDECREF(res);
            if (res == NULL)
                state = -1;
        }
        else if (state == 0) {
            if (PyList_Append(young, task) < 0)
                state = -1;
            else
                *marked += 1;
        }
        if (state < 0) {
            report(self->on_error);
            if (PyErr_Occurred()) { /* KeyboardInterrupt: the rest go back to the list */
                PyObject *rest = PyList_GetSlice(items, i + 1, n);
                if (rest != NULL) {
                    Py_ssize_t end = PyList_GET_SIZE(young);
                    (void)PyList_SetSlice(young, end, end, rest);
                    Py_DECREF(rest);
                }
                rc = -1;
                break;
            }
        }
    }
    Py_DECREF(items);
    return rc;
}


static PyObject *
Done_sweep(Done *self, PyObject *Py_UNUSED(unused))
{
    if (sweep(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Done_young_count(Done *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(PyList_GET_SIZE(self->young));
}

static PyMethodDef Done_methods[] = {
    {"sweep", (PyCFunction)Done_sweep, METH_NOARGS,
     "account the young tasks that are done; those pending at two sweeps get the callback"},
    {NULL}};

static PyGetSetDef Done_getset[] = {
    {"young", (getter)Done_young_count, NULL, "tasks waiting for their sweep", NULL},
    {NULL}};

static PyObject *
Done_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"registry", "live", "finished", "on_crash", "on_error",
                             "young_limit", NULL};
    PyObject *registry, *live, *finished, *on_crash, *on_error;
    Py_ssize_t young_limit = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!OO|n", kwlist, &PyDict_Type, &registry,
                                     &PyDict_Type, &live, &PyDict_Type, &finished, &on_crash,
                                     &on_error, &young_limit))
        return NULL;
    if (young_limit < 1) {
        PyErr_SetString(PyExc_ValueError, "young_limit must be >= 1");
        return NULL;
    }
    PyObject *young = PyList_New(0);
    if (young == NULL)
        return NULL;
    Done *self = (Done *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(young);
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)Done_vectorcall;
    self->registry = Py_NewRef(registry);
    self->live = Py_NewRef(live);
    self->finished = Py_NewRef(finished);
    self->on_crash = Py_NewRef(on_crash);
    self->on_error = Py_NewRef(on_error);
    self->young = young;
    self->young_limit = young_limit;
    return (PyObject *)self;
}

static int
Done_traverse(Done *self, visitproc visit, void *arg)
{
    Py_VISIT(self->registry);
    Py_VISIT(self->live);
    Py_VISIT(self->finished);
    Py_VISIT(self->on_crash);
    Py_VISIT(self->on_error);
    Py_VISIT(self->young);
    return 0;
}

static int
Done_clear(Done *self)
{
    Py_CLEAR(self->registry);
    Py_CLEAR(self->live);
    Py_CLEAR(self->finished);
    Py_CLEAR(self->on_crash);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->young);
    return 0;
}

static void
Done_dealloc(Done *self)
{
    PyObject_GC_UnTrack(self);
    Done_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject DoneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.DoneCallback",
    .tp_basicsize = sizeof(Done),
    .tp_dealloc = (destructor)Done_dealloc,
    .tp_vectorcall_offset = offsetof(Done, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the collector's done callback: registry, live and finished counts, crashes",
    .tp_new = Done_new,
    .tp_traverse = (traverseproc)Done_traverse,
    .tp_clear = (inquiry)Done_clear,
    .tp_methods = Done_methods,
    .tp_getset = Done_getset,
};

/* ---- the task factory ------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *kinds, *kind_of, *live, *created, *registry, *counter, *on_done, *on_error,
        *current_task, *previous, *task_class;
    PyObject *is_library; /* callable(filename) -> bool: a frame "created at" skips */
    PyObject *verdicts;   /* filename -> bool, is_library's answers */
    Meta *last_parent; /* the last parent's meta: most tasks share their parent's */
} Factory;

/* The kind of `coro` (new reference) or NULL with an error set. */
static PyObject *
kind_for(Factory *self, PyObject *coro)
{
    PyObject *code = NULL;
    if (PyObject_GetOptionalAttr(coro, str_cr_code, &code) < 0)
        return NULL;
    if (code != NULL) {
        PyObject *kind = PyDict_GetItemWithError(self->kinds, code);
        Py_DECREF(code);
        if (kind != NULL)
            return Py_NewRef(kind);
        if (PyErr_Occurred())
            return NULL;
    }
    return PyObject_CallOneArg(self->kind_of, coro);
}

/* The seq of the running task (new reference: an int or None), or NULL with an error. */
static PyObject *
parent_seq(Factory *self, PyObject *loop)
{
    PyObject *parent = PyObject_CallOneArg(self->current_task, loop);
    if (parent == NULL)
        return NULL;
    if (parent == Py_None)
        return parent;
    Meta *meta = self->last_parent;
    if (meta == NULL || meta->ref.wr_object != parent) {
        meta = meta_of(parent);
        if (meta != NULL) {
            Py_INCREF(meta);
            Py_XSETREF(self->last_parent, meta);
        }
    }
    Py_DECREF(parent);
    if (meta == NULL || meta->seq == NULL)
        Py_RETURN_NONE;
    return Py_NewRef(meta->seq);
}

/* The innermost frame of the caller outside asyncio and the stdlib (its code, new
 * reference, and line), or NULL with no error when there is none within a few frames. */
static PyObject *
creation_site(Factory *self, int *line)
{
    if (self->is_library == Py_None)
        return NULL;
    PyFrameObject *frame = PyEval_GetFrame();
    Py_XINCREF(frame);
    for (int depth = 0; frame != NULL && depth < 12; depth++) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *verdict = PyDict_GetItemWithError(self->verdicts, code->co_filename);
        if (verdict == NULL && !PyErr_Occurred()) {
            verdict = PyObject_CallOneArg(self->is_library, code->co_filename);
            if (verdict != NULL) {
                if (PyDict_GET_SIZE(self->verdicts) < 4096)
                    (void)PyDict_SetItem(self->verdicts, code->co_filename, verdict);
                Py_DECREF(verdict); /* True/False: immortal enough, held by the dict */
            }
        }
        if (verdict == NULL) {
            PyErr_Clear();
            Py_DECREF(code);
            break;
        }
        if (verdict == Py_False) {
            *line = PyFrame_GetLineNumber(frame);
            Py_DECREF(frame);
            return (PyObject *)code;
        }
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    Py_XDECREF(frame);
    return NULL;
}

static int
account(Factory *self, PyObject *task, PyObject *kind, PyObject *parent)
{
    PyObject *seq = PyIter_Next(self->counter);
    if (seq == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "task counter exhausted");
        return -1;
    }
    Meta *meta = (Meta *)PyObject_CallOneArg((PyObject *)&MetaType, task);
    if (meta == NULL) {
        Py_DECREF(seq);
        return -1;
    }
    meta->seq = seq;
    meta->kind = Py_NewRef(kind);
    meta->parent = Py_NewRef(parent);
    meta->where_code = creation_site(self, &meta->where_line);
    meta->created = monotonic();
    int rc = PyDict_SetItem(self->registry, seq, (PyObject *)meta);
    Py_DECREF(meta);
    if (rc < 0 || add_count(self->live, kind, 1, 0) < 0 ||
        add_count(self->created, kind, 1, 0) < 0)
        return -1;
    if (Py_IS_TYPE(self->on_done, &DoneType)) {
        /* the done callback only if it outlives its sweeps (see `sweep`) */
        Done *done = (Done *)self->on_done;
        if (PyList_Append(done->young, task) < 0)
            return -1;
        if (PyList_GET_SIZE(done->young) >= done->marked + done->young_limit)
            return sweep(done);
        return 0;
    }
    PyObject *res = PyObject_CallMethodOneArg(task, str_add_done_callback, self->on_done);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

static PyObject *
make_task(Factory *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (self->previous != Py_None)
        return PyObject_Vectorcall(self->previous, args, nargsf, kwnames);
    /* Task(coro, loop=loop, **kwargs) */
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    PyObject *stack[16];
    if (nkw > 14) {
        PyErr_SetString(PyExc_TypeError, "too many keyword arguments for a task");
        return NULL;
    }
    stack[0] = args[1];
    for (Py_ssize_t i = 0; i < nkw; i++)
        stack[1 + i] = args[2 + i];
    stack[1 + nkw] = args[0];
    PyObject *names = PyTuple_New(nkw + 1);
    if (names == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < nkw; i++)
        PyTuple_SET_ITEM(names, i, Py_NewRef(PyTuple_GET_ITEM(kwnames, i)));
    PyTuple_SET_ITEM(names, nkw, Py_NewRef(str_loop));
    PyObject *task = PyObject_Vectorcall(self->task_class, stack, 1, names);
    Py_DECREF(names);
    return task;
}

static PyObject *
Factory_vectorcall(Factory *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) != 2) {
        PyErr_SetString(PyExc_TypeError, "a task factory takes (loop, coro, **kwargs)");
        return NULL;
    }
    /* Kind and parent before the task exists: an eager task (3.12+) runs its first step
     * inside its creation, and may even finish there (no frame left to name it). */
    PyObject *kind = kind_for(self, args[1]);
    PyObject *parent = kind == NULL ? NULL : parent_seq(self, args[0]);
    if (parent == NULL) {
        Py_CLEAR(kind);
        report(self->on_error);
        if (PyErr_Occurred())
            return NULL;
    }
    PyObject *task = make_task(self, args, nargsf, kwnames);
    if (task != NULL && kind != NULL && account(self, task, kind, parent) < 0) {
        report(self->on_error);
        if (PyErr_Occurred())
            Py_CLEAR(task);
    }
    Py_XDECREF(kind);
    Py_XDECREF(parent);
    return task;
}

static PyObject *
Factory_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kinds", "kind_of", "live", "created", "registry", "counter",
                             "on_done", "on_error", "current_task", "previous", "task_class",
                             "is_library", NULL};
    PyObject *kinds, *kind_of, *live, *created, *registry, *counter, *on_done, *on_error,
        *current_task, *previous, *task_class, *is_library = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!O!O!OOOOOO|O", kwlist, &PyDict_Type,
                                     &kinds, &kind_of, &PyDict_Type, &live, &PyDict_Type,
                                     &created, &PyDict_Type, &registry, &counter, &on_done,
                                     &on_error, &current_task, &previous, &task_class,
                                     &is_library))
        return NULL;
    PyObject *verdicts = PyDict_New();
    if (verdicts == NULL)
        return NULL;
    if (!PyIter_Check(counter)) {
        PyErr_SetString(PyExc_TypeError, "counter must be an iterator");
        return NULL;
    }
    Factory *self = (Factory *)type->tp_alloc(type, 0);
    if (self == NULL) {
        Py_DECREF(verdicts);
        return NULL;
    }
    self->is_library = Py_NewRef(is_library);
    self->verdicts = verdicts;
    self->vectorcall = (vectorcallfunc)Factory_vectorcall;
    self->kinds = Py_NewRef(kinds);
    self->kind_of = Py_NewRef(kind_of);
    self->live = Py_NewRef(live);
    self->created = Py_NewRef(created);
    self->registry = Py_NewRef(registry);
    self->counter = Py_NewRef(counter);
    self->on_done = Py_NewRef(on_done);
    self->on_error = Py_NewRef(on_error);
    self->current_task = Py_NewRef(current_task);
    self->previous = Py_NewRef(previous);
    self->task_class = Py_NewRef(task_class);
    return (PyObject *)self;
}

static int
Factory_traverse(Factory *self, visitproc visit, void *arg)
{
    Py_VISIT(self->kinds);
    Py_VISIT(self->kind_of);
    Py_VISIT(self->live);
    Py_VISIT(self->created);
    Py_VISIT(self->registry);
    Py_VISIT(self->counter);
    Py_VISIT(self->on_done);
    Py_VISIT(self->on_error);
    Py_VISIT(self->current_task);
    Py_VISIT(self->previous);
    Py_VISIT(self->task_class);
    Py_VISIT(self->is_library);
    Py_VISIT(self->verdicts);
    Py_VISIT(self->last_parent);
    return 0;
}

static int
Factory_clear(Factory *self)
{
    Py_CLEAR(self->kinds);
    Py_CLEAR(self->kind_of);
    Py_CLEAR(self->live);
    Py_CLEAR(self->created);
    Py_CLEAR(self->registry);
    Py_CLEAR(self->counter);
    Py_CLEAR(self->on_done);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->current_task);
    Py_CLEAR(self->previous);
    Py_CLEAR(self->task_class);
    Py_CLEAR(self->is_library);
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->last_parent);
    return 0;
}

static void
Factory_dealloc(Factory *self)
{
    PyObject_GC_UnTrack(self);
    Factory_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Factory_get_previous(Factory *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->previous);
}

static PyGetSetDef Factory_getset[] = {
    {"previous", (getter)Factory_get_previous, NULL, "the app's own factory, or None", NULL},
    {NULL}};

static PyTypeObject FactoryType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.TaskFactory",
    .tp_basicsize = sizeof(Factory),
    .tp_dealloc = (destructor)Factory_dealloc,
    .tp_vectorcall_offset = offsetof(Factory, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the counting task factory, chained to the app's own (`previous`)",
    .tp_new = Factory_new,
    .tp_traverse = (traverseproc)Factory_traverse,
    .tp_clear = (inquiry)Factory_clear,
    .tp_getset = Factory_getset,
};

static PyMethodDef module_methods[] = {
    {"meta_of", (PyCFunction)py_meta_of, METH_O, "the task's TaskMeta, or None"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_tasks_accel", "the per-task path of task counting, in C", -1,
    module_methods};

PyMODINIT_FUNC
PyInit__tasks_accel(void)
{
#define INTERN(var, text) \
    if ((var = PyUnicode_InternFromString(text)) == NULL) return NULL
    INTERN(str_done, "done");
    INTERN(str_cr_code, "cr_code");
    INTERN(str_add_done_callback, "add_done_callback");
    INTERN(str_cancelled, "cancelled");
    INTERN(str_exception, "_exception");
    INTERN(str_tasks, "tasks");
    INTERN(str_loop, "loop");
    INTERN(str_ok, "ok");
    INTERN(str_error, "error");
    INTERN(str_cancelled_outcome, "cancelled");
#undef INTERN
    MetaType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&MetaType) < 0 || PyType_Ready(&DoneType) < 0 ||
        PyType_Ready(&FactoryType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "TaskMeta", (PyObject *)&MetaType) < 0 ||
        PyModule_AddObjectRef(m, "DoneCallback", (PyObject *)&DoneType) < 0 ||
        PyModule_AddObjectRef(m, "TaskFactory", (PyObject *)&FactoryType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
