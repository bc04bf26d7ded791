# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stream one disk into a staged backup: read, then hash, compress, encrypt and store in parallel.

The source (a VDDK disk handle) is used from one thread only, as VDDK
requires; the repository's DiskWriter spreads hashing, zstd and AES-GCM
over a thread pool (all three release the GIL) with a bounded number of
blocks in flight, so memory stays flat whatever the disk size.

A read that fails with a retryable error (a dropped connection, a transient
read error) closes the source, waits, opens a new one and resumes at the
chunk that failed; chunks already stored stay stored.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError, retry_predicate
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile

MIB = 1048576.0


class _Reader:
    """Yields (offset, bytes) of the planned chunks, reconnecting on retryable errors."""

    def __init__(self, open_source, plan, disk_key, retryable, max_retries, retry_delay, sleep, on_read):
        self.open_source = open_source
        self.plan = plan
        self.disk_key = disk_key
        self.retryable = retryable
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.on_read = on_read
        self.retries = 0
        self.transport = None
        self.bytes_read = 0
        self._source = None

    def _retry(self, offset, error):
        self.retries += 1
        if self.retries > self.max_retries:
            raise TransferError("disk %s: reading at offset %d failed after %d retries: %s"
                                % (self.disk_key, offset, self.max_retries, error))
        self._close_source()
        self.sleep(self.retry_delay * (2 ** (self.retries - 1)))

    def _ensure_source(self, offset):
        while self._source is None:
            try:
                self._source = self.open_source()
                self.transport = getattr(self._source, "transport_mode", None) or self.transport
            except Exception as error:
                if not self.retryable(error):
                    raise
                self._retry(offset, error)

    def _close_source(self):
        source, self._source = self._source, None
        if source is not None:
            try:
                source.close()
            except Exception as error:
                if not self.retryable(error):
                    raise
                # the connection is already gone; a new one follows

    def __iter__(self):
        numbers = self.plan.chunk_numbers
        position = 0
        try:
            while position < len(numbers):
                offset, length = self.plan.chunk_range(numbers[position])
                self._ensure_source(offset)
                try:
                    data = self._source.read(offset, length)
                except VmcryptError as error:
                    if not self.retryable(error):
                        raise TransferError("disk %s: reading at offset %d failed: %s" % (self.disk_key, offset, error))
                    self._retry(offset, error)
                    continue
                except Exception as error:
                    if not self.retryable(error):
                        raise
                    self._retry(offset, error)
                    continue
                position += 1
                self.bytes_read += length
                self.on_read(length)
                yield offset, data
        finally:
            self._close_source()


def export_disk(open_source, writer, plan, progress=None, retryable=(), max_retries=3, retry_delay=1.0,
                threads=None, sleep=time.sleep, clock=time.monotonic):
    """Read ``plan``'s chunks from sources made by ``open_source()`` into ``writer``.

    ``open_source()`` returns an object with ``read(offset, length) -> bytes``
    and ``close()`` (and optionally ``transport_mode``); it is called again to
    resume after a ``retryable`` error (exception types, or a predicate).  The caller closes ``writer`` (its
    ``with`` block) so that a failure records nothing.  Returns the disk's
    report.
    """
    progress = progress or ProgressFile()
    disk_progress = progress.start_disk(writer.key, plan.bytes_to_read)
    reader = _Reader(open_source, plan, writer.key, retry_predicate(retryable), max_retries, retry_delay, sleep,
                     lambda count: progress.advance(disk_progress, count))
    started = clock()
    try:
        stats = writer.write_blocks(reader, threads=threads)
    except BaseException:
        progress.finish_disk(disk_progress, state="failed")
        raise
    duration = clock() - started
    progress.finish_disk(disk_progress)
    return {
        "key": writer.key,
        "capacity_bytes": plan.capacity,
        "incremental": plan.incremental,
        "bytes_read": reader.bytes_read,
        "bytes_skipped": plan.bytes_skipped,
        "bytes_stored": stats["new_bytes_stored"],
        "new_chunks": stats["new_chunks"],
        "deduplicated_chunks": stats["deduplicated_chunks"],
        "zero_chunks": stats["zero_blocks"],
        "chunks_from_base": stats["blocks_from_base"],
        "retries": reader.retries,
        "transport": reader.transport,
        "duration_seconds": round(duration, 3),
        "throughput_mib_s": round(reader.bytes_read / MIB / duration, 1) if duration > 0 else None,
    }
