# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When chunk files reach stable storage: one flush per writer, and what a crash leaves.

``sync_level`` (the modules' ``repository_sync``), as Proxmox Backup
Server's datastore option ``sync-level`` offers it:

- ``file``: every chunk file is ``fsync``ed, and its folder, before it is
  published under its name;
- ``filesystem`` (the default): chunk files are published unflushed, each
  with its writeback started (``sync_file_range``, which does not wait), and
  the writer flushes the repository's whole file system once (``syncfs``)
  before it writes the record that names them.  No thread waits on the disk
  per chunk, and the export takes about a tenth less time
  (``docs/performance.md``).

Either way a record (a staged part, hence a manifest) is written only after a
flush that follows every chunk it names, written or found: a chunk another
live writer published unflushed on this host is in the same page cache, so
the flush covers it too.

What ``filesystem`` changes is what a crash of the storage can leave behind:
chunk files whose name survived but whose bytes did not (ext4 with delayed
allocation keeps the directory entry and an empty file; XFS can keep the size
with zeros).  No record names them, but a later backup finding them would
take them for stored.  So a writer owes a *marker*: before its first
unflushed chunk it writes ``unflushed/<random>`` (flushed, naming its lock),
and only after its flush does it remove it.  A marker whose lock is gone or
stale was left by a writer that died with chunk files maybe unflushed:
before any backup writes, ``recover`` flushes what this host still caches,
reads every chunk file modified since the marker was made, moves those that
do not authenticate to ``quarantine/``, and removes the marker.  The next
backup of that data stores it again.

A chunk can also move to quarantine while a backup that found it runs (a
``backup_verify``, or the recovery of a writer that died meanwhile):
``check_not_quarantined`` refuses, just before the record, a disk whose
chunks were moved there and not stored again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import json
import os
import socket
import threading
import uuid

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import chunks, locks
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    MissingDataError,
    UnsafeFileError,
)

PREFIX = "unflushed"
FILE = "file"
FILESYSTEM = "filesystem"
SYNC_LEVELS = (FILESYSTEM, FILE)
DEFAULT_SYNC_LEVEL = FILESYSTEM
# Modification times of a marker and of the chunk files after it come from the
# same storage clock; the slack covers file systems that keep them coarsely
# (FAT and some SMB servers: 2 s).
MTIME_SLACK = 2.0
MAX_MARKER_SIZE = 64 << 10
BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


def boot_id():
    """This host's boot id (Linux), or None: a writer of another boot died with it, whatever its pid."""
    try:
        with open(BOOT_ID_FILE) as handle:
            return handle.read().strip() or None
    except (IOError, OSError):
        return None


def check_sync_level(level):
    if level not in SYNC_LEVELS:
        raise InvalidArgumentError("repository sync level must be one of %s, not %r" % (", ".join(SYNC_LEVELS), level))
    return level


class PendingFlush(object):
    """What one writer owes: a flush before its record, and a marker while chunk files are unflushed.

    ``unflushed()`` is called before every chunk put (from any thread) and
    says whether that put may skip its own flush; ``settle()`` is called
    before the record.
    """

    def __init__(self, repository, lock):
        self.backend = repository.backend
        self.deferred = repository.sync_level == FILESYSTEM
        self.name = "%s/%s" % (PREFIX, uuid.uuid4().hex)
        self._lock = lock
        self._mutex = threading.Lock()
        self._marked = False

    def unflushed(self):
        """True when the next chunk may be published unflushed (the marker is written first, once)."""
        if not self.deferred:
            return False
        with self._mutex:
            if not self._marked:
                info = {"lock": self._lock.name, "pid": os.getpid(), "hostname": socket.gethostname(),
                        "boot_id": boot_id(), "operation": self._lock.info.get("operation")}
                self.backend.put(self.name, json.dumps(info, sort_keys=True).encode("utf-8"))
                self._marked = True
        return True

    def settle(self):
        """Flush the repository's file system; what was written so far is stable, so the marker goes."""
        with self._mutex:
            self.backend.sync()
            if self._marked:
                self.backend.delete(self.name)
                self._marked = False

    def settle_quietly(self):
        """``settle`` on the way out of a failure: if the flush fails, the marker stays for ``recover``."""
        try:
            self.settle()
        except Exception:  # the failure being reported matters more; recover() handles the rest
            pass


