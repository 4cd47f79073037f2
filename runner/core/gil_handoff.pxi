# Handing the GIL to the journal's writer while the run's thread drains inline tasks.
#
# A drain (Scheduler.run_inline) runs no bytecode, so CPython never asks it for the GIL: a
# thread back from a write or an fsync waits for it, and the drain's periodic release and
# retake (every INLINE_GIL_YIELD tasks) restarts that thread's wait each time, so it may wait
# for the whole drain. The writer's own waits go through here instead: `write_synced` and
# `gil_nap` do their work without the GIL and say, just before taking it back, that they want
# it (`gil_wanted`); the drain looks every GIL_LOOK tasks and then lets go of the GIL until the
# writer has it. Waits the writer cannot route here (hashing, Python's os calls) are bracketed
# by gil_busy(1) / gil_busy(-1): meanwhile the drain lets go for a moment every
# INLINE_GIL_YIELD tasks. Nobody waiting: a load of one integer per GIL_LOOK tasks.

from posix.time cimport nanosleep, timespec
from cpython.mem cimport PyMem_Malloc, PyMem_Calloc, PyMem_Free
from posix.uio cimport iovec, writev
from posix.unistd cimport fsync, close as close_fd
from libc.errno cimport errno, EINTR, EIO, EAGAIN, ENOMEM
from libc.stdio cimport rename as rename_path
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

