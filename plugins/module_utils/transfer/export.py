# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stream one disk into a staged backup: read, then hash, compress, encrypt and store in parallel.

The source (a VDDK disk handle) is used from one thread only, as VDDK
requires; the repository's DiskWriter spreads hashing, zstd and AES-GCM
over a thread pool (all three release the GIL) with a bounded number of
blocks in flight, so memory stays flat whatever the disk size.

An incremental plan may name only the changed pieces of a chunk: they are
read through VDDK and handed to the writer as ``ChangedPieces``, which
stores them as patches over the base backup's block (``patches.py``), so
only changed bytes cross the network and only they are stored.

A read that fails with a retryable error (a dropped connection, a transient
read error) closes the source, waits, opens a new one and resumes at the
chunk that failed; chunks already stored stay stored.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.staging import ChangedPieces
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import retry_predicate
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.reconnect import ReconnectingDisk

MIB = 1048576.0


class _Reader:
    """Yields (offset, bytes or ChangedPieces) of the planned chunks from a disk that reconnects on retryable errors."""

    def __init__(self, disk, plan, on_read):
        self.disk = disk
        self.plan = plan
        self.on_read = on_read
        self.bytes_read = 0

    def _read(self, offset, length):
        data = self.disk.call(offset, lambda handle: handle.read(offset, length))
        self.bytes_read += length
        self.on_read(length)
        return data

    def __iter__(self):
        try:
            for number in self.plan.chunk_numbers:
                offset, length = self.plan.chunk_range(number)
                if number in self.plan.pieces:
                    pieces = [(start, self._read(start, size)) for start, size in self.plan.pieces[number]]
                    yield offset, ChangedPieces(number, pieces)
                else:
                    yield offset, self._read(offset, length)
        finally:
            self.disk.close()


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
    disk = ReconnectingDisk(open_source, writer.key, "reading", retry_predicate(retryable), max_retries, retry_delay,
                            sleep)
    reader = _Reader(disk, plan, lambda count: progress.advance(disk_progress, count))
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
        "bytes_deduplicated": stats["deduplicated_bytes"],
        "new_chunks": stats["new_chunks"],
        "deduplicated_chunks": stats["deduplicated_chunks"],
        "zero_chunks": stats["zero_blocks"],
        "chunks_from_base": stats["blocks_from_base"],
        "patched_chunks": stats["patched_blocks"],
        "retries": disk.retries,
        "transport": disk.transport,
        "duration_seconds": round(duration, 3),
        "throughput_mib_s": round(reader.bytes_read / MIB / duration, 1) if duration > 0 else None,
    }
