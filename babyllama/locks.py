"""One run at a time per output folder. Two runs writing one folder at once would each move the other's models aside,
rebuild its files, and leave nobody knowing which run wrote what; so a stage holds its folder's lock while it runs.

The lock is ``.<folder name>.lock`` beside the folder (so moving the folder aside, ``--overwrite``, keeps it held), an
``flock``-ed file holding the holder's pid, host, command and start time. A second run is refused naming them. The
kernel drops an ``flock`` when its process ends however it ends (kill -9 included), so a lock file left by a process
that is gone is taken over, with a message; a normal end (exception and Ctrl-C included) removes the file. Within one
process the lock is re-entrant: the pipeline holds its work dir and runs the training stages in the same process.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import json
import os
import shlex
import socket
import sys
import time
from pathlib import Path

from babyllama.config import UserError

_held: dict[Path, tuple[int, list[Path]]] = {}  # lock file -> (its descriptor, folders made for it), of this process


def lock_file(folder) -> Path:
    folder = Path(folder).resolve()
    return folder.parent / f".{folder.name}.lock"


def _holder(fd: int) -> dict:
    try:
        info = json.loads(os.pread(fd, 1 << 16, 0) or b"{}")
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def _describe(h: dict) -> str:
    return (f"pid {h.get('pid', '?')} on {h.get('host', '?')}, started {h.get('started', '?')}: "
            f"{h.get('command', '(command not recorded yet)')}")


def acquire(folder, what: str) -> bool:
    """Take ``folder``'s lock (``what``: the key that named the folder, for the message); False when this process
    holds it already. Refused with a UserError while another process holds it."""
    path = lock_file(folder)
    if path in _held:
        return False
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise UserError(f"{Path(folder)} ({what}) is in use by another run, {_describe(holder)}; wait for it to "
                            f"end or stop it, then run again (its lock: {path})") from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # the holder ended and removed the file between our open and flock: lock the new one
    stale = _holder(fd)
    if stale:
        print(f"note: {path}: taking over the lock of a run that is gone ({_describe(stale)})", file=sys.stderr)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "command": shlex.join(["python", *sys.argv]),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
    _held[path] = (fd, made)
    return True


def release(folder):
    """Remove ``folder``'s lock file (and the empty folders made for it), then drop the lock."""
    _release(lock_file(folder))


def _release(path: Path):
    fd, made = _held.pop(path, (None, []))
    if fd is None:
        return
    path.unlink(missing_ok=True)  # before the close: a waiting opener then sees another inode and starts over
    os.close(fd)
    for d in made:  # deepest first
        with contextlib.suppress(OSError):
            d.rmdir()


@atexit.register
def release_all():
    for path in list(_held):
        _release(path)


@contextlib.contextmanager
def folder_lock(folder, what: str):
    """Hold ``folder``'s lock for the block (nothing when ``folder`` is None)."""
    taken = folder is not None and acquire(folder, what)
    try:
        yield
    finally:
        if taken:
            release(folder)


@contextlib.contextmanager
def updating(path):
    """Hold the lock of the folder that holds ``path`` while the block reads, changes and rewrites the file, so two
    runs updating one file (RESULTS.md, each its own section) take turns instead of one losing the other's update.
    It waits, not refuses: the update takes milliseconds. The lock is an ``flock`` on the folder itself (no lock file
    is left beside the results); it does not conflict with ``acquire``, which locks a file beside a folder."""
    folder = Path(path).resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the flock


def locked(folder_of, what: str):
    """Decorate a stage's ``run(cfg, ...)`` to hold the lock of the folder ``folder_of(cfg)`` names (None: no lock)
    while it runs, from before anything in it is checked or written."""
    def decorate(run):
        @functools.wraps(run)
        def run_locked(cfg, *args, **kwargs):
            with folder_lock(folder_of(cfg), what):
                return run(cfg, *args, **kwargs)
        return run_locked
    return decorate
