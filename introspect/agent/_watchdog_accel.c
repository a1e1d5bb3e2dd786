/* The blocking watchdog's clock and wait, in C (introspect/agent/blocking.py has the same
 * semantics in Python and uses them when this module is not built).
 *
 * Why: each time the watchdog thread takes the GIL from a busy event loop, the loop thread
 * has to drop it, sleep, and be woken again: on a host whose cores are all busy that costs the
 * loop far more than the watchdog's own work (measured: ~5 % of a single-worker uvicorn's
 * requests for ~13 wake-ups a second). Most wake-ups find nothing to do: the loop is idle in
 * select(), or busy for less than the threshold with its thread on the CPU. Those looks are
 * made here, without the GIL; the thread returns to Python only when a block may have begun,
 * when a held-time sample has off-CPU time to attribute, or when Python's duties are due.
 *
 * SelectClock wraps the selector's `select` (set on the selector instance): it time-stamps
 * each entry and return, as atomics the watchdog reads without the GIL. `busy` is the time of
 * the last return while the loop runs callbacks, IN_SELECT while it waits in select(), and
 * NEVER before the first return.
 *
 * Watch.wait() sleeps (GIL released) until the next sample, a deadline or Python's next duty
 * (a DueStamp the loop thread moves on while it does the duties itself, so a busy loop is not
 * asked for the GIL for them: see blocking.py), makes the looks it can make alone, and returns (stopped, now, sample, next_sample) for the
 * one it can't. The state a look updates (the previous sample's wall and loop-CPU times, and
 * the loop CPU last seen busy) lives here and is read and written by blocking.py through
 * attributes; NaN stands for "none". wait() is called by one thread at a time (the watchdog),
 * which is also the only one to change that state, so it needs no lock of its own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define IN_SELECT (-1.0)
#define NEVER (-2.0)

enum { MODE_EVERY, MODE_IDLE, MODE_HELD };

static double
monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic()'s clock */
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* --- GIL hand-off ----------------------------------------------------------------------- */
/* A loop that never waits lets the GIL go only inside select(0), ~1 us, and takes it back
 * before a thread woken for it runs: CPython's GIL gives that thread no turn (its 5 ms
 * timeout restarts at each release), so an agent thread could wait seconds for it (the
 * server's answer to a client, the watchdog's look). `agent_busy` counts the agent threads
 * that have woken up and want the GIL (from the wake-up until they sleep again in C: the
 * server's epoll_poll, the watchdog's wait); while it is non-zero, the loop's select()
 * wrapper (SelectClock) sleeps HANDOFF_NS with the GIL released before selecting, so the
 * waiter takes it. Idle agent threads cost the loop nothing. */
#define HANDOFF_NS 200000L
#define HANDOFF_WINDOW 0.02 /* seconds the loop keeps offering while nothing changes */

static _Atomic int agent_busy;
/* moves at every change of agent_busy. The loop offers the GIL for HANDOFF_WINDOW after a
 * change, then no more until the next: a thread counted busy but stuck in a call with the GIL
 * released (a stalled log write) costs the loop that window, not a sleep per select() */
static _Atomic unsigned long busy_changes;
/* non-NULL while this thread is counted in agent_busy; a thread that ends counted is
 * uncounted by the key's destructor (a stopped watchdog, the server thread at stop()) */
static pthread_key_t busy_key;

/* the loop thread's own (it calls hand_off with the GIL held) */
static unsigned long changes_seen;
static double changed_at;

static void
busy_begin(void)
{
    if (pthread_getspecific(busy_key) == NULL) {
        pthread_setspecific(busy_key, (void *)1);
        atomic_fetch_add_explicit(&agent_busy, 1, memory_order_release);
        atomic_fetch_add_explicit(&busy_changes, 1, memory_order_relaxed);
    }
}

static void
busy_end(void)
{
    if (pthread_getspecific(busy_key) != NULL) {
        pthread_setspecific(busy_key, NULL);
        atomic_fetch_sub_explicit(&agent_busy, 1, memory_order_release);
        atomic_fetch_add_explicit(&busy_changes, 1, memory_order_relaxed);
    }
}