cdef extern from *:
    """
    #include <errno.h>
    #include <pthread.h>
    #include <time.h>
    static int runner_gil_wanted = 0;
    static int runner_gil_busy = 0;
    static inline int runner_gil_wanted_now(void) { return __atomic_load_n(&runner_gil_wanted, __ATOMIC_ACQUIRE); }
    static inline void runner_gil_wanted_add(int d) { __atomic_add_fetch(&runner_gil_wanted, d, __ATOMIC_ACQ_REL); }
    static inline int runner_gil_busy_now(void) { return __atomic_load_n(&runner_gil_busy, __ATOMIC_ACQUIRE); }
    static inline void runner_gil_busy_add(int d) { __atomic_add_fetch(&runner_gil_busy, d, __ATOMIC_ACQ_REL); }

    static int runner_cond_init(pthread_cond_t *cond) {     /* timed waits on CLOCK_MONOTONIC */
        pthread_condattr_t attr;
        int failed = pthread_condattr_init(&attr);
        if (failed)
            return failed;
        failed = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (!failed)
            failed = pthread_cond_init(cond, &attr);
        pthread_condattr_destroy(&attr);
        return failed;
    }
    static void runner_deadline(struct timespec *deadline, long long ns) {
        clock_gettime(CLOCK_MONOTONIC, deadline);
        deadline->tv_sec += (time_t)(ns / 1000000000);
        deadline->tv_nsec += (long)(ns % 1000000000);
        if (deadline->tv_nsec >= 1000000000) {
            deadline->tv_sec++;
            deadline->tv_nsec -= 1000000000;
        }
    }

    /* The drain waits for a writer to have the GIL on a condition the writer signals once it
       has it (runner_gil_wanted_done), not in sleeps: a sleep of 20 us took ~75 here (timer
       slack), and the drain slept at least one at every hand-over. */
    static pthread_mutex_t runner_handoff_lock = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t runner_handoff_cond;
    static void runner_gil_wanted_done(void) {
        pthread_mutex_lock(&runner_handoff_lock);
        __atomic_add_fetch(&runner_gil_wanted, -1, __ATOMIC_ACQ_REL);
        pthread_cond_broadcast(&runner_handoff_cond);
        pthread_mutex_unlock(&runner_handoff_lock);
    }
    /* Without the GIL: returns once no writer wants the GIL, or after ns. */
    static void runner_gil_wait_handed(long long ns) {
        struct timespec deadline;
        runner_deadline(&deadline, ns);
        pthread_mutex_lock(&runner_handoff_lock);
        while (runner_gil_wanted_now() > 0)
            if (pthread_cond_timedwait(&runner_handoff_cond, &runner_handoff_lock, &deadline) != 0)
                break;      /* ETIMEDOUT, or anything else: never a spin */
        pthread_mutex_unlock(&runner_handoff_lock);
    }

    /* The writer's naps end early when woken (runner_nap_wake: the run ends, or hurries):
       a nap of POLL_SECONDS the run's end had to wait out was up to 4 ms of every run. */
    static pthread_mutex_t runner_nap_lock = PTHREAD_MUTEX_INITIALIZER;
    static pthread_cond_t runner_nap_cond;
    static unsigned long runner_nap_generation = 0;
    static unsigned long runner_nap_seen(void) {
        pthread_mutex_lock(&runner_nap_lock);
        unsigned long generation = runner_nap_generation;
        pthread_mutex_unlock(&runner_nap_lock);
        return generation;
    }
    /* Sleeps ns nanoseconds, or less once a wake comes after `seen` (runner_nap_seen). */
    static void runner_nap(long long ns, unsigned long seen) {
        struct timespec deadline;
        runner_deadline(&deadline, ns);
        pthread_mutex_lock(&runner_nap_lock);
        while (runner_nap_generation == seen)
            if (pthread_cond_timedwait(&runner_nap_cond, &runner_nap_lock, &deadline) != 0)
                break;      /* ETIMEDOUT, or anything else: never a spin */
        pthread_mutex_unlock(&runner_nap_lock);
    }
    static void runner_nap_wake(void) {
        pthread_mutex_lock(&runner_nap_lock);
        runner_nap_generation++;
        pthread_cond_broadcast(&runner_nap_cond);
        pthread_mutex_unlock(&runner_nap_lock);
    }
    /* Spinning across the hand-over. A thread that sleeps (a condition, take_gil's own wait)
       took 50-120 us to wake on these VMs, three times each hand-over; two threads that stay
       on their cores see each other's store in well under a microsecond. Each side spins a
       bounded while, then waits as before: the spins save wake-ups, never decide anything. */
    #if defined(__x86_64__) || defined(__i386__)
    #define RUNNER_SPIN_PAUSE() __builtin_ia32_pause()
    #elif defined(__aarch64__)
    #define RUNNER_SPIN_PAUSE() __asm__ __volatile__("yield" ::: "memory")
    #else
    #define RUNNER_SPIN_PAUSE() __asm__ __volatile__("" ::: "memory")
    #endif
    #define RUNNER_WANT_SPIN_NS 200000LL     /* a writer, for a drain to let go (it looks every GIL_LOOK tasks) */
    #define RUNNER_TAKE_SPIN_NS 100000LL     /* a drain, for the writer to take the GIL it let go of */
    #define RUNNER_STINT_SPIN_NS 250000LL    /* a drain, for the writer to let go of it again */
    static int runner_gil_draining = 0;              /* drains running now (Scheduler.run_inline) */
    static int runner_gil_open = 0;                  /* drains that have let go of the GIL for a writer */
    static unsigned long runner_gil_returned = 0;    /* writers' lets-go at a hand-over point, so far */
    static inline long long runner_now_ns(void) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    }
    static __thread int runner_gil_in_drain = 0;     /* this thread drains (a callback of it writes) */
    static inline void runner_gil_draining_add(int d) {
        __atomic_add_fetch(&runner_gil_draining, d, __ATOMIC_ACQ_REL);
        runner_gil_in_drain += d;
    }
    static inline int runner_gil_draining_now(void) { return __atomic_load_n(&runner_gil_draining, __ATOMIC_ACQUIRE); }
    static inline int runner_gil_open_now(void) { return __atomic_load_n(&runner_gil_open, __ATOMIC_ACQUIRE); }
    /* A writer, first thing without the GIL at a hand-over point: a drain waiting for it to
       let go takes the GIL back now. */
    static inline void runner_gil_let_go(void) { __atomic_add_fetch(&runner_gil_returned, 1, __ATOMIC_ACQ_REL); }
    static inline unsigned long runner_gil_let_go_seen(void) { return __atomic_load_n(&runner_gil_returned, __ATOMIC_ACQUIRE); }

    /* Spins while waiting(arg) holds, at most ns: 1 once it stopped holding, 0 when the time
       ran out first. Every spin of the hand-over is one of these. */
    static int runner_spin_while(int (*waiting)(const void *), const void *arg, long long ns) {
        long long deadline = runner_now_ns() + ns;
        unsigned spins = 0;
        while (waiting(arg)) {
            RUNNER_SPIN_PAUSE();
            if ((++spins & 63) == 0 && runner_now_ns() > deadline)
                return 0;
        }
        return 1;
    }
    static int runner_no_drain_open(const void *unused) {
        (void)unused;
        return runner_gil_open_now() <= 0 && runner_gil_draining_now() > 0;
    }
    static int runner_writer_wants(const void *unused) {
        (void)unused;
        return runner_gil_wanted_now() > 0;
    }
    static int runner_no_let_go_since(const void *since) {
        return runner_gil_let_go_seen() == *(const unsigned long *)since;
    }

    /* A writer, last thing without the GIL: it wants the GIL (the drain looks), and while a
       drain runs, spins until one has let go of it, so that taking it finds it free. */
    static void runner_gil_want(void) {
        runner_gil_wanted_add(1);
        if (runner_gil_in_drain || runner_gil_draining_now() <= 0)
            return;     /* no drain to let go of it, or only this thread's own */
        runner_spin_while(runner_no_drain_open, NULL, RUNNER_WANT_SPIN_NS);
    }
    /* A drain, without the GIL, a writer wanting it: lets the writer take it (spinning, then
       on the condition, at most wait_ns), then spins a while for the writer to let go of it
       at its next hand-over point, so that taking it back finds it free. */
    static void runner_gil_hand_over(long long wait_ns) {
        unsigned long returned = runner_gil_let_go_seen();
        __atomic_add_fetch(&runner_gil_open, 1, __ATOMIC_ACQ_REL);
        if (!runner_spin_while(runner_writer_wants, NULL, RUNNER_TAKE_SPIN_NS))
            runner_gil_wait_handed(wait_ns);
        __atomic_add_fetch(&runner_gil_open, -1, __ATOMIC_ACQ_REL);
        if (runner_gil_wanted_now() > 0)
            return;     /* not taken in time: the drain goes on */
        runner_spin_while(runner_no_let_go_since, &returned, RUNNER_STINT_SPIN_NS);
    }
    /* Without the GIL: spins until a writer has let go of the GIL at a hand-over point after
       `since` (runner_gil_let_go_seen), at most ns. */
    static void runner_gil_wait_let_go(unsigned long since, long long ns) {
        runner_spin_while(runner_no_let_go_since, &since, ns);
    }

    static int runner_conditions_init(void) {
        return runner_cond_init(&runner_handoff_cond) || runner_cond_init(&runner_nap_cond);
    }

    /* A forked child has none of the parent's other threads, so nobody there wants the GIL:
       counts the fork caught raised (a writer between its I/O and the GIL) would otherwise
       stay raised, and every drain of the child would pause for them. The locks, which one
       of those threads may have held, are made anew. */
    static void runner_gil_forget_in_child(void) {
        runner_gil_wanted = 0;
        runner_gil_busy = 0;
        runner_gil_draining = runner_gil_in_drain;      /* the forking thread's own drain, if any */
        runner_gil_open = 0;
        pthread_mutex_init(&runner_handoff_lock, NULL);
        pthread_mutex_init(&runner_nap_lock, NULL);
        runner_conditions_init();
    }
    static int runner_gil_forget_at_fork(void) { return pthread_atfork(NULL, NULL, runner_gil_forget_in_child); }
    """
    int runner_gil_wanted_now() nogil
    void runner_gil_wanted_add(int) nogil
    int runner_gil_busy_now() nogil
    void runner_gil_busy_add(int) nogil
    int runner_gil_forget_at_fork()
    int runner_conditions_init()
    void runner_gil_wanted_done() nogil
    void runner_gil_wait_handed(long long ns) nogil
    unsigned long runner_nap_seen() nogil
    void runner_nap(long long ns, unsigned long seen) nogil
    void runner_nap_wake() nogil
    void runner_gil_draining_add(int) nogil
    int runner_gil_draining_now() nogil
    int runner_gil_open_now() nogil
    void runner_gil_let_go() nogil
    void runner_gil_want() nogil
    void runner_gil_hand_over(long long wait_ns) nogil
    unsigned long runner_gil_let_go_seen() nogil
    void runner_gil_wait_let_go(unsigned long since, long long ns) nogil

