/* The per-task path of task counting in C: the task factory, the done accounting, the
 * TaskMeta they share and the counts by kind (introspect/agent/collectors/tasks.py has the
 * same semantics in Python and uses it when this module is not built).
 *
 * TaskMeta is a weak reference to the task that carries the task's seq, kind, creation time,
 * parent seq and creation site. The collector's registry (seq -> TaskMeta) keeps it alive until
 * the task is done; the task is found from its meta by the weak reference, and the meta from the
 * task by walking the task's list of weak references: nothing is set on the task (an attribute
 * would give every task a __dict__).
 *
 * Counts by kind are C integers in one KindCounter per kind (live, created, finished by
 * outcome), found by the factory from the coroutine's code object and held by each TaskMeta:
 * no dict update and no int object per task. `DoneCallback.counts()` folds them into dicts in
 * one C call that runs no Python code while it reads them (safe from any thread).
 *
 * Everything else runs with the GIL held on the loop's thread. A failure in the bookkeeping is
 * handed to `on_error("tasks", exc)` and never breaks task creation.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <time.h>

/* The interpreter's frame records, for `creation_site` only: walking them makes no frame
 * object, where PyEval_GetFrame and PyFrame_GetBack make one for each frame they pass (a GC
 * allocation, freed when its function returns; under task churn that was ~2/3 of the
 * factory's own cost). Internal headers: the fields used (the thread's current frame, each
 * record's code, previous record and instruction) are the ones CPython's own PyFrame_GetBack
 * and PyFrame_GetLasti read, on 3.11-3.14. */
#define Py_BUILD_CORE 1
#if PY_VERSION_HEX >= 0x030E0000
#include <internal/pycore_interpframe.h>
#else
#include <internal/pycore_frame.h>
#endif
#undef Py_BUILD_CORE

/* 3.13 renamed `_PyObject_LookupAttr` to the public `PyObject_GetOptionalAttr`. */
#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

enum { OK, ERROR, CANCELLED, OUTCOMES };

/* ---- counts by kind -------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *kind; /* str: module.qualname of the coroutine */
    long long live, created;
    long long finished[OUTCOMES];
} Counter;

static void
Counter_dealloc(Counter *self)
{
    Py_CLEAR(self->kind);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Not GC-tracked: it holds a str only, so it can be in no cycle. */
static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.KindCounter",
    .tp_basicsize = sizeof(Counter),
    .tp_dealloc = (destructor)Counter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the counts of one kind of task",
};

typedef struct {
    PyWeakReference ref;
    PyObject *seq;
    PyObject *kind;
    PyObject *parent;
    PyObject *where_code; /* code object of the user frame that created the task, or NULL */
    Counter *counter;     /* its kind's counts, or NULL (a TaskMeta made from Python) */
    int where_line;
    double created;  /* time.monotonic() */
} Meta;

static PyTypeObject MetaType;
static PyObject *str_done, *str_cr_code, *str_add_done_callback, *str_cancelled, *str_exception,
    *str_tasks, *str_loop, *str_outcome[OUTCOMES], *names_loop;
/* the weak reference type's own vectorcall (static in CPython), copied from the first TaskMeta
 * made by the type call: `meta()` then takes the fast path as any weak reference's does */
static vectorcallfunc weakref_vectorcall;

static inline double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The innermost complete frame record from `frame` outwards, or NULL. */
static inline _PyInterpreterFrame *
first_complete(_PyInterpreterFrame *frame)
{
    while (frame != NULL && _PyFrame_IsIncomplete(frame))
        frame = frame->previous;
    return frame;
}

static inline PyCodeObject *
code_of(_PyInterpreterFrame *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    return _PyFrame_GetCode(frame);
#else
    return frame->f_code;
#endif
}

/* A coroutine's code object (borrowed). */
static inline PyObject *
coroutine_code(PyObject *coro)
{
#if PY_VERSION_HEX >= 0x030C0000
    return (PyObject *)code_of((_PyInterpreterFrame *)&((PyGenObject *)coro)->gi_iframe);
#else
    return (PyObject *)((PyCoroObject *)coro)->cr_code;
#endif
}

/* Where `obj`'s list of weak references starts, or NULL when it takes none. As CPython's own
 * _PyObject_GET_WEAKREFS_LISTPTR: the offset is negative for a type with managed weak
 * references (3.12+ heap types: _asyncio.Task from 3.13), in the pre-header. */
static inline PyWeakReference **
weaklist_of(PyObject *obj)
{
    Py_ssize_t offset = Py_TYPE(obj)->tp_weaklistoffset;
    if (offset == 0 || PyType_Check(obj))
        return NULL;
    return (PyWeakReference **)((char *)obj + offset);
}

/* TaskMeta is not a GC type (but on the free-threaded build, where weak references are
 * linked under locks only weakref's own code takes): each allocation of a GC object counts
 * towards the collector's next young-generation collection, and there is one TaskMeta per
 * task. It can be in no reference cycle: it refers to its seq (int), kind (str), parent seq
 * (int or None), a code object and its KindCounter (holding a str) — none of them a container
 * the collector examines (code objects are not GC objects on 3.11-3.14), and its task only
 * weakly; it takes no callback (`Meta_new`). (Python code could store anything in those
 * fields; the agent stores only these. The collector never examined a TaskMeta before either:
 * it was untracked.) So it is freed by reference counting alone, and
 * it must not reach weakref's own dealloc (which reads the GC header a GC object has): it
 * unlinks itself from its task's list as weakref's own dealloc does. */
