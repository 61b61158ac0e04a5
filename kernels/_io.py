"""Atomic file writes, shared by the autotune cache and engine's model files.

The data goes to a temporary file in the target's directory, is flushed and fsynced, then
renamed over the target (os.replace is atomic on POSIX and Windows): a crash mid-write leaves
the old file whole.  A process killed mid-write (kill -9) cannot remove its temporary file;
the temporary's name carries the writer's pid, and the next write of the same target removes
the temporaries of writers that are no longer running.
"""
import contextlib
import glob
import os
import tempfile


def _prefix(path):
    return "." + os.path.basename(path) + "."


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(path):
    """Delete the temporary files that writers of ``path`` killed mid-write left behind
    (those whose pid is no longer running); returns their paths."""
    directory = os.path.dirname(os.path.abspath(path))
    removed = []
    pattern = os.path.join(glob.escape(directory), glob.escape(_prefix(path)) + "pid*.tmp")
    for tmp in glob.glob(pattern):
        rest = os.path.basename(tmp)[len(_prefix(path)) + 3:]
        digits = rest.split(".", 1)[0]
        if digits.isdigit() and int(digits) != os.getpid() and not _alive(int(digits)):
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _umask():
    """The process's umask, read without changing it where Linux shows it (os.umask sets
    it, briefly, for every thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a temporary file for writing; on success it replaces ``path``.  The file gets
    the permissions a plain ``open`` would give it (0o666 less the umask).

    >>> with atomic_write("model.npz") as f:       # doctest: +SKIP
    ...     np.savez(f, w=w)
    """
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {os.fspath(path)!r}: directory {directory!r} "
                                f"does not exist")
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{_prefix(path)}pid{os.getpid()}.",
                               suffix=".tmp")
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        except (AttributeError, OSError):
            pass
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
