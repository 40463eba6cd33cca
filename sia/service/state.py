"""Learned state on disk: snapshots written whole or not at all, by one process at a time.

A snapshot is written to a temporary file beside it, flushed to disk, then renamed over
the old one, so a full disk or a crash mid-write leaves the previous snapshot intact.
A lock file beside the snapshot (`flock`, released by the kernel when its holder dies)
keeps two processes from learning on the same state: the second is refused with the
holder's pid instead of one of them silently losing the other's events.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import IO


class Locked(RuntimeError):
    """Another process holds the lock."""


class FileLock:
    """An exclusive, non-blocking lock on `path` (created if missing), holding our pid."""

    def __init__(self, path: Path, *, what: str) -> None:
        self.path = path
        self.what = what
        self._handle: IO[str] | None = None

    def acquire(self) -> FileLock:
        """Take the lock or raise Locked naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise Locked(f"{self.what} is in use by another sia process (pid {holder}; "
                         f"lock {self.path}): stop it first, or use another folder") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        """Let go of the lock (the file stays)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data`: temp file, fsync, rename, fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def state_lock(path: Path) -> FileLock:
    """The lock that guards a snapshot file."""
    return FileLock(path.with_name(path.name + ".lock"), what=f"state {path}")