static void
Meta_dealloc(Meta *self)
{
    Py_CLEAR(self->seq);
    Py_CLEAR(self->kind);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->where_code);
    Py_CLEAR(self->counter);
#ifdef Py_GIL_DISABLED
    _PyWeakref_RefType.tp_dealloc((PyObject *)self);
#else
    PyWeakReference *wr = &self->ref;
    if (wr->wr_object != Py_None) {
        PyWeakReference **list = weaklist_of(wr->wr_object);
        if (list != NULL && *list == wr)
            *list = wr->wr_next;
        if (wr->wr_prev != NULL)
            wr->wr_prev->wr_next = wr->wr_next;
        if (wr->wr_next != NULL)
            wr->wr_next->wr_prev = wr->wr_prev;
        wr->wr_object = Py_None;
        wr->wr_prev = wr->wr_next = NULL;
    }
    Py_CLEAR(wr->wr_callback);
    PyObject_Free(self);
#endif
}

/* TaskMeta(task): a weak reference with no callback (the collector runs a weak reference's
 * callback through its GC header) to an object that is not a class (whose list of weak
 * references may live outside it: `weaklist_of`). */
static PyObject *
Meta_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) != 1 || (kwds != NULL && PyDict_GET_SIZE(kwds) != 0)) {
        PyErr_SetString(PyExc_TypeError, "TaskMeta takes one argument, the task");
        return NULL;
    }
    if (PyType_Check(PyTuple_GET_ITEM(args, 0))) {
        PyErr_SetString(PyExc_TypeError, "a TaskMeta refers to a task, not a class");
        return NULL;
    }
    return _PyWeakref_RefType.tp_new(type, args, NULL);
}

static int
Meta_traverse(Meta *self, visitproc visit, void *arg)
{
    Py_VISIT(self->where_code);
#ifdef Py_GIL_DISABLED
    return _PyWeakref_RefType.tp_traverse((PyObject *)self, visit, arg);
#else
    return 0;
#endif
}

#ifdef Py_GIL_DISABLED
static int
Meta_clear(Meta *self)
{
    Py_CLEAR(self->where_code);
    return _PyWeakref_RefType.tp_clear((PyObject *)self);
}
#endif

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

#ifdef Py_GIL_DISABLED
#define META_FLAGS (Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC)
#else
#define META_FLAGS Py_TPFLAGS_DEFAULT
#endif

static PyTypeObject MetaType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.TaskMeta",
    .tp_basicsize = sizeof(Meta),
    .tp_dealloc = (destructor)Meta_dealloc,
    .tp_flags = META_FLAGS,
    .tp_doc = "a weak reference to a task with the agent's metadata about it",
    .tp_members = Meta_members,
    .tp_getset = Meta_getset,
    .tp_new = Meta_new,
#ifdef Py_GIL_DISABLED
    .tp_traverse = (traverseproc)Meta_traverse,
    .tp_clear = (inquiry)Meta_clear,
#else
    /* set, so that the type does not inherit weakref's GC flag (PyType_Ready would) */
    .tp_traverse = (traverseproc)Meta_traverse,
    .tp_free = PyObject_Free,
#endif
};

/* The task's Meta (borrowed), or NULL; never sets an error. */
static Meta *
meta_of(PyObject *task)
{
    PyWeakReference **list = weaklist_of(task);
    if (list == NULL)
        return NULL;
    for (PyWeakReference *wr = *list; wr != NULL; wr = wr->wr_next) {
        if (Py_IS_TYPE((PyObject *)wr, &MetaType))
            return (Meta *)wr;
    }
    return NULL;
}

/* A new Meta referring to `task` (fields NULL/0), or NULL with an error set.
 *
 * Not through the type call (argument tuple, __new__ and __init__ parsing their arguments):
 * allocated and linked into the task's list as weakref's own __new__ does for a subclass —
 * after the shared basic ref and proxy, which CPython keeps at the head of the list. Not a GC
 * object (see Meta_dealloc): it costs the collector nothing. */