if runner_gil_forget_at_fork() != 0:
    raise MemoryError("pthread_atfork: no room for librunner's fork handler")
if runner_conditions_init() != 0:
    raise MemoryError("pthread_cond_init: no room for librunner's hand-over and naps")

cdef int GIL_LOOK = 64                  # inline tasks between looks at gil_wanted
cdef double NAP_LONGEST = 86400.0       # seconds: gil_nap's longest
cdef long long HANDOFF_WAIT_NS = 1500000   # the drain's longest wait for a writer to take the GIL: a writer with no core free meanwhile waits
cdef long BUSY_PAUSE_NS = 50000         # the drain's pause, every INLINE_GIL_YIELD tasks, while busy


cdef inline void pause_ns(long ns) noexcept nogil:
    cdef timespec pause
    pause.tv_sec = 0
    pause.tv_nsec = ns
    nanosleep(&pause, NULL)


cdef void hand_gil_over(bint yield_point) noexcept:
    """Called with the GIL by the drain: lets a writer that wants the GIL take it (gil_wanted),
    or, at a yield point while one is busy, pauses once so that it may."""
    if runner_gil_wanted_now() > 0:
        with nogil:
            runner_gil_hand_over(HANDOFF_WAIT_NS)
    elif yield_point and runner_gil_busy_now() > 0:
        with nogil:
            pause_ns(BUSY_PAUSE_NS)


