# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Staged (uncommitted) backups and the disk writer.

A backup is built by separate steps, possibly on different hosts: ``start``
writes ``staging/<backup id>/vm``; metadata capture writes ``metadata`` (and
``secrets``) and ``nvram``; each disk export writes its chunks and then
``disk-<key>`` (index, changeId, statistics); ``commit`` assembles the
manifest, writes ``backups/<backup id>`` and only then removes the staging
folder.  Each part is one sealed JSON file (magic ``VMCS``, context
``<backup id>/<part>``), written atomically, so re-running a step replaces its
part.  Restores never look at staging.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import (
    chain,
    envelope,
    flush,
    locks,
    manifest,
    patches,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import ZeroCheck
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackupNotFoundError,
    MissingDataError,
)

PREFIX = "staging"
DISK_PART_PREFIX = "disk-"

# The changed pieces of one block, [(disk offset, bytes)], for DiskWriter.write_blocks (an incremental's read plan).
ChangedPieces = collections.namedtuple("ChangedPieces", "number pieces")


def staging_dir(backup_id):
    return "%s/%s" % (PREFIX, backup_id)


def part_name(backup_id, part):
    return "%s/%s/%s" % (PREFIX, backup_id, part)


class StagedBackup(object):
    """An uncommitted backup.  Get one from ``Repository.start_backup`` or ``Repository.staged_backup``."""

    def __init__(self, repository, backup_id):
        self.repository = repository
        self.backup_id = manifest.check_backup_id(backup_id)

    # -- parts -------------------------------------------------------------
    def _write_part(self, part, document):
        blob = manifest.seal_json(self.repository.keys, envelope.MAGIC_STAGED, "%s/%s" % (self.backup_id, part), document)
        self.repository.backend.put(part_name(self.backup_id, part), blob)

    def _read_part(self, part):
        name = part_name(self.backup_id, part)
        blob = self.repository.backend.get(name, max_size=manifest.MAX_DOCUMENT_SIZE)
        return manifest.open_json(self.repository.keys, envelope.MAGIC_STAGED, "%s/%s" % (self.backup_id, part),
                                  blob, "staged part %s" % name)

    def parts(self):
        return [name.rsplit("/", 1)[-1] for name in self.repository.backend.list(staging_dir(self.backup_id))]

    def exists(self):
        return "vm" in self.parts()

    def _shared_lock(self, operation):
        return locks.acquire(self.repository.backend, locks.SHARED, operation, self.backup_id,
                             wait=self.repository.lock_wait)

    # -- steps -------------------------------------------------------------
    def _start(self, vm, base_backup_id=None, tags=None):
        if base_backup_id is not None:
            manifest.check_backup_id(base_backup_id)
        document = {
            "backup_id": self.backup_id,
            "vm": dict(vm or {}),
            "started": manifest.iso_time(time.time()),
            "base_backup_id": base_backup_id,
            "tags": dict(tags or {}),
        }
        with self._shared_lock("start backup"):
            self._write_part("vm", document)

    def info(self):
        """The ``vm`` part: identity, start time, base backup, tags."""
        try:
            return self._read_part("vm")
        except MissingDataError:
            raise BackupNotFoundError("no staged backup %s in repository %s" % (self.backup_id, self.repository.location))

    def put_metadata(self, metadata, secrets=None):
        """Store the VM metadata (JSON-able dict) and its secrets (name -> str).

        ``secrets`` holds what must never be shown, above all
        ``{"encryption.bundle": "..."}``; summaries only list the names.
        By convention ``metadata["key_id"]`` is the VM keyId ({"key_id", "provider_id"}).
        """
        if not isinstance(metadata, dict):
            raise InvalidArgumentError("backup metadata must be a mapping")
        secrets = dict(secrets or {})
        for name, value in secrets.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise InvalidArgumentError("backup secrets must map names to strings")
        self.info()
        with self._shared_lock("store metadata"):
            self._write_part("metadata", {"metadata": metadata, "secrets": secrets})

    def put_nvram(self, data):
        """Store the NVRAM file (as downloaded; vSphere encrypted it already) as chunks of the repository.

        ``data`` is bytes or an iterable of byte blocks of any size: a stream is
        stored a chunk at a time, never held whole.  Returns {"size", "sha256"}.
        """
        if isinstance(data, (bytes, bytearray)):
            data = [bytes(data)]
        self.info()
        chunk_size = self.repository.chunk_size
        digest = hashlib.sha256()
        chunks = []
        size = 0
        with self._shared_lock("store NVRAM") as lock:
            self.recover_unflushed()
            owed = flush.PendingFlush(self.repository, lock)

            def put(block):
                return [len(block), self.repository.chunks.put(block, durable=not owed.unflushed())[0].hex()]
            try:
                pending = bytearray()
                for block in data:
                    if not isinstance(block, (bytes, bytearray, memoryview)):
                        raise InvalidArgumentError("NVRAM must be bytes or an iterable of bytes")
                    digest.update(block)
                    size += len(block)
                    pending += block
                    while len(pending) >= chunk_size:
                        chunks.append(put(bytes(pending[:chunk_size])))
                        del pending[:chunk_size]
                if pending or not chunks:
                    chunks.append(put(bytes(pending)))
            except BaseException:
                owed.settle_quietly()
                raise
            flush.check_not_quarantined(self.repository, [bytes.fromhex(chunk_id) for _length, chunk_id in chunks],
                                        "NVRAM of backup %s" % self.backup_id)
            owed.settle()
            document = {"size": size, "sha256": digest.hexdigest(), "chunks": chunks}
            lock.check()
            self._write_part("nvram", document)
        return {"size": size, "sha256": document["sha256"]}

    def recover_unflushed(self):
        """Before this backup takes any chunk it finds for stored: clear what a writer that died unflushed
        left (``flush.recover``); the backup carries a warning when there was something to clear."""
        recovery = flush.recover(self.repository)
        warning = recovery.warning()
        if warning:
            self.repository.warnings.append(warning)
            warnings = self._warnings()
            if warning not in warnings:
                self._write_part("warnings", {"warnings": warnings + [warning]})
        return recovery

    def _warnings(self):
        try:
            return self._read_part("warnings")["warnings"]
        except MissingDataError:
            return []

    def add_warning(self, text):
        """Record a one-line warning that the committed backup will carry."""
        self.info()
        with self._shared_lock("store warning"):
            warnings = self._warnings()
            if text not in warnings:
                warnings.append(str(text))
            self._write_part("warnings", {"warnings": warnings})

    def open_disk(self, key, capacity, base_backup_id=None, base_disk_key=None, properties=None):
        """A ``DiskWriter`` for one disk; use it as a context manager.

        With ``base_backup_id`` the index starts as that backup's index of
        ``base_disk_key`` (default ``key``): only changed blocks need writing.
        The base disk must have the same capacity.  ``properties`` is a JSON-able
        dict shown by backup_info (label, keyId, storage policy, file name...);
        it must not hold secrets.
        """
        key = manifest.check_disk_key(key)
        capacity = int(capacity)
        if capacity <= 0:
            raise InvalidArgumentError("disk %s capacity must be positive" % key)
        self.info()
        lock = self._shared_lock("write disk %s" % key)
        try:
            self.recover_unflushed()
            base_index = None
            if base_backup_id is not None:
                base = self.repository.read_manifest(base_backup_id)
                base_index = base.disk_index(base_disk_key or key)
                if base_index.capacity != capacity:
                    raise InvalidArgumentError("disk %s changed capacity since backup %s: back it up in full"
                                               % (key, base_backup_id))
                if base_index.chunk_size != self.repository.chunk_size:
                    raise InvalidArgumentError("backup %s used another chunk size" % base_backup_id)
            return DiskWriter(self, key, capacity, lock, base_index, base_backup_id, properties)
        except BaseException:
            lock.release()
            raise

    def disk_part(self, key):
        return self._read_part(DISK_PART_PREFIX + manifest.check_disk_key(key))

    def chunk_ids(self):
        """Chunk ids the written disk and NVRAM parts reference (kept alive by prune)."""
        ids = set()
        for part in self.parts():
            if part == "nvram":
                ids.update(bytes.fromhex(chunk_id) for _length, chunk_id in self._read_part(part).get("chunks") or [])
            if part.startswith(DISK_PART_PREFIX):
                ids.update(manifest.disk_document_index(self._read_part(part), "staged part %s" % part).chunk_ids())
        return ids

    def newest_change(self):
        """Epoch seconds of the newest part written."""
        newest = 0.0
        for part in self.parts():
            try:
                newest = max(newest, self.repository.backend.stat(part_name(self.backup_id, part))[1])
            except MissingDataError:
                pass
        return newest

    def commit(self):
        """Write the manifest (the backup now exists), the VM's head record, and remove the staged parts.

        The manifest names the VM's previous backup and its hash (``chain.py``).
        Returns the Manifest.
        """
        with self._shared_lock("commit") as lock:
            name = "%s/%s" % (manifest.PREFIX, self.backup_id)
            if self.repository.backend.exists(name) and not self.exists():
                return self.repository.read_manifest(self.backup_id)
            start = self.info()
            parts = self.parts()
            metadata = self._read_part("metadata") if "metadata" in parts else {"metadata": None, "secrets": {}}
            nvram = self._read_part("nvram") if "nvram" in parts else None
            warnings = self._read_part("warnings")["warnings"] if "warnings" in parts else []
            disks = [self._read_part(part) for part in sorted(parts) if part.startswith(DISK_PART_PREFIX)]
            stats = collections.OrderedDict((field, 0) for field in DiskWriter.STAT_FIELDS)
            for disk in disks:
                for field in DiskWriter.STAT_FIELDS:
                    stats[field] += disk["stats"].get(field, 0)
            stats["disks"] = len(disks)
            previous, warning = chain.previous_of(self.repository, start["vm"])
            if warning and warning not in warnings:
                warnings.append(warning)
            document = {
                "version": manifest.manifest_version(disks),
                "backup_id": self.backup_id,
                "repository_id": self.repository.repository_id,
                "vm": start["vm"],
                "started": start["started"],
                "committed": manifest.iso_time(time.time()),
                "base_backup_id": start.get("base_backup_id"),
                "previous": previous,
                "tags": start.get("tags") or {},
                "metadata": metadata["metadata"],
                "secrets": metadata["secrets"],
                "nvram": nvram,
                "disks": disks,
                "stats": dict(stats),
                "warnings": warnings,
            }
            blob = manifest.seal_json(self.repository.keys, envelope.MAGIC_MANIFEST, self.backup_id, document)
            lock.check()
            written = self.repository.backend.put(name, blob, overwrite=False)
            if written:
                chain.write_head(self.repository, manifest.vm_identity_key(start["vm"]), self.backup_id,
                                 chain.file_hash(blob))
            self.discard(lock_held=True)
        if not written:  # committed before, by a run that stopped before cleaning up
            return self.repository.read_manifest(self.backup_id)
        return manifest.Manifest(document)

    def discard(self, lock_held=False):
        """Remove the staged parts (after commit, or to abandon the backup)."""
        def remove():
            for part in self.parts():
                self.repository.backend.delete(part_name(self.backup_id, part))
            self.repository.backend.delete_dir(staging_dir(self.backup_id))
        if lock_held:
            remove()
        else:
            with self._shared_lock("discard"):
                remove()