static Meta *
new_meta(PyObject *task)
{
    PyWeakReference **list = weaklist_of(task);
#ifdef Py_GIL_DISABLED
    list = NULL; /* the free-threaded build locks the list: weakref's own __new__ only */
#endif
    if (weakref_vectorcall == NULL || list == NULL) {
        Meta *meta = (Meta *)PyObject_CallOneArg((PyObject *)&MetaType, task);
        if (meta != NULL) {
            weakref_vectorcall = meta->ref.vectorcall;
#ifdef Py_GIL_DISABLED
            PyObject_GC_UnTrack(meta);
#endif
        }
        return meta;
    }
    /* as tp_alloc (PyType_GenericAlloc: not a GC type here), with no memset: every field is
     * set here */
    Meta *meta = PyObject_Malloc(sizeof(Meta));
    if (meta == NULL)
        return (Meta *)PyErr_NoMemory();
    PyObject_Init((PyObject *)meta, &MetaType);
    meta->seq = meta->kind = meta->parent = meta->where_code = NULL;
    meta->counter = NULL;
    meta->where_line = 0;
    meta->created = 0.0;
    PyWeakReference *wr = &meta->ref;
    wr->wr_object = task; /* a weak reference: no incref */
    wr->wr_callback = NULL;
    wr->hash = -1;
    wr->vectorcall = weakref_vectorcall;
    PyWeakReference *prev = NULL, *head = *list;
    if (head != NULL && head->wr_callback == NULL) {
        if (PyWeakref_CheckRefExact(head)) {
            prev = head;
            head = head->wr_next;
        }
        if (head != NULL && head->wr_callback == NULL && PyWeakref_CheckProxy(head))
            prev = head;
    }
    if (prev == NULL) {
        wr->wr_prev = NULL;
        wr->wr_next = *list;
        if (*list != NULL)
            (*list)->wr_prev = wr;
        *list = wr;
    }
    else {
        wr->wr_prev = prev;
        wr->wr_next = prev->wr_next;
        if (prev->wr_next != NULL)
            prev->wr_next->wr_prev = wr;
        prev->wr_next = wr;
    }
    return meta;
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

/* ---- the done accounting --------------------------------------------------------------- */

/* A method of the task class, called on an instance of exactly that class through its
 * descriptor (no attribute lookup by name), or straight through its C function when it is a
 * C method taking no argument (done(), cancelled() of the C Task: no argument checks); any
 * other task by name. */
typedef struct {
    PyObject *name;
    PyObject *descr;
    PyCFunction noargs; /* descr's C function when it is a METH_NOARGS method, else NULL */
} Method;

/* A task waiting for its done accounting (see `step`): held, with the seq it joined at. */
typedef struct {
    PyObject *task;
    long long joined;
    int flushed; /* seen pending by a flush (a lag-probe beat) already */
} Young;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *registry, *on_crash, *on_error;
    PyObject *counters;     /* kind -> Counter */
    Young *young;           /* ring of new tasks not yet accounted nor given the callback */
    Py_ssize_t young_head, young_count, young_size; /* oldest, how many, allocated */
    Py_ssize_t young_limit; /* at most this many held; older ones get the done callback */
    long long last_seq;
    PyTypeObject *task_type; /* the class the Methods below were read from */
    Method done, cancelled, add_done_callback;
    PyObject *exception_field; /* its `_exception` descriptor, or NULL */
} Done;

static inline PyObject *
call_method(Done *self, PyObject *task, Method *method, PyObject *arg)
{
    if (method->descr != NULL && Py_TYPE(task) == self->task_type) {
        if (method->noargs != NULL && arg == NULL)
            return method->noargs(task, NULL);
        PyObject *args[2] = {task, arg};
        return PyObject_Vectorcall(method->descr, args, arg == NULL ? 1 : 2, NULL);
    }
    if (arg == NULL)
        return PyObject_CallMethodNoArgs(task, method->name);
    return PyObject_CallMethodOneArg(task, method->name, arg);
}

/* The Counter of `kind` (borrowed; made on first use), or NULL with an error set. */
static Counter *
counter_of_kind(Done *self, PyObject *kind)
{
    PyObject *found = PyDict_GetItemWithError(self->counters, kind);
    if (found != NULL || PyErr_Occurred())
        return (Counter *)found;
    Counter *counter = PyObject_New(Counter, &CounterType);
    if (counter == NULL)
        return NULL;
    counter->kind = Py_NewRef(kind);
    counter->live = counter->created = 0;
    for (int i = 0; i < OUTCOMES; i++)
        counter->finished[i] = 0;
    int rc = PyDict_SetItem(self->counters, kind, (PyObject *)counter);
    Py_DECREF(counter); /* the dict holds it */
    return rc < 0 ? NULL : counter;
}

static int step(Done *self);
static int release_oldest(Done *self);

/* Append to the ring (its reference is stolen), growing it when full; -1 with an error set
 * (the reference released). */
static int
young_push(Done *self, Young entry)
{
    if (self->young_count == self->young_size) {
        Py_ssize_t size = self->young_size ? self->young_size * 2 : 64;
        Young *ring = PyMem_Malloc(sizeof(Young) * size);
        if (ring == NULL) {
            Py_DECREF(entry.task);
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < self->young_count; i++)
            ring[i] = self->young[(self->young_head + i) & (self->young_size - 1)];
        PyMem_Free(self->young);
        self->young = ring;
        self->young_size = size;
        self->young_head = 0;
    }
    self->young[(self->young_head + self->young_count) & (self->young_size - 1)] = entry;
    self->young_count++;
    return 0;
}

/* Track a new task: its Meta in the registry, its kind's counts, the young ring (see
 * `step`: accounted when found done, the done callback if it waits too long). */