def gil_busy(int delta):
    """+1 before a wait without the GIL that the drain should leave room for (hashing, os
    calls), -1 after it."""
    runner_gil_busy_add(delta)


def gil_handoff_counts():
    """(wanted, busy): the hand-over's counts now, for tests and diagnostics."""
    return runner_gil_wanted_now(), runner_gil_busy_now()


def gil_spin_counts():
    """(draining, open): the drains running now and those letting go of the GIL for a writer
    now, for tests and diagnostics."""
    return runner_gil_draining_now(), runner_gil_open_now()


def gil_let_go_seen():
    """The count of writers' lets-go of the GIL at a hand-over point so far (gil_wait_let_go)."""
    return runner_gil_let_go_seen()


def gil_wait_let_go(unsigned long since, double seconds):
    """Lets go of the GIL until a writer has let go of it at a hand-over point after `since`
    (a gil_let_go_seen()), spinning, at most `seconds` (a day at most; less than 0: none): a
    thread just started takes the GIL at once and gives it back at its first hand-over point,
    so that its start is not left to the pauses of a drain that begins meanwhile."""
    cdef long long ns = <long long>(min(seconds, NAP_LONGEST) * 1e9) if seconds > 0 else 0
    with nogil:
        runner_gil_wait_let_go(since, ns)


def gil_nap(double seconds, object since=None):
    """Sleeps `seconds` without the GIL, or less once gil_wake() is called after `since` (a
    gil_nap_seen(); None: from now), then takes the GIL back through the hand-over."""
    # At most a day (a longer one would overflow the deadline); NaN and less than 0: none.
    cdef long long ns = <long long>(min(seconds, NAP_LONGEST) * 1e9) if seconds > 0 else 0
    cdef unsigned long seen
    if since is not None and type(since) is not int:
        raise TypeError(f"gil_nap: since is {type(since).__name__}, not a gil_nap_seen() count")
    seen = runner_nap_seen() if since is None else <unsigned long>since
    with nogil:
        runner_gil_let_go()
        runner_nap(ns, seen)
        runner_gil_want()
    runner_gil_wanted_done()


