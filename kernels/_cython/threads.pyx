# cython: boundscheck=False, wraparound=False, cdivision=True, language_level=3
"""The OpenMP team every Cython kernel runs on, and OpenBLAS's parallel work run on it too.

``set_num_threads`` / ``get_num_threads`` are the team's size: every prange of the Cython
kernels passes it as ``num_threads=team()``, so it is convlab's own number.  OpenMP's
process-wide default (omp_set_num_threads) is left alone: a runtime shared with PyTorch keeps
torch.set_num_threads, and convlab keeps its own.

:func:`blas_callback_address` is a C function with OpenBLAS's ``openblas_threads_callback``
signature (OpenBLAS >= 0.3.27).  Installed in an OpenBLAS (kernels/runtime.py does it), that
library no longer wakes its own thread pool: the jobs of each parallel BLAS call run as one
OpenMP parallel region of this team, the same threads that run convlab's kernels.  One team
means no pool spin-waits on a core another pool needs (OpenBLAS's idle threads busy-wait about
0.1 s after every call unless OPENBLAS_THREAD_TIMEOUT was set before the library loaded, which
a script that imports numpy first cannot do).

The jobs of one call wait on each other (OpenBLAS's level-3 GEMM shares packed panels through
a spin barrier), so all of them must run at once: on a team of exactly ``numjobs`` threads, or,
when an OpenMP region cannot provide that (called from inside a parallel region, a thread limit
below ``numjobs``), on ``numjobs - 1`` fresh POSIX threads plus the caller.  Never fewer threads
than jobs, so the callback cannot deadlock.
"""
cimport openmp

cdef extern from *:
    """
    #include <omp.h>
    #include <pthread.h>
    #include <stddef.h>

    typedef void (*convlab_dojob_t)(int, void *, int);

    static volatile unsigned long convlab_blas_regions = 0;   /* calls run on the team */
    static volatile unsigned long convlab_blas_fallbacks = 0; /* calls run on fresh threads */

    typedef struct { convlab_dojob_t dojob; int i; char *data; int arg; } convlab_job_t;

    static void *convlab_run_job(void *p) {
        convlab_job_t *j = (convlab_job_t *)p;
        j->dojob(j->i, j->data, j->arg);
        return NULL;
    }

    /* numjobs jobs on numjobs fresh threads (the caller takes job 0). */
    static int convlab_jobs_on_pthreads(convlab_dojob_t dojob, int numjobs, size_t elsize,
                                        char *base, int arg) {
        enum { MAXJ = 256 };
        pthread_t tid[MAXJ];
        convlab_job_t job[MAXJ];
        int i, started = 1;
        if (numjobs > MAXJ) return -1;
        for (i = 1; i < numjobs; i++) {
            job[i].dojob = dojob; job[i].i = i; job[i].data = base + (size_t)i * elsize;
            job[i].arg = arg;
            if (pthread_create(&tid[i], NULL, convlab_run_job, &job[i]) != 0) break;
            started++;
        }
        if (started < numjobs) {                /* could not start them all: no partial run */
            for (i = 1; i < started; i++) pthread_join(tid[i], NULL);
            return -1;
        }
        dojob(0, base, arg);
        for (i = 1; i < numjobs; i++) pthread_join(tid[i], NULL);
        return 0;
    }

    static void convlab_blas_threads(int sync, convlab_dojob_t dojob, int numjobs,
                                     size_t elsize, void *jobdata, int arg) {
        char *base = (char *)jobdata;
        int i;
        (void)sync;
        if (numjobs <= 1) {
            for (i = 0; i < numjobs; i++) dojob(i, base + (size_t)i * elsize, arg);
            return;
        }
        if (!omp_in_parallel() && !omp_get_dynamic() && omp_get_thread_limit() >= numjobs) {
            int complete = 1;
            #pragma omp parallel num_threads(numjobs)
            {
                if (omp_get_num_threads() == numjobs) {
                    int t = omp_get_thread_num();
                    dojob(t, base + (size_t)t * elsize, arg);
                } else {
                    #pragma omp single
                    complete = 0;
                }
            }
            if (complete) {
                __atomic_add_fetch(&convlab_blas_regions, 1, __ATOMIC_RELAXED);
                return;
            }
        }
        __atomic_add_fetch(&convlab_blas_fallbacks, 1, __ATOMIC_RELAXED);
        if (convlab_jobs_on_pthreads(dojob, numjobs, elsize, base, arg) != 0) {
            /* no thread could be started: the jobs must still all run, or BLAS returns
               garbage; a level-3 barrier among them would spin forever, so this is the one
               case left to the operating system (it has refused threads already). */
            for (i = 0; i < numjobs; i++) dojob(i, base + (size_t)i * elsize, arg);
        }
    }

    static size_t convlab_blas_callback_address(void) {
        return (size_t)&convlab_blas_threads;
    }
    static unsigned long convlab_blas_region_count(void) { return convlab_blas_regions; }
    static unsigned long convlab_blas_fallback_count(void) { return convlab_blas_fallbacks; }
    """
    size_t convlab_blas_callback_address() nogil
    unsigned long convlab_blas_region_count() nogil
    unsigned long convlab_blas_fallback_count() nogil


cdef int _team = 0     # 0 until set: OpenMP's default (omp_get_max_threads)


cdef int team() noexcept nogil:
    if _team > 0:
        return _team
    return openmp.omp_get_max_threads()


def set_num_threads(n):
    """Run later Cython kernels on teams of ``n`` (>= 1) OpenMP threads."""
    global _team
    if not isinstance(n, int) or isinstance(n, bool):
        try:
            n = n.__index__()
        except AttributeError:
            raise TypeError(f"cython set_num_threads: n must be an int, received {n!r}") \
                from None
    if n < 1:
        raise ValueError(f"cython set_num_threads: n must be >= 1, received {n}")
    _team = n


def get_num_threads():
    """The number of OpenMP threads the next Cython kernel will use."""
    return team()


def blas_callback_address():
    """Address of the C function that runs an OpenBLAS call's jobs on this OpenMP team."""
    return convlab_blas_callback_address()


def blas_callback_counts():
    """(calls run as one OpenMP region, calls run on fresh POSIX threads) so far."""
    return convlab_blas_region_count(), convlab_blas_fallback_count()