static int
track(Done *self, PyObject *task, Counter *counter, PyObject *parent, PyObject *where_code,
      int where_line)
{
    PyObject *seq = PyLong_FromLongLong(self->last_seq + 1);
    if (seq == NULL)
        return -1;
    Meta *meta = new_meta(task);
    if (meta == NULL) {
        Py_DECREF(seq);
        return -1;
    }
    self->last_seq++;
    meta->seq = seq;
    meta->kind = Py_NewRef(counter->kind);
    meta->counter = (Counter *)Py_NewRef(counter);
    meta->parent = Py_NewRef(parent);
    meta->where_code = Py_XNewRef(where_code);
    meta->where_line = where_line;
    meta->created = monotonic();
    int rc = PyDict_SetItem(self->registry, seq, (PyObject *)meta);
    Py_DECREF(meta);
    if (rc < 0)
        return -1;
    counter->live++;
    counter->created++;
    /* the older ones first: the new task is pending (but for an eager one, seen next time) */
    rc = step(self);
    if (rc == 0 && self->young_count >= self->young_limit)
        rc = release_oldest(self);
    /* on the ring even then (KeyboardInterrupt): it is scheduled, it will run and end */
    Young entry = {Py_NewRef(task), self->last_seq, 0};
    if (young_push(self, entry) < 0)
        rc = -1;
    return rc;
}

static int
done_account(Done *self, PyObject *task)
{
    Meta *meta = meta_of(task);
    if (meta == NULL || meta->kind == NULL || meta->seq == NULL)
        return 0;
    Py_INCREF(meta); /* popping it from the registry would free it */
    int rc = -1, outcome;
    PyObject *exc = NULL;
    if (PyDict_DelItem(self->registry, meta->seq) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            goto out;
        PyErr_Clear(); /* accounted already */
        rc = 0;
        goto out;
    }
    Counter *counter = meta->counter;
    if (counter == NULL && (counter = counter_of_kind(self, meta->kind)) == NULL)
        goto out;
    PyObject *cancelled = call_method(self, task, &self->cancelled, NULL);
    if (cancelled == NULL)
        goto out;
    int is_cancelled = PyObject_IsTrue(cancelled);
    Py_DECREF(cancelled);
    if (is_cancelled < 0)
        goto out;
    if (is_cancelled) {
        outcome = CANCELLED;
    }
    else {
        /* the field, not task.exception(): that would mark it retrieved and silence
         * asyncio's own "exception was never retrieved" report */
        PyObject *field = self->exception_field;
        if (field != NULL && Py_TYPE(task) == self->task_type) {
            exc = Py_TYPE(field)->tp_descr_get(field, task, (PyObject *)self->task_type);
            if (exc == NULL)
                goto out;
        }
        else if (PyObject_GetOptionalAttr(task, str_exception, &exc) < 0) {
            goto out;
        }
        outcome = (exc == NULL || exc == Py_None) ? OK : ERROR;
    }
    /* both at once, no Python code between: a reader on another thread sees both or none */
    counter->live--;
    counter->finished[outcome]++;
    rc = 0;
    if (outcome == ERROR) {
        PyObject *res = PyObject_CallFunctionObjArgs(self->on_crash, task, (PyObject *)meta,
                                                     exc, NULL);
        if (res == NULL)
            rc = -1;
        Py_XDECREF(res);
    }
out:
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

/* ---- the young ring ---------------------------------------------------------------------
 *
 * A new task joins the ring (held) instead of getting a done callback: a done callback costs
 * the loop a Handle per task, and under churn most tasks are done the next time we look. Each
 * new task first looks at the oldest few (`step`): a done one is accounted and released at
 * once, so a finished task is not kept alive for long (a server's task per request is gone
 * within a few requests, as without the agent: kept longer, its objects would count towards
 * the collector's next young-generation collection); a pending one goes to the back of the
 * ring. A task still pending when it is old next to the others (below), or after young_limit
 * newer ones, or at a second flush (each lag-probe beat), or when the ring is full, gets the
 * done callback and leaves the ring. */

/* Per new task: look at up to this many pending young tasks (each look ~100-150 instructions:
 * one is what a batch created at once, all pending, costs per task), and account up to this
 * many done ones (a batch that just finished is released within ~batch/LOOK_DONE new tasks). */
#define LOOK_PENDING 1
#define LOOK_DONE 16
/* A pending task older than OLD_AGE_FACTOR times the ring's length (and OLD_AGE_MIN) in
 * tasks created since is long-lived next to the others (a connection's task among requests'):
 * kept, it would take the looks the short-lived ones need. A batch created at once is never
 * older than the ring is long. */
#define OLD_AGE_FACTOR 2
#define OLD_AGE_MIN 32

enum { ROTATE, FLUSH, EVICT }; /* what `look_at_oldest` may do with a pending task */

static inline void
fetch_error(PyObject **saved)
{
#if PY_VERSION_HEX >= 0x030C0000
    saved[0] = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&saved[0], &saved[1], &saved[2]);
#endif
}

static inline void
restore_error(PyObject **saved)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(saved[0]);
#else
    PyErr_Restore(saved[0], saved[1], saved[2]);
#endif
}