def gil_nap_seen():
    """The naps' wake count now: a nap given it ends at a wake that came after it was read."""
    return runner_nap_seen()


def gil_wake():
    """Ends every gil_nap of the process now (each nap's owner looks again at what it waits for)."""
    with nogil:
        runner_nap_wake()


def write_synced(int fd, chunks, bint sync=True, bint close=False, bytes rename_from=None,
                 bytes rename_to=None, int directory_fd=-1, bint digest=False):
    """Writes every chunk of `chunks` (bytes, or a TextWithDoubles: its doubles' text is made
    here) to fd in order, partial writes resumed, then fsyncs fd (sync), closes it (close),
    renames rename_from to rename_to and fsyncs directory_fd (when given), all without the
    GIL, which it takes back through the hand-over: one wait for the GIL where Python's os
    calls made one each. OSError(errno) at the first step that fails (fd is closed anyway
    when asked). digest: returns the SHA-256 (hex) of what was written, made while the disk
    writes it (sha256_without_gil(); None when it cannot be made here: hash it with hashlib);
    None otherwise."""
    cdef tuple held
    try:
        held = tuple(chunks)                # keeps every buffer alive while the GIL is let go
    except BaseException:
        if close:       # not a sequence of chunks: fd is closed all the same, as promised
            close_fd(fd)
        raise
    cdef Py_ssize_t count = len(held), i = 0
    cdef int error = 0
    cdef const char *source = NULL
    cdef const char *target = NULL
    cdef iovec *vectors = <iovec *>PyMem_Malloc((count if count > 0 else 1) * sizeof(iovec))
    # The TextWithDoubles chunks' parts (count 0 for the others), then their texts, freed here.
    cdef TextParts *pending = <TextParts *>PyMem_Calloc(count if count > 0 else 1, sizeof(TextParts))
    cdef char **rendered = <char **>PyMem_Calloc(count if count > 0 else 1, sizeof(char *))
    cdef bint handed = False        # to _write_synced, which closes fd when asked, whatever fails
    cdef unsigned char hashed[32]
    cdef bint hashing = False
    cdef bint digest_made = False
    try:
        hashing = digest and sha256_ready()     # in the try: fd is closed when asked, whatever fails
        if vectors == NULL or pending == NULL or rendered == NULL:
            raise MemoryError()
        for i in range(count):
            chunk = held[i]
            if type(chunk) is bytes:
                vectors[i].iov_base = <void *>PyBytes_AS_STRING(chunk)
                vectors[i].iov_len = <size_t>PyBytes_GET_SIZE(chunk)
            elif type(chunk) is TextWithDoubles:
                vectors[i].iov_base = <void *>(<TextWithDoubles>chunk).data
                vectors[i].iov_len = <size_t>(<TextWithDoubles>chunk).size
                pending[i] = (<TextWithDoubles>chunk).parts()
            else:
                raise TypeError(f"write_synced: chunk {i} is {type(chunk).__name__}, not bytes")
        if rename_from is not None and rename_to is not None:
            source = rename_from
            target = rename_to
        handed = True
        with nogil:
            runner_gil_let_go()
            _write_synced(fd, vectors, pending, rendered, count, sync, close, source, target, directory_fd,
                          &error, <unsigned char *>hashed if hashing else NULL, &digest_made)
            runner_gil_want()
        runner_gil_wanted_done()
    finally:
        if close and not handed:        # a chunk refused, no memory: fd is closed all the same
            close_fd(fd)
        for i in range(count if rendered != NULL else 0):
            free(rendered[i])
        PyMem_Free(rendered)
        PyMem_Free(pending)
        PyMem_Free(vectors)
    if error:
        raise OSError(error, os.strerror(error))
    if digest_made:
        return (<char *>hashed)[:32].hex()
    return None


