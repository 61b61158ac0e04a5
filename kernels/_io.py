"""Atomic file writes, shared by the autotune cache and engine's model files.

The data goes to a temporary file in the target's directory, is flushed and fsynced, then
renamed over the target (os.replace is atomic on POSIX and Windows): a crash mid-write leaves
the old file whole, and no temporary file behind.
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a temporary file for writing; on success it replaces ``path``.

    >>> with atomic_write("model.npz") as f:       # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    """Make the rename durable where the OS allows opening directories."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