/* Take the oldest young task off the ring: done -> accounted and released (1); pending (0)
 * -> back at the end of the ring, or the done callback if it has waited long enough (always
 * with EVICT). -1 with an error set; a task not accounted then goes back on the ring. Off the
 * ring before any Python code runs (a crash handler may create tasks: this is re-entrant). */
static int
look_at_oldest(Done *self, int policy)
{
    Young entry = self->young[self->young_head];
    self->young_head = (self->young_head + 1) & (self->young_size - 1);
    self->young_count--;
    PyObject *done = call_method(self, entry.task, &self->done, NULL);
    int state = done == NULL ? -1 : PyObject_IsTrue(done);
    Py_XDECREF(done);
    if (state > 0) {
        state = done_account(self, entry.task) < 0 ? -1 : 1;
        Py_DECREF(entry.task); /* accounted (or its accounting failed): released either way */
        return state;
    }
    if (state == 0) {
        long long age = self->last_seq - entry.joined; /* in tasks created since */
        int waited = policy == EVICT || (policy == FLUSH && entry.flushed) ||
                     age >= self->young_limit ||
                     (age >= OLD_AGE_MIN && age >= OLD_AGE_FACTOR * self->young_count);
        if (!waited) {
            entry.flushed |= policy == FLUSH;
            return young_push(self, entry);
        }
        PyObject *res = call_method(self, entry.task, &self->add_done_callback,
                                    (PyObject *)self);
        if (res != NULL) {
            Py_DECREF(res);
            Py_DECREF(entry.task);
            return 0;
        }
    }
    PyObject *saved[3] = {NULL, NULL, NULL};
    fetch_error(saved);
    if (young_push(self, entry) < 0)
        PyErr_Clear();
    restore_error(saved);
    return -1;
}

/* The incremental sweep, at each new task: the oldest young tasks, LOOK_DONE done ones and
 * LOOK_PENDING pending ones at most, each looked at once at most. */
static int
step(Done *self)
{
    int pending = LOOK_PENDING, done = LOOK_DONE;
    for (Py_ssize_t n = self->young_count; n > 0 && pending > 0 && done > 0; n--) {
        if (self->young_count == 0)
            break;
        int state = look_at_oldest(self, ROTATE);
        if (state > 0) {
            done--;
            continue;
        }
        pending--;
        if (state < 0) {
            report(self->on_error);
            if (PyErr_Occurred()) /* KeyboardInterrupt and friends */
                return -1;
        }
    }
    return 0;
}

/* Make room in a full ring: the oldest leaves it, accounted or with the done callback (on
 * a failure it stays: the ring outgrows young_limit by the tasks whose methods fail). */
