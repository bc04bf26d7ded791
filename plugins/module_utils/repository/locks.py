# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository locks: shared for writers, exclusive for prune.

A lock is a file ``locks/<kind>-<random>`` (JSON: kind, pid, hostname,
created, heartbeat, operation, backup_id).  To take a lock a process first
writes its own file and then lists the others; a shared lock fails when a live
exclusive lock exists, an exclusive lock fails when any other live lock
exists.  Because both sides write before they look, two conflicting
processes can never both succeed.  The holder rewrites its file every
``HEARTBEAT_INTERVAL`` seconds.  A lock is stale when its heartbeat is older
than ``STALE_AFTER`` seconds, or when it was taken on this host by a process
that no longer exists.
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
    LockedError,
    MissingDataError,
)

PREFIX = "locks"
SHARED = "shared"
EXCLUSIVE = "exclusive"
HEARTBEAT_INTERVAL = 60.0
STALE_AFTER = 600.0


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def is_stale(info, now=None, hostname=None, stale_after=None):
    """True when the lock described by ``info`` belongs to nobody alive."""
    now = time.time() if now is None else now
    hostname = hostname or socket.gethostname()
    stale_after = STALE_AFTER if stale_after is None else stale_after
    try:
        heartbeat = float(info.get("heartbeat", 0))
        pid = int(info.get("pid", 0))
    except (TypeError, ValueError):
        return True
    if now - heartbeat > stale_after:
        return True
    if info.get("hostname") == hostname and pid > 0 and not _pid_alive(pid):
        return True
    return False


def describe(info):
    return "%s lock of %s (pid %s on %s)" % (info.get("kind"), info.get("operation") or "a process",
                                             info.get("pid"), info.get("hostname"))


class Lock(object):
    """A held lock; use as a context manager or call ``release``."""

    def __init__(self, backend, kind, operation, backup_id=None, heartbeat_interval=None):
        self.backend = backend
        self.kind = kind
        self.name = "%s/%s-%s" % (PREFIX, kind, uuid.uuid4().hex)
        self.info = {
            "kind": kind,
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "created": time.time(),
            "heartbeat": time.time(),
            "operation": operation,
            "backup_id": backup_id,
        }
        self._interval = HEARTBEAT_INTERVAL if heartbeat_interval is None else heartbeat_interval
        self._stop = threading.Event()
        self._thread = None
        self.held = False

    def _write(self):
        self.info["heartbeat"] = time.time()
        # not flushed to disk: after a power loss the holder is dead and its lock worthless
        self.backend.put(self.name, json.dumps(self.info, sort_keys=True).encode("utf-8"), durable=False)

    def _beat(self):
        while not self._stop.wait(self._interval):
            try:
                self._write()
            except Exception:  # a missed heartbeat only makes the lock look older
                pass

    def acquire(self, remove_stale=False):
        self._write()
        try:
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
        self._thread = threading.Thread(target=self._beat, name="vmcrypt-lock-heartbeat")
        self._thread.daemon = True
        self._thread.start()
        return self

    def _others(self):
        conflicts = []
        stale = []
        for name in list_locks(self.backend):
            if name == self.name:
                continue
            info = read_lock(self.backend, name)
            if info is None:
                continue
            if is_stale(info):
                stale.append(name)
            elif self.kind == EXCLUSIVE or info.get("kind") == EXCLUSIVE:
                conflicts.append(info)
        return conflicts, stale

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
    """The lock info in ``name``; None when it vanished meanwhile; unreadable files count as stale."""
    try:
        info = json.loads(backend.get(name).decode("utf-8"))
    except MissingDataError:
        return None
    except (ValueError, UnicodeDecodeError):
        return {"kind": "unknown", "heartbeat": 0}
    return info if isinstance(info, dict) else {"kind": "unknown", "heartbeat": 0}


def live_locks(backend):
    """[(name, info)] of the locks that are not stale."""
    result = []
    for name in list_locks(backend):
        info = read_lock(backend, name)
        if info is not None and not is_stale(info):
            result.append((name, info))
    return result


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