static void
busy_thread_ended(void *counted)
{
    if (counted != NULL) {
        atomic_fetch_sub_explicit(&agent_busy, 1, memory_order_release);
        atomic_fetch_add_explicit(&busy_changes, 1, memory_order_relaxed);
    }
}

static void
handoff_after_fork_child(void)
{
    changes_seen = 0;
    changed_at = 0.0;
    /* only the forking thread lives on: no agent thread of the parent is busy here */
    atomic_store(&agent_busy, pthread_getspecific(busy_key) != NULL ? 1 : 0);
}

static unsigned long long handoffs; /* select()s that let an agent thread go first */

static void
hand_off(void)
{
    if (atomic_load_explicit(&agent_busy, memory_order_acquire) <= 0)
        return;
    double now = monotonic();
    unsigned long changes = atomic_load_explicit(&busy_changes, memory_order_relaxed);
    if (changes != changes_seen) {
        changes_seen = changes;
        changed_at = now;
    }
    else if (now - changed_at > HANDOFF_WINDOW) {
        return; /* offered long enough: until the busy threads change */
    }
    handoffs++;
    Py_BEGIN_ALLOW_THREADS
    struct timespec ts = {0, HANDOFF_NS};
    nanosleep(&ts, NULL);
    Py_END_ALLOW_THREADS
}

/* epoll_poll(epfd, timeout, maxevents) -> [(fd, events)]: select.epoll.poll for the agent's
 * server loop, counted idle while it waits and busy from its wake-up (see above). */
static PyObject *
epoll_poll(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "epoll_poll(epfd, timeout, maxevents)");
        return NULL;
    }
    int epfd = (int)PyLong_AsLong(args[0]);
    double timeout = PyFloat_AsDouble(args[1]);
    int maxevents = (int)PyLong_AsLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    int ms = timeout < 0 ? -1 : (int)ceil(timeout * 1000.0);
    if (maxevents < 1)
        maxevents = 1;
    if (maxevents > 1024)
        maxevents = 1024;
    struct epoll_event *events = PyMem_Malloc(sizeof(struct epoll_event) * (size_t)maxevents);
    if (events == NULL)
        return PyErr_NoMemory();
    int n, err;
    busy_end();
    Py_BEGIN_ALLOW_THREADS
    n = epoll_wait(epfd, events, maxevents, ms);
    err = errno;
    busy_begin();
    Py_END_ALLOW_THREADS
    if (n < 0) {
        PyMem_Free(events);
        if (err == EINTR)
            return PyList_New(0); /* the selector's caller just loops */
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *list = PyList_New(n);
    for (int i = 0; list != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue("(iI)", events[i].data.fd, events[i].events);
        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    PyMem_Free(events);
    return list;
}

static PyObject *
get_handoffs(PyObject *module, PyObject *unused)
{
    return Py_BuildValue("(Kik)", handoffs, atomic_load(&agent_busy), atomic_load(&busy_changes));
}

/* --- SelectClock ------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *original;
    vectorcallfunc vectorcall;
    _Atomic double entered_at;
    _Atomic double returned_at;
    _Atomic double busy; /* returned_at while busy, IN_SELECT, or NEVER */
} SelectClock;

static PyObject *
Clock_call(SelectClock *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    hand_off();
    atomic_store_explicit(&self->entered_at, monotonic(), memory_order_relaxed);
    atomic_store_explicit(&self->busy, IN_SELECT, memory_order_release);
    PyObject *result = PyObject_Vectorcall(self->original, args, nargsf, kwnames);
    double now = monotonic();
    atomic_store_explicit(&self->returned_at, now, memory_order_relaxed);
    atomic_store_explicit(&self->busy, now, memory_order_release);
    return result;
}