static int
release_oldest(Done *self)
{
    if (look_at_oldest(self, EVICT) < 0) {
        report(self->on_error);
        if (PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* The whole ring (each lag-probe beat, and `counts()` on the loop's thread): every done task
 * accounted; a pending one that was pending at the previous flush gets the done callback, so
 * a long-lived task leaves the ring within two beats. */
static int
sweep(Done *self)
{
    for (Py_ssize_t n = self->young_count; n > 0 && self->young_count > 0; n--) {
        if (look_at_oldest(self, FLUSH) < 0) {
            report(self->on_error);
            if (PyErr_Occurred()) /* KeyboardInterrupt: the rest stay on the ring */
                return -1;
        }
    }
    return 0;
}

static PyObject *
Done_sweep(Done *self, PyObject *Py_UNUSED(unused))
{
    if (sweep(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Done_track(Done *self, PyObject *args)
{
    PyObject *task, *kind, *parent;
    if (!PyArg_ParseTuple(args, "OOO:track", &task, &kind, &parent))
        return NULL;
    Counter *counter = counter_of_kind(self, kind);
    if (counter == NULL || track(self, task, counter, parent, NULL, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

typedef struct {
    PyObject *kind;
    long long live, created, finished[OUTCOMES];
} Reading;

static int
set_count(PyObject *dict, PyObject *key, long long value)
{
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL)
        return -1;
    int rc = PyDict_SetItem(dict, key, number);
    Py_DECREF(number);
    return rc;
}

/* (live, created, finished) as the pure-Python path keeps them: kind -> n, kind -> n,
 * (kind, outcome) -> n. The counters are copied first with no allocation that could run a
 * collection (and a finalizer's Python code, and a thread switch): one consistent reading. */
static PyObject *
Done_counts(Done *self, PyObject *Py_UNUSED(unused))
{
    Py_ssize_t n = PyDict_GET_SIZE(self->counters), pos = 0, i = 0;
    Reading *readings = PyMem_RawMalloc(sizeof(Reading) * (n ? n : 1));
    if (readings == NULL)
        return PyErr_NoMemory();
    PyObject *key, *value;
    while (i < n && PyDict_Next(self->counters, &pos, &key, &value)) {
        Counter *c = (Counter *)value;
        Reading *r = &readings[i++];
        r->kind = Py_NewRef(c->kind);
        r->live = c->live;
        r->created = c->created;
        for (int o = 0; o < OUTCOMES; o++)
            r->finished[o] = c->finished[o];
    }
    n = i;
    PyObject *live = PyDict_New(), *created = PyDict_New(), *finished = PyDict_New();
    PyObject *result = NULL;
    if (live == NULL || created == NULL || finished == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        Reading *r = &readings[i];
        int any = 0;
        for (int o = 0; o < OUTCOMES; o++) {
            if (r->finished[o] == 0)
                continue;
            any = 1;
            PyObject *pair = PyTuple_Pack(2, r->kind, str_outcome[o]);
            int rc = pair == NULL ? -1 : set_count(finished, pair, r->finished[o]);
            Py_XDECREF(pair);
            if (rc < 0)
                goto out;
        }
        if (r->created > 0 && set_count(created, r->kind, r->created) < 0)
            goto out;
        if ((r->created > 0 || any || r->live != 0) && set_count(live, r->kind, r->live) < 0)
            goto out;
    }
    result = PyTuple_Pack(3, live, created, finished);
out:
    for (i = 0; i < n; i++)
        Py_DECREF(readings[i].kind);
    PyMem_RawFree(readings);
    Py_XDECREF(live);
    Py_XDECREF(created);
    Py_XDECREF(finished);
    return result;
}

static PyObject *
Done_young_count(Done *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(self->young_count);
}

static PyMethodDef Done_methods[] = {
    {"sweep", (PyCFunction)Done_sweep, METH_NOARGS,
     "account the young tasks that are done; those pending at two sweeps get the callback"},
    {"track", (PyCFunction)Done_track, METH_VARARGS,
     "track(task, kind, parent_seq): account a task that exists already (adoption)"},
    {"counts", (PyCFunction)Done_counts, METH_NOARGS,
     "(live, created, finished) dicts: kind -> n, kind -> n, (kind, outcome) -> n"},
    {NULL}};

static PyGetSetDef Done_getset[] = {
    {"young", (getter)Done_young_count, NULL, "young tasks held, waiting to be seen done", NULL},
    {NULL}};

static int
read_method(Method *method, PyObject *task_class, PyObject *name)
{
    method->name = Py_NewRef(name);
    if (task_class == Py_None)
        return 0;
    method->descr = PyObject_GetAttr(task_class, name);
    if (method->descr == NULL)
        return -1;
    if (Py_IS_TYPE(method->descr, &PyMethodDescr_Type)) {
        PyMethodDef *def = ((PyMethodDescrObject *)method->descr)->d_method;
        int kind = def->ml_flags & (METH_VARARGS | METH_FASTCALL | METH_NOARGS | METH_O |
                                    METH_KEYWORDS | METH_METHOD);
        if (kind == METH_NOARGS)
            method->noargs = def->ml_meth;
    }
    return 0;
}

static PyObject *
Done_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"registry", "on_crash", "on_error", "young_limit", "task_class",
                             NULL};
    PyObject *registry, *on_crash, *on_error, *task_class = Py_None;
    Py_ssize_t young_limit = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO|nO", kwlist, &PyDict_Type, &registry,
                                     &on_crash, &on_error, &young_limit, &task_class))
        return NULL;
    if (young_limit < 1) {
        PyErr_SetString(PyExc_ValueError, "young_limit must be >= 1");
        return NULL;
    }
    if (task_class != Py_None && !PyType_Check(task_class)) {
        PyErr_SetString(PyExc_TypeError, "task_class must be a class");
        return NULL;
    }
    Done *self = (Done *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = (vectorcallfunc)Done_vectorcall;
    self->registry = Py_NewRef(registry);
    self->on_crash = Py_NewRef(on_crash);
    self->on_error = Py_NewRef(on_error);
    self->young_limit = young_limit;
    self->counters = PyDict_New();
    if (task_class != Py_None) {
        self->task_type = (PyTypeObject *)Py_NewRef(task_class);
        /* a descriptor with a getter (C Task: a getset), else the slow path by name */
        PyObject *field = PyObject_GetAttr(task_class, str_exception);
        if (field != NULL && Py_TYPE(field)->tp_descr_get != NULL)
            self->exception_field = field;
        else
            Py_XDECREF(field);
        PyErr_Clear();
    }
    if (self->counters == NULL ||
        read_method(&self->done, task_class, str_done) < 0 ||
        read_method(&self->cancelled, task_class, str_cancelled) < 0 ||
        read_method(&self->add_done_callback, task_class, str_add_done_callback) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
Done_traverse(Done *self, visitproc visit, void *arg)
{
    Py_VISIT(self->registry);
    Py_VISIT(self->on_crash);
    Py_VISIT(self->on_error);
    for (Py_ssize_t i = 0; i < self->young_count; i++)
        Py_VISIT(self->young[(self->young_head + i) & (self->young_size - 1)].task);
    Py_VISIT(self->task_type);
    Py_VISIT(self->done.descr);
    Py_VISIT(self->cancelled.descr);
    Py_VISIT(self->add_done_callback.descr);
    Py_VISIT(self->exception_field);
    return 0;
}

/* Empty the ring; detached first: a task's release may run any code. */
static void
young_clear(Done *self)
{
    Young *ring = self->young;
    Py_ssize_t head = self->young_head, count = self->young_count, size = self->young_size;
    self->young = NULL;
    self->young_head = self->young_count = self->young_size = 0;
    for (Py_ssize_t i = 0; i < count; i++)
        Py_DECREF(ring[(head + i) & (size - 1)].task);
    PyMem_Free(ring);
}

static int
Done_clear(Done *self)
{
    Py_CLEAR(self->registry);
    Py_CLEAR(self->on_crash);
    Py_CLEAR(self->on_error);
    young_clear(self);
    Py_CLEAR(self->task_type);
    Py_CLEAR(self->done.descr);
    Py_CLEAR(self->cancelled.descr);
    Py_CLEAR(self->add_done_callback.descr);
    Py_CLEAR(self->exception_field);
    return 0;
}

static void
Done_dealloc(Done *self)
{
    PyObject_GC_UnTrack(self);
    Done_clear(self);
    Py_CLEAR(self->counters);
    Py_CLEAR(self->done.name);
    Py_CLEAR(self->cancelled.name);
    Py_CLEAR(self->add_done_callback.name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject DoneType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._tasks_accel.DoneCallback",
    .tp_basicsize = sizeof(Done),
    .tp_dealloc = (destructor)Done_dealloc,
    .tp_vectorcall_offset = offsetof(Done, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the collector's done callback: registry, counts by kind, crashes",
    .tp_new = Done_new,
    .tp_traverse = (traverseproc)Done_traverse,
    .tp_clear = (inquiry)Done_clear,
    .tp_methods = Done_methods,
    .tp_getset = Done_getset,
};

/* ---- the task factory ------------------------------------------------------------------ */

/* The last kinds seen, by the identity of their code object (a code object's hash is
 * recomputed from its contents at each dict lookup): direct-mapped, holding the code. */
#define KIND_CACHE 64

typedef struct {
    PyObject *code;
    Counter *counter;
} KindSlot;

/* Per code object (by identity, held): is it library code "created at" looks past; and the
 * line of one of its instructions (a line number is found by scanning the line table). */
#define SITE_CACHE 64

typedef struct {
    PyObject *code;
    int library;
} Verdict;

typedef struct {
    PyObject *code;
    int lasti, line;
} Line;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *kinds, *kind_of, *on_error, *current_task, *previous, *task_class;
    PyObject *current_tasks; /* loop -> running task (asyncio's own dict, 3.11), or None */
    Done *done;
    PyObject *is_library; /* callable(filename) -> bool: a frame "created at" skips */
    PyObject *verdicts;   /* filename -> bool, is_library's answers */
    Meta *last_parent;    /* the last parent's meta: most tasks share their parent's */
    KindSlot cache[KIND_CACHE];
    Verdict verdict_cache[SITE_CACHE];
    Line line_cache[SITE_CACHE];
} Factory;

static inline size_t
code_hash(PyObject *code, int salt)
{
    return (((uintptr_t)code >> 4) ^ (size_t)salt * 0x9E3779B1u) % SITE_CACHE;
}

static inline KindSlot *
slot_of(Factory *self, PyObject *code)
{
    return &self->cache[((uintptr_t)code >> 4) % KIND_CACHE];
}

/* The Counter of `coro`'s kind (borrowed), or NULL with an error set. */
static Counter *
counter_for(Factory *self, PyObject *coro)
{
    PyObject *code = NULL, *kind = NULL;
    if (PyCoro_CheckExact(coro)) {
        /* its field: no attribute lookup, and no "object.__getattr__" audit event per task
         * (the cr_code getter raises one) */
        code = Py_NewRef(coroutine_code(coro));
    }
    else if (PyObject_GetOptionalAttr(coro, str_cr_code, &code) < 0) {
        return NULL;
    }
    if (code != NULL) {
        KindSlot *slot = slot_of(self, code);
        if (slot->code == code) {
            Py_DECREF(code);
            return slot->counter;
        }
        kind = Py_XNewRef(PyDict_GetItemWithError(self->kinds, code));
        if (kind == NULL && PyErr_Occurred()) {
            Py_DECREF(code);
            return NULL;
        }
    }
    if (kind == NULL)
        kind = PyObject_CallOneArg(self->kind_of, coro);
    Counter *counter = kind == NULL ? NULL : counter_of_kind(self->done, kind);
    Py_XDECREF(kind);
    if (counter != NULL && code != NULL) {
        KindSlot *slot = slot_of(self, code);
        Py_XSETREF(slot->code, Py_NewRef(code));
        Py_XSETREF(slot->counter, (Counter *)Py_NewRef(counter));
    }
    Py_XDECREF(code);
    return counter;
}

/* The seq of the running task (new reference: an int or None), or NULL with an error. */
static PyObject *
parent_seq(Factory *self, PyObject *loop)
{
    PyObject *parent;
    if (PyDict_CheckExact(self->current_tasks)) { /* 3.11: current_task is Python code */
        parent = PyDict_GetItemWithError(self->current_tasks, loop);
        if (parent == NULL && PyErr_Occurred())
            return NULL;
        parent = Py_NewRef(parent != NULL ? parent : Py_None);
    }
    else if ((parent = PyObject_CallOneArg(self->current_task, loop)) == NULL) {
        return NULL;
    }
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
    PyThreadState *tstate = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *frame = first_complete(tstate->current_frame);
#else
    _PyInterpreterFrame *frame = first_complete(tstate->cframe->current_frame);
#endif
    for (int depth = 0; frame != NULL && depth < 12; depth++) {
        PyCodeObject *code = code_of(frame);
        Verdict *known = &self->verdict_cache[code_hash((PyObject *)code, 0)];
        if (known->code != (PyObject *)code) {
            Py_INCREF(code); /* is_library may run any code */
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
                return NULL;
            }
            Py_XSETREF(known->code, (PyObject *)code); /* the reference taken above */
            known->library = verdict != Py_False;
        }
        if (!known->library) {
            /* the instruction's offset in bytes, as PyFrame_GetLasti gives it */
            int lasti = _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT);
            Line *seen = &self->line_cache[code_hash((PyObject *)code, lasti)];
            if (seen->code != (PyObject *)code || seen->lasti != lasti) {
                Py_XSETREF(seen->code, Py_NewRef((PyObject *)code));
                seen->lasti = lasti;
                seen->line = PyCode_Addr2Line(code, lasti);
            }
            *line = seen->line;
            return Py_NewRef((PyObject *)code);
        }
        frame = first_complete(frame->previous);
    }
    return NULL;
}

static PyObject *
make_task(Factory *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    if (self->previous != Py_None)
        return PyObject_Vectorcall(self->previous, args, nargsf, kwnames);
    /* Task(coro, loop=loop, **kwargs) */
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nkw == 0) {
        PyObject *stack[2] = {args[1], args[0]};
        return PyObject_Vectorcall(self->task_class, stack, 1, names_loop);
    }
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
    /* Kind, parent and creation site before the task exists: an eager task (3.12+) runs its
     * first step inside its creation, and may even finish there. */
    Counter *counter = counter_for(self, args[1]);
    PyObject *parent = counter == NULL ? NULL : parent_seq(self, args[0]);
    if (parent == NULL) {
        counter = NULL;
        report(self->on_error);
        if (PyErr_Occurred())
            return NULL;
    }
    int line = 0;
    PyObject *site = counter == NULL ? NULL : creation_site(self, &line);
    Py_XINCREF(counter); /* held across the app's factory, which may run any code */
    PyObject *task = make_task(self, args, nargsf, kwnames);
    if (task != NULL && counter != NULL &&
        track(self->done, task, counter, parent, site, line) < 0) {
        report(self->on_error);
        if (PyErr_Occurred())
            Py_CLEAR(task);
    }
    Py_XDECREF(counter);
    Py_XDECREF(site);
    Py_XDECREF(parent);
    return task;
}

static PyObject *
Factory_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"kinds", "kind_of", "done", "on_error", "current_task",
                             "previous", "task_class", "is_library", "current_tasks", NULL};
    PyObject *kinds, *kind_of, *done, *on_error, *current_task, *previous, *task_class,
        *is_library = Py_None, *current_tasks = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OO!OOOO|OO", kwlist, &PyDict_Type, &kinds,
                                     &kind_of, &DoneType, &done, &on_error, &current_task,
                                     &previous, &task_class, &is_library, &current_tasks))
        return NULL;
    PyObject *verdicts = PyDict_New();
    if (verdicts == NULL)
        return NULL;
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
    self->done = (Done *)Py_NewRef(done);
    self->on_error = Py_NewRef(on_error);
    self->current_task = Py_NewRef(current_task);
    self->previous = Py_NewRef(previous);
    self->task_class = Py_NewRef(task_class);
    self->current_tasks = Py_NewRef(current_tasks);
    return (PyObject *)self;
}

static int
Factory_traverse(Factory *self, visitproc visit, void *arg)
{
    Py_VISIT(self->kinds);
    Py_VISIT(self->kind_of);
    Py_VISIT(self->done);
    Py_VISIT(self->on_error);
    Py_VISIT(self->current_task);
    Py_VISIT(self->previous);
    Py_VISIT(self->task_class);
    Py_VISIT(self->current_tasks);
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
    Py_CLEAR(self->done);
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->current_task);
    Py_CLEAR(self->previous);
    Py_CLEAR(self->task_class);
    Py_CLEAR(self->current_tasks);
    Py_CLEAR(self->is_library);
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->last_parent);
    for (int i = 0; i < KIND_CACHE; i++) {
        Py_CLEAR(self->cache[i].code);
        Py_CLEAR(self->cache[i].counter);
    }
    for (int i = 0; i < SITE_CACHE; i++) {
        Py_CLEAR(self->verdict_cache[i].code);
        Py_CLEAR(self->line_cache[i].code);
    }
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
    INTERN(str_outcome[OK], "ok");
    INTERN(str_outcome[ERROR], "error");
    INTERN(str_outcome[CANCELLED], "cancelled");
#undef INTERN
    if ((names_loop = PyTuple_Pack(1, str_loop)) == NULL)
        return NULL;
    MetaType.tp_base = &_PyWeakref_RefType;
    if (PyType_Ready(&CounterType) < 0 || PyType_Ready(&MetaType) < 0 ||
        PyType_Ready(&DoneType) < 0 || PyType_Ready(&FactoryType) < 0)
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
