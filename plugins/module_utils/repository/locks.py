# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository locks: shared for writers and readers, exclusive for prune.

A lock is a file ``locks/<kind>-<random>`` (JSON: kind, pid, hostname,
created, operation, backup_id).  To take a lock a process first writes its
own file and then lists the others; a shared lock fails when a live
exclusive lock exists, an exclusive lock fails when any other live lock
exists.  Because both sides write before they look, two conflicting
processes can never both succeed.

Time is the storage's, never a host's: the holder touches its file every
``HEARTBEAT_INTERVAL`` seconds (the storage sets the modification time), and
a lock is judged against the modification time of the judge's own, just
written lock file.  A lock is stale when its file's time is more than
``STALE_AFTER`` seconds older or newer than that (a time in the future is no
heartbeat a writer could have made), or when it was taken on this host by a
process that no longer exists.  A heartbeat never recreates a lock file that
vanished: the holder notes the loss, and ``check()`` refuses to let it record
anything afterwards.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import socket
import threading
import time
import uuid

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    LockedError,
    MissingDataError,
)

PREFIX = "locks"
SHARED = "shared"
EXCLUSIVE = "exclusive"
HEARTBEAT_INTERVAL = 60.0
STALE_AFTER = 600.0
MAX_LOCK_SIZE = 64 << 10


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def is_stale(info, mtime, now, hostname=None, stale_after=None):
    """True when the lock described by ``info``, its file last touched at ``mtime``, belongs to nobody alive.

    ``mtime`` and ``now`` are both the storage's clock.
    """
    hostname = hostname or socket.gethostname()
    stale_after = STALE_AFTER if stale_after is None else stale_after
    if abs(now - mtime) > stale_after:
        return True
    try:
        pid = int(info.get("pid", 0))
    except (TypeError, ValueError):
        pid = 0
    if info.get("hostname") == hostname and pid > 0 and not _pid_alive(pid):
        return True
    return False


def describe(info):
    return "%s lock of %s (pid %s on %s)" % (info.get("kind"), info.get("operation") or "a process",
                                             info.get("pid"), info.get("hostname"))


class Lock(object):
    """A held lock; use as a context manager or call ``release``.

    ``clock`` is the writer's clock, used only for the informational
    ``created`` field: staleness never depends on it.
    """

    def __init__(self, backend, kind, operation, backup_id=None, heartbeat_interval=None, clock=time.time):
        self.backend = backend
        self.kind = kind
        self.name = "%s/%s-%s" % (PREFIX, kind, uuid.uuid4().hex)
        self.info = {
            "kind": kind,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "created": clock(),
            "operation": operation,
            "backup_id": backup_id,
        }
        self._interval = HEARTBEAT_INTERVAL if heartbeat_interval is None else heartbeat_interval
        self._stop = threading.Event()
        self._thread = None
        self.held = False
        self.lost = False
        self.storage_time = None
        self.stale_removed = 0

    def _beat(self):
        while not self._stop.wait(self._interval):
            try:
                self.backend.touch(self.name)
            except MissingDataError:
                self.lost = True  # removed by someone who judged it stale: never recreate it
                return
            except Exception:  # a missed heartbeat only makes the lock look older
                pass

    def acquire(self, remove_stale=False):
        self.backend.put(self.name, json.dumps(self.info, sort_keys=True).encode("utf-8"), durable=False)
        try:
            # the storage's now: the time it gave the file just written
            self.storage_time = self.backend.stat(self.name)[1]
            conflicts, stale = self._others()
            if remove_stale:
                for name in stale:
                    self.backend.delete(name)
            if conflicts:
                raise LockedError("repository %s is in use: %s" % (self.backend.location, describe(conflicts[0])))
        except BaseException:
            self.backend.delete(self.name)
            raise
        self.held = True
        self.stale_removed = len(stale) if remove_stale else 0
        self._thread = threading.Thread(target=self._beat, name="vmcrypt-lock-heartbeat")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _others(self):
        conflicts = []
        stale = []
        for name, info, mtime in read_locks(self.backend):
            if name == self.name:
                continue
            if is_stale(info, mtime, self.storage_time):
                stale.append(name)
            elif self.kind == EXCLUSIVE or info.get("kind") == EXCLUSIVE:
                conflicts.append(info)
        return conflicts, stale

    def check(self):
        """Raise ``LockedError`` if this lock vanished while held (removed as stale): record nothing then."""
        if self.lost or not self.backend.exists(self.name):
            self.lost = True
            raise LockedError("the %s lock of %s in repository %s was removed while it ran (judged stale by a prune?); "
                              "nothing was recorded: run it again" % (self.kind, self.info["operation"],
                                                                      self.backend.location))

    def release(self):
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.backend.delete(self.name)
        self.held = False

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.release()


def list_locks(backend):
    return backend.list(PREFIX)


def read_lock(backend, name):
    """The lock info in ``name``; None when it vanished meanwhile; an unreadable file reads as an unknown lock."""
    try:
        info = json.loads(backend.get(name, max_size=MAX_LOCK_SIZE).decode("utf-8"))
    except MissingDataError:
        return None
    except (ValueError, UnicodeDecodeError, IntegrityError):
        return {"kind": "unknown"}
    return info if isinstance(info, dict) else {"kind": "unknown"}


def read_locks(backend):
    """[(name, info, modification time)] of every lock file (regular files only)."""
    result = []
    for name in list_locks(backend):
        try:
            mtime = backend.stat(name)[1]
        except (MissingDataError, IntegrityError):
            continue
        info = read_lock(backend, name)
        if info is not None:
            result.append((name, info, mtime))
    return result


def live_locks(backend, now=None):
    """[(name, info)] of the locks that are not stale; ``now`` is the storage's (read from it when None)."""
    now = backend.now() if now is None else now
    return [(name, info) for name, info, mtime in read_locks(backend) if not is_stale(info, mtime, now)]


def stale_locks(backend, now):
    return [name for name, info, mtime in read_locks(backend) if is_stale(info, mtime, now)]


def acquire(backend, kind, operation, backup_id=None, wait=0.0, remove_stale=False):
    """Take a lock, retrying for up to ``wait`` seconds while it conflicts."""
    deadline = time.time() + wait
    while True:
        lock = Lock(backend, kind, operation, backup_id)
        try:
            return lock.acquire(remove_stale=remove_stale)
        except LockedError:
            if time.time() >= deadline:
                raise
            time.sleep(min(2.0, max(0.1, deadline - time.time())))