static PyObject *
Clock_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *original;
    static char *kwlist[] = {"original", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:SelectClock", kwlist, &original))
        return NULL;
    if (!PyCallable_Check(original)) {
        PyErr_SetString(PyExc_TypeError, "SelectClock wraps a callable");
        return NULL;
    }
    SelectClock *self = (SelectClock *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->original = Py_NewRef(original);
    self->vectorcall = (vectorcallfunc)Clock_call;
    atomic_init(&self->entered_at, 0.0);
    atomic_init(&self->returned_at, 0.0);
    atomic_init(&self->busy, NEVER);
    return (PyObject *)self;
}

static int
Clock_traverse(SelectClock *self, visitproc visit, void *arg)
{
    Py_VISIT(self->original);
    return 0;
}

static int
Clock_clear(SelectClock *self)
{
    Py_CLEAR(self->original);
    return 0;
}

static void
Clock_dealloc(SelectClock *self)
{
    PyObject_GC_UnTrack(self);
    Clock_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Clock_get_entered_at(SelectClock *self, void *closure)
{
    return PyFloat_FromDouble(atomic_load(&self->entered_at));
}

static PyObject *
Clock_get_returned_at(SelectClock *self, void *closure)
{
    return PyFloat_FromDouble(atomic_load(&self->returned_at));
}

static PyObject *
Clock_get_in_select(SelectClock *self, void *closure)
{
    return PyBool_FromLong(atomic_load(&self->busy) < 0.0);
}

static PyObject *
Clock_get_original(SelectClock *self, void *closure)
{
    return Py_NewRef(self->original != NULL ? self->original : Py_None);
}

static PyGetSetDef Clock_getset[] = {
    {"entered_at", (getter)Clock_get_entered_at, NULL, "time.monotonic() of the last entry"},
    {"returned_at", (getter)Clock_get_returned_at, NULL,
     "time.monotonic() of the last return (0.0: none yet)"},
    {"in_select", (getter)Clock_get_in_select, NULL, "waiting in select() (or not yet run)"},
    {"original", (getter)Clock_get_original, NULL, "the selector's own select"},
    {NULL}};

static PyTypeObject ClockType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._watchdog_accel.SelectClock",
    .tp_basicsize = sizeof(SelectClock),
    .tp_dealloc = (destructor)Clock_dealloc,
    .tp_vectorcall_offset = offsetof(SelectClock, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "the selector's select(), time-stamped at each entry and return",
    .tp_new = Clock_new,
    .tp_traverse = (traverseproc)Clock_traverse,
    .tp_clear = (inquiry)Clock_clear,
    .tp_getset = Clock_getset,
};

/* --- DueStamp: the lag probe's next due time (for loops without a Python selector) --------- */

typedef struct {
    PyObject_HEAD
    _Atomic double value; /* 0.0: not armed */
} DueStamp;

static PyObject *
Due_set(DueStamp *self, PyObject *arg)
{
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return NULL;
    atomic_store_explicit(&self->value, value, memory_order_release);
    Py_RETURN_NONE;
}

static PyObject *
Due_get_value(DueStamp *self, void *closure)
{
    return PyFloat_FromDouble(atomic_load(&self->value));
}

static PyMethodDef Due_methods[] = {
    {"set", (PyCFunction)Due_set, METH_O, "the probe's next due time (time.monotonic())"},
    {NULL}};

static PyGetSetDef Due_getset[] = {
    {"value", (getter)Due_get_value, NULL, "the probe's next due time, 0.0 if not armed"},
    {NULL}};

static PyTypeObject DueType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._watchdog_accel.DueStamp",
    .tp_basicsize = sizeof(DueStamp),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "when the lag probe is next due: overdue = the loop has been busy since then",
    .tp_new = PyType_GenericNew,
    .tp_methods = Due_methods,
    .tp_getset = Due_getset,
};

/* Since when the loop has been busy, as blocking.py's `busy_since` reads it: 1 busy (`*since`
 * set), 0 idle, -1 unknown (Python's to decide). */
static int
busy_since(PyObject *source, double now, double *since)
{
    if (Py_IS_TYPE(source, &DueType)) {
        double due = atomic_load_explicit(&((DueStamp *)source)->value, memory_order_acquire);
        if (due <= 0.0)
            return -1;
        if (now <= due)
            return 0;
        *since = due;
        return 1;
    }
    double busy = atomic_load_explicit(&((SelectClock *)source)->busy, memory_order_acquire);
    if (busy == NEVER)
        return -1;
    if (busy < 0.0)
        return 0;
    *since = busy;
    return 1;
}

/* --- Watch ------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    pid_t pid; /* the process that made the mutex: a forked child never touches it */
    int stopped;
    int has_cpu_clock;
    clockid_t cpu_clock;
    uint64_t rng;
    double poll, threshold, margin, held_share;
    /* shared with blocking.py (NaN: none) */
    double last_tick, held_cpu, seen_wall, seen_cpu;
    unsigned long long looks_in_c, busy_looks_in_c, returns;
} Watch;