cdef void _write_synced(int fd, iovec *vectors, const TextParts *pending, char **rendered, Py_ssize_t count,
                        bint sync, bint close, const char *source, const char *target, int directory_fd,
                        int *failed, unsigned char *digest, bint *digest_made) noexcept nogil:
    """write_synced's work without the GIL: the pending texts made, then written, synced,
    closed, renamed; the first error's errno in failed. digest (not NULL): the SHA-256 of what
    was written goes there (digest_made), made after the writeback is started, before the fsync."""
    cdef Py_ssize_t i, start = 0, batch, size
    cdef ssize_t written
    cdef int error = 0
    cdef iovec *whole = NULL        # the chunks as given (writing moves vectors' along)
    for i in range(count):
        if pending[i].count:
            rendered[i] = render_text(&pending[i], &size)
            if rendered[i] == NULL:
                error = ENOMEM
                break
            vectors[i].iov_base = <void *>rendered[i]
            vectors[i].iov_len = <size_t>size
    if digest != NULL and error == 0:
        whole = <iovec *>malloc((count if count > 0 else 1) * sizeof(iovec))
        if whole != NULL:
            copy_bytes(whole, vectors, count * sizeof(iovec))
    while start < count and error == 0:
        if vectors[start].iov_len == 0:
            start += 1
            continue
        batch = count - start if count - start < 1024 else 1024      # IOV_MAX
        written = writev(fd, vectors + start, <int>batch)
        if written < 0:
            if errno != EINTR:
                error = errno
            continue
        if written == 0:
            error = EIO
            continue
        while written > 0 and start < count:
            if <size_t>written >= vectors[start].iov_len:
                written -= vectors[start].iov_len
                start += 1
            else:
                vectors[start].iov_base = <void *>(<char *>vectors[start].iov_base + written)
                vectors[start].iov_len -= written
                written = 0
    if whole != NULL:
        if error == 0:
            start_writeback(fd)     # the disk writes while the hash is made
            digest_made[0] = runner_sha256(whole, count, digest) == 0
        free(whole)
    if error == 0 and sync:
        while fsync(fd) != 0:
            if errno != EINTR:
                error = errno
                break
    if close:
        if close_fd(fd) != 0 and error == 0 and errno != EINTR:
            error = errno
    if error == 0 and source != NULL:
        if rename_path(source, target) != 0:
            error = errno
    if error == 0 and directory_fd >= 0:
        while fsync(directory_fd) != 0:
            if errno != EINTR:
                error = errno
                break
    failed[0] = error


cdef extern from *:
    """
    #include <fcntl.h>
    /* Starts writing fd's dirty pages back (Linux), without waiting: best effort. */
    static void runner_start_writeback(int fd) {
    #ifdef SYNC_FILE_RANGE_WRITE
        (void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    #else
        (void)fd;
    #endif
    }
    """
    void start_writeback "runner_start_writeback"(int fd) nogil


cdef extern from "<sys/socket.h>" nogil:
    ssize_t send(int fd, const void *buffer, size_t length, int flags)
    int MSG_NOSIGNAL
    int MSG_DONTWAIT

cdef extern from "<errno.h>":
    int EWOULDBLOCK


def send_now(int fd, bytes data):
    """Sends `data` on the socket fd without letting go of the GIL, when it goes at once:
    the number of bytes sent (all of a short message to a socket with room), or -1 when
    the socket has no room now (the caller sends it the blocking way). For the watchdog's
    lines: a send that cannot block costs microseconds, and letting go of the GIL around it
    cost each of a run's attempt threads two hand-overs a line. MSG_NOSIGNAL: a peer that is
    gone is an OSError (EPIPE), never SIGPIPE."""
    cdef ssize_t sent
    while True:
        sent = send(fd, PyBytes_AS_STRING(data), <size_t>PyBytes_GET_SIZE(data), MSG_NOSIGNAL | MSG_DONTWAIT)
        if sent >= 0:
            return sent
        if errno == EINTR:
            continue
        if errno == EAGAIN or errno == EWOULDBLOCK:
            return -1
        raise OSError(errno, os.strerror(errno))
