# The size of the OpenMP team every Cython kernel's prange runs with (set_num_threads).
cdef int team() noexcept nogil