static double
next_random(Watch *self) /* xorshift64*: uniform in [0, 1) */
{
    uint64_t x = self->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    self->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) * (1.0 / 9007199254740992.0);
}

static PyObject *
Watch_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    double poll, threshold, margin, held_share;
    unsigned long long seed;
    static char *kwlist[] = {"poll", "threshold", "margin", "held_share", "seed", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ddddK:Watch", kwlist, &poll, &threshold,
                                     &margin, &held_share, &seed))
        return NULL;
    Watch *self = (Watch *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&self->cond, &attr) != 0 ||
        pthread_mutex_init(&self->mutex, NULL) != 0) {
        Py_DECREF(self);
        PyErr_SetString(PyExc_OSError, "could not make the watchdog's condition variable");
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    self->pid = getpid();
    self->poll = poll;
    self->threshold = threshold;
    self->margin = margin;
    self->held_share = held_share;
    self->rng = seed | 1;
    self->last_tick = self->held_cpu = self->seen_wall = self->seen_cpu = NAN;
    return (PyObject *)self;
}

static void
Watch_dealloc(Watch *self)
{
    if (self->pid == getpid() && self->pid != 0) {
        pthread_cond_destroy(&self->cond);
        pthread_mutex_destroy(&self->mutex);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Watch_stop(Watch *self, PyObject *unused)
{
    if (self->pid != getpid()) { /* a copy made by fork(): its mutex may be held forever */
        self->stopped = 1;
        Py_RETURN_NONE;
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->mutex);
    self->stopped = 1;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->mutex);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
Watch_set_cpu_clock(Watch *self, PyObject *arg)
{
    if (arg == Py_None) {
        self->has_cpu_clock = 0;
        Py_RETURN_NONE;
    }
    long id = PyLong_AsLong(arg);
    if (id == -1 && PyErr_Occurred())
        return NULL;
    self->cpu_clock = (clockid_t)id;
    self->has_cpu_clock = 1;
    Py_RETURN_NONE;
}

static double
as_deadline(PyObject *value)
{
    return value == Py_None ? INFINITY : PyFloat_AsDouble(value);
}

/* When Python's duties are due: a fixed time, or a DueStamp that another thread may move
 * while the wait sleeps (the loop thread does the duties on its beat and moves the watchdog's
 * turn on, blocking.py), read again at each wake-up. A stamp at 0.0 is not armed. */
static double
due_of(PyObject *stamp, double fixed)
{
    if (stamp == NULL)
        return fixed;
    double due = atomic_load_explicit(&((DueStamp *)stamp)->value, memory_order_acquire);
    return due > 0.0 ? due : INFINITY;
}

/* One look at the loop made without Python. Returns 1 if it was made (the state updated and
 * `*deadline` set), 0 if Python must make it. */
static int
look(Watch *self, PyObject *source, int mode, int sample, double now, double *deadline)
{
    double busy = 0.0;
    int state = busy_since(source, now, &busy);
    if (state < 0)
        return 0;
    struct timespec ts;
    if (!self->has_cpu_clock || clock_gettime(self->cpu_clock, &ts) != 0)
        return 0;
    double cpu = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
    if (state == 0) { /* idle: no block, no held time */
        if (sample) {
            self->last_tick = now;
            self->held_cpu = cpu;
        }
        self->seen_wall = self->seen_cpu = NAN;
        *deadline = INFINITY;
        return 1;
    }
    if (now - busy >= self->threshold)
        return 0; /* a block may have begun: Python's */
    if (sample && mode == MODE_IDLE)
        return 0; /* held time without the busy sampler: every busy sample is Python's */
    if (sample && !isnan(self->last_tick)) {
        /* held time: what Python would add is the gap's off-CPU part (the busy sampler
         * counts the CPU part); a gap with the loop thread on the CPU nearly throughout adds
         * almost nothing and is not worth the GIL */
        double gap = now - self->last_tick;
        double off = gap - (cpu - self->held_cpu);
        if (off > self->held_share * gap)
            return 0;
    }
    if (sample) {
        self->last_tick = now;
        self->held_cpu = cpu;
    }
    self->seen_wall = now;
    self->seen_cpu = cpu;
    self->busy_looks_in_c++;
    *deadline = busy + self->threshold + self->margin;
    return 1;
}

static PyObject *
Watch_wait(Watch *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "wait(clock, next_sample, deadline, due, mode) takes 5 arguments");
        return NULL;
    }
    PyObject *clock = args[0];
    if (clock == Py_None)
        clock = NULL;
    else if (!Py_IS_TYPE(clock, &ClockType) && !Py_IS_TYPE(clock, &DueType)) {
        PyErr_SetString(PyExc_TypeError, "clock must be a SelectClock, a DueStamp or None");
        return NULL;
    }
    double next_sample = PyFloat_AsDouble(args[1]);
    double deadline = as_deadline(args[2]);
    PyObject *due_stamp = Py_IS_TYPE(args[3], &DueType) ? args[3] : NULL;
    double fixed_due = due_stamp != NULL ? INFINITY : as_deadline(args[3]);
    long mode = PyLong_AsLong(args[4]);
    if (PyErr_Occurred())
        return NULL;
    if (clock == NULL)
        mode = MODE_EVERY;
    if (self->pid != getpid()) {
        PyErr_SetString(PyExc_RuntimeError, "a Watch is not usable after fork()");
        return NULL;
    }
    int stopped = 0, sample = 0;
    double now = 0.0;
    Py_INCREF(self);
    Py_XINCREF(clock);
    Py_XINCREF(due_stamp);
    busy_end();
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&self->mutex);
    for (;;) {
        double due = due_of(due_stamp, fixed_due);
        double wake = fmin(next_sample, fmin(deadline, due));
        struct timespec ts;
        double whole = floor(wake);
        ts.tv_sec = (time_t)whole;
        ts.tv_nsec = (long)((wake - whole) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec += 1;
            ts.tv_nsec -= 1000000000L;
        }
        while (!self->stopped && (now = monotonic()) < wake) {
            int rc = pthread_cond_timedwait(&self->cond, &self->mutex, &ts);
            if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
                break;
        }
        if (self->stopped) {
            stopped = 1;
            break;
        }
        now = monotonic();
        sample = now >= next_sample;
        if (sample)
            next_sample = now + self->poll * (0.5 + 0.5 * next_random(self));
        if (now >= due_of(due_stamp, fixed_due) || mode == MODE_EVERY ||
            !look(self, clock, (int)mode, sample, now, &deadline))
            break;
        self->looks_in_c++;
    }
    pthread_mutex_unlock(&self->mutex);
    busy_begin();
    Py_END_ALLOW_THREADS
    Py_XDECREF(due_stamp);
    Py_XDECREF(clock);
    Py_DECREF(self);
    if (!stopped)
        self->returns++;
    return Py_BuildValue("(OdOd)", stopped ? Py_True : Py_False, now,
                         sample ? Py_True : Py_False, next_sample);
}