def _writer_alive(marker, lock_files, now):
    """Whether the writer of ``marker`` (its JSON) may still be running and owe its own flush.

    Not when its lock is gone, stale, or unreadable (a lock file is written
    whole, so only a crash leaves one empty or zeroed), nor when it ran on
    this host before the last boot (its pid may be someone else's now).
    """
    if not isinstance(marker, dict):
        return False
    if marker.get("hostname") == socket.gethostname() and marker.get("boot_id") not in (None, boot_id()):
        return False
    found = lock_files.get(marker.get("lock"))
    if found is None:
        return False
    info, mtime = found
    return info.get("kind") in (locks.SHARED, locks.EXCLUSIVE) and not locks.is_stale(info, mtime, now)


def _orphaned_markers(backend):
    """[(marker name, its modification time)] of the markers whose writer is dead."""
    names = backend.list(PREFIX)
    if not names:
        return []
    now = backend.now()
    lock_files = dict((name, (info, mtime)) for name, info, mtime in locks.read_locks(backend))
    orphaned = []
    for name in names:
        mtime = 0.0  # a marker that cannot be read calls for every chunk file to be checked
        try:
            mtime = backend.stat(name)[1]
            marker = json.loads(backend.get(name, max_size=MAX_MARKER_SIZE).decode("utf-8"))
        except MissingDataError:
            continue  # its writer settled meanwhile
        except (ValueError, UnicodeDecodeError, UnsafeFileError):
            marker = None  # a marker is flushed whole: only tampering leaves it unreadable or a link
        if not _writer_alive(marker, lock_files, now):
            orphaned.append((name, mtime))
    return orphaned


class Recovery(object):
    """What ``recover`` did: markers cleared, chunk files read, the ids moved to quarantine."""

    def __init__(self, markers=0, checked=0, quarantined=None):
        self.markers = markers
        self.checked = checked
        self.quarantined = list(quarantined or [])

    def warning(self):
        if not self.markers:
            return None
        return ("a writer of this repository stopped without flushing its chunk files (a crash or power loss): "
                "%d chunk file(s) written since were read, %d did not authenticate and were moved to quarantine/; "
                "backups store their data again" % (self.checked, len(self.quarantined)))


def recover(repository):
    """Clear markers left by dead writers (see the module's text); returns a ``Recovery``."""
    backend = repository.backend
    orphaned = _orphaned_markers(backend)
    if not orphaned:
        return Recovery()
    backend.sync()  # what a dead process left in this host's page cache is stable from here on
    since = min(mtime for _name, mtime in orphaned) - MTIME_SLACK
    checked = 0
    quarantined = []
    for name in backend.walk_modified(chunks.PREFIX, since):
        chunk_id = chunks.id_from_name(name)
        if chunk_id is None:
            continue
        checked += 1
        try:
            repository.chunks.get(chunk_id, check_id=False)
        except MissingDataError:
            continue
        except (IntegrityError, UnsafeFileError):
            if repository.chunks.quarantine(chunk_id):
                quarantined.append(chunk_id)
    backend.sync()  # the moves to quarantine, before the markers that call for them go
    for name, _mtime in orphaned:
        backend.delete(name)
    return Recovery(len(orphaned), checked, quarantined)


def check_not_quarantined(repository, chunk_ids, what):
    """Refuse ``what`` (a disk about to be recorded) if one of its chunks was moved to quarantine
    and not stored again since."""
    moved = repository.chunks.quarantined_ids()
    for chunk_id in set(chunk_ids) & moved:
        try:
            repository.chunks.get(chunk_id, check_id=False)
        except (MissingDataError, IntegrityError, UnsafeFileError):
            raise IntegrityError("%s: chunk %s was moved to quarantine (damaged) while this backup ran; "
                                 "nothing was recorded: run it again to store its data anew"
                                 % (what, binascii.hexlify(chunk_id).decode("ascii")))