class DiskWriter(object):
    """Accepts chunk-aligned blocks of one disk from any number of threads.

    ``write(offset, data)``: ``offset`` is a multiple of the chunk size and
    ``data`` is a whole number of chunks, or ends exactly at the capacity.
    All-zero chunks become holes.  ``close()`` (or leaving the ``with``
    block normally) writes the staged disk part; leaving it by an exception
    writes nothing, and the chunks already stored are reclaimed by prune.
    """

    STAT_FIELDS = ("logical_bytes", "blocks_written", "zero_blocks", "new_chunks", "new_bytes_stored",
                   "deduplicated_chunks", "deduplicated_bytes", "blocks_from_base", "patched_blocks")

    def __init__(self, staged, key, capacity, lock, base_index, base_backup_id, properties):
        self.staged = staged
        self.key = key
        self.capacity = capacity
        self.chunk_size = staged.repository.chunk_size
        self._lock = lock
        self._owed = flush.PendingFlush(staged.repository, lock)
        self._stored_ids = set()  # what this run put or found, for flush.check_not_quarantined
        self._store = staged.repository.chunks
        self._mutex = threading.Lock()
        self._is_zero = ZeroCheck()
        self.index = manifest.DiskIndex(capacity, self.chunk_size, base_index.entries if base_index else None,
                                        base_index.patches if base_index else None)
        self._base_index = base_index or manifest.DiskIndex(capacity, self.chunk_size)
        self.base_backup_id = base_backup_id
        self.properties = dict(properties or {})
        self.change_id = None
        self.stats = dict((field, 0) for field in self.STAT_FIELDS)
        self.stats["blocks_from_base"] = len(self.index.entries)
        self.flush_seconds = None  # how long close() waited for the chunk files to reach stable storage
        self.closed = False

    def set_change_id(self, change_id):
        """The disk's CBT changeId at the snapshot, for the next incremental backup."""
        self.change_id = None if change_id is None else str(change_id)

    def write(self, offset, data):
        if self.closed:
            raise InvalidArgumentError("disk %s writer is closed" % self.key)
        offset = int(offset)
        size = len(data)
        if offset % self.chunk_size or offset < 0:
            raise InvalidArgumentError("disk %s: offset %d is not aligned to the chunk size %d" % (self.key, offset, self.chunk_size))
        if offset + size > self.capacity:
            raise InvalidArgumentError("disk %s: write at %d of %d bytes passes the capacity %d" % (self.key, offset, size, self.capacity))
        if size % self.chunk_size and offset + size != self.capacity:
            raise InvalidArgumentError("disk %s: block at %d is not a whole number of chunks" % (self.key, offset))
        if size <= self.chunk_size and isinstance(data, (bytes, bytearray)):
            self._write_block(offset // self.chunk_size, data)  # the common case: no copy (the caller lets go of it)
            return
        view = memoryview(data)
        for start in range(0, size, self.chunk_size):
            self._write_block((offset + start) // self.chunk_size, bytes(view[start:start + self.chunk_size]))

    def _write_block(self, number, block):
        if self._is_zero(block):
            with self._mutex:
                self.index.entries.pop(number, None)
                self.index.patches.pop(number, None)
                self.stats["zero_blocks"] += 1
                self.stats["blocks_written"] += 1
                self.stats["logical_bytes"] += len(block)
            return
        chunk_id = self._put(block)
        with self._mutex:
            self.index.entries[number] = chunk_id
            self.index.patches.pop(number, None)
            self.stats["blocks_written"] += 1
            self.stats["logical_bytes"] += len(block)

    def _put(self, data):
        """Store one chunk; count it as new or deduplicated."""
        chunk_id, stored = self._store.put(data, durable=not self._owed.unflushed())
        with self._mutex:
            self._stored_ids.add(chunk_id)
            if stored:
                self.stats["new_chunks"] += 1
                self.stats["new_bytes_stored"] += stored
            else:
                self.stats["deduplicated_chunks"] += 1
                self.stats["deduplicated_bytes"] += len(data)
        return chunk_id

    def write_pieces(self, number, pieces):
        """Record the changed ``pieces`` [(disk offset, bytes)] of block ``number`` over the base backup's block.

        Stored as patches (``patches.py``) while the block's patches stay
        within their limits; past them the block is rewritten whole.  One
        block must not be written from two threads at once.
        """
        start = number * self.chunk_size
        length = self.index.block_length(number)
        ranges = [(offset - start, len(data)) for offset, data in pieces]
        if any(offset < 0 or offset + size > length for offset, size in ranges):
            raise InvalidArgumentError("disk %s: a changed piece lies outside block %d" % (self.key, number))
        with self._mutex:
            kept = patches.uncovered(self.index.patches.get(number, ()), ranges)
        if not patches.worth_patching(kept, ranges, length):
            block = bytearray(self.base_block(number, length))
            for (offset, size), (_disk_offset, data) in zip(ranges, pieces):
                block[offset:offset + size] = data
            self._write_block(number, bytes(block))
            return
        added = [(offset, size, self._put(data)) for (offset, size), (_disk_offset, data) in zip(ranges, pieces)]
        with self._mutex:
            self.index.patches[number] = kept + added
            self.stats["blocks_written"] += 1
            self.stats["patched_blocks"] += 1
            self.stats["logical_bytes"] += sum(size for _offset, size in ranges)

    def base_block(self, number, length):
        """Block ``number`` (``length`` bytes) as the base backup holds it: authenticated chunk and patches, or zeros."""
        base = self._base_index
        return patches.read_block(self._store.get, base.entries.get(number), length, base.patches.get(number, ()),
                                  "disk %s: block %d of the base backup" % (self.key, number))

    def write_blocks(self, blocks, threads=None, max_pending=None):
        """Write an iterable of (offset, bytes) with a pool of threads; bounded memory.

        ``bytes`` may instead be ``ChangedPieces`` (an incremental's changed
        pieces of one block, ``write_pieces``): the offset is then the block's.

        At most ``max_pending`` blocks (default 2 per thread) are in flight.
        ``threads`` defaults to twice the CPUs, at least 4 and at most 8: a
        thread waiting in ``fsync`` leaves its CPU to the others.
        Returns the statistics so far.
        """
        threads = threads or min(8, max(4, 2 * (os.cpu_count() or 1)))
        pending = threading.BoundedSemaphore(max_pending or 2 * threads)
        errors = []

        def task(offset, data):
            try:
                if isinstance(data, ChangedPieces):
                    self.write_pieces(data.number, data.pieces)
                else:
                    self.write(offset, data)
            except BaseException as error:  # re-raised in the caller's thread
                errors.append(error)
            finally:
                pending.release()

        with ThreadPoolExecutor(max_workers=threads) as pool:
            for offset, data in blocks:
                pending.acquire()
                if errors:
                    pending.release()
                    break
                pool.submit(task, offset, data)
        if errors:
            raise errors[0]
        return dict(self.stats)

    def close(self):
        """Flush the chunks (``flush.py``), write the staged disk part and release the lock."""
        if self.closed:
            return
        try:
            flush.check_not_quarantined(self.staged.repository, self._stored_ids, "disk %s" % self.key)
            started = time.monotonic()
            self._owed.settle()
            self.flush_seconds = round(time.monotonic() - started, 3)
            document = {
                "key": self.key,
                "capacity": self.capacity,
                "chunk_size": self.chunk_size,
                "index": self.index.encode(),
                "patches": self.index.encode_patches(),
                "change_id": self.change_id,
                "base_backup_id": self.base_backup_id,
                "properties": self.properties,
                "stats": dict(self.stats, stored_logical_bytes=self.index.stored_bytes()),
            }
            # a writer whose lock was removed (judged stale) may have lost chunks to a prune: record nothing
            self._lock.check()
            self.staged._write_part(DISK_PART_PREFIX + self.key, document)
        except BaseException:
            self._owed.settle_quietly()
            raise
        finally:
            self.closed = True
            self._lock.release()

    def abort(self):
        """Release the lock without recording the disk (its chunks are flushed first, so no marker stays)."""
        if not self.closed:
            self.closed = True
            self._owed.settle_quietly()
            self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()