static PyMethodDef Watch_methods[] = {
    {"wait", (PyCFunction)(void (*)(void))Watch_wait, METH_FASTCALL,
     "wait(clock, next_sample, deadline, due, mode) -> (stopped, now, sample, next_sample); "
     "clock: the SelectClock, or the probe's DueStamp; due: a time, None, or a DueStamp "
     "read again at each wake-up"},
    {"stop", (PyCFunction)Watch_stop, METH_NOARGS, "wake the waiter for good"},
    {"set_cpu_clock", (PyCFunction)Watch_set_cpu_clock, METH_O,
     "the loop thread's CPU clock id (time.pthread_getcpuclockid), or None"},
    {NULL}};

static PyMemberDef Watch_members[] = {
    {"last_tick", T_DOUBLE, offsetof(Watch, last_tick), 0, "wall time of the last sample"},
    {"held_cpu", T_DOUBLE, offsetof(Watch, held_cpu), 0, "loop CPU at the last sample"},
    {"seen_wall", T_DOUBLE, offsetof(Watch, seen_wall), 0, "wall time of the last busy look"},
    {"seen_cpu", T_DOUBLE, offsetof(Watch, seen_cpu), 0, "loop CPU at the last busy look"},
    {"looks_in_c", T_ULONGLONG, offsetof(Watch, looks_in_c), READONLY,
     "looks made without the GIL"},
    {"busy_looks_in_c", T_ULONGLONG, offsetof(Watch, busy_looks_in_c), READONLY,
     "of those, looks at a busy loop"},
    {"returns", T_ULONGLONG, offsetof(Watch, returns), READONLY, "looks handed to Python"},
    {"poll", T_DOUBLE, offsetof(Watch, poll), READONLY, "mean gap between samples"},
    {NULL}};

static PyTypeObject WatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "introspect.agent._watchdog_accel.Watch",
    .tp_basicsize = sizeof(Watch),
    .tp_dealloc = (destructor)Watch_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "the watchdog's sleep, with the looks that need no Python made in C",
    .tp_new = Watch_new,
    .tp_methods = Watch_methods,
    .tp_members = Watch_members,
};

/* --- small reads that keep the GIL ------------------------------------------------------- */

/* A procfs file read without letting go of the GIL: Python's open/read/close drop it three or
 * four times, and from the watchdog each re-take costs a busy loop a forced switch. */
static PyObject *
read_proc(PyObject *module, PyObject *arg)
{
    const char *path = PyUnicode_AsUTF8(arg);
    if (path == NULL)
        return NULL;
    if (strncmp(path, "/proc/", 6) != 0) {
        PyErr_SetString(PyExc_ValueError, "read_proc reads /proc files only");
        return NULL;
    }
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
    ssize_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, sizeof(buf) - (size_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                int saved = errno;
                close(fd);
                errno = saved;
                return PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
            }
            break;
        }
        got += n;
        if ((size_t)got == sizeof(buf))
            break;
    }
    close(fd);
    return PyBytes_FromStringAndSize(buf, got);
}

static PyMethodDef module_methods[] = {
    {"read_proc", (PyCFunction)read_proc, METH_O,
     "the first 4 kB of a /proc file, read with the GIL held"},
    {"epoll_poll", (PyCFunction)(void (*)(void))epoll_poll, METH_FASTCALL,
     "epoll_poll(epfd, timeout, maxevents) -> [(fd, events)], the agent server's wait"},
    {"handoffs", (PyCFunction)get_handoffs, METH_NOARGS,
     "(select()s that let a busy agent thread take the GIL first, agent threads busy now, "
     "changes of that count)"},
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "_watchdog_accel", "the blocking watchdog's clock and wait, in C",
    -1, module_methods};

PyMODINIT_FUNC
PyInit__watchdog_accel(void)
{
    if (PyType_Ready(&ClockType) < 0 || PyType_Ready(&DueType) < 0 ||
        PyType_Ready(&WatchType) < 0)
        return NULL;
    static int handoff_ready;
    if (!handoff_ready) {
        if (pthread_key_create(&busy_key, busy_thread_ended) != 0) {
            PyErr_SetString(PyExc_OSError, "could not make the GIL hand-off's thread key");
            return NULL;
        }
        pthread_atfork(NULL, NULL, handoff_after_fork_child);
        handoff_ready = 1;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "SelectClock", (PyObject *)&ClockType) < 0 ||
        PyModule_AddObjectRef(m, "Watch", (PyObject *)&WatchType) < 0 ||
        PyModule_AddObjectRef(m, "DueStamp", (PyObject *)&DueType) < 0 ||
        PyModule_AddIntConstant(m, "MODE_EVERY", MODE_EVERY) < 0 ||
        PyModule_AddIntConstant(m, "MODE_IDLE", MODE_IDLE) < 0 ||
        PyModule_AddIntConstant(m, "MODE_HELD", MODE_HELD) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
