# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a backed-up disk into a target disk: fetch, authenticate and decompress in parallel, write in order.

Every chunk is authenticated by the repository before a byte of it reaches
the target.  Holes of the backup are never written: the target is a new
thin disk, whose unwritten areas read as zeros, so they stay holes.  The
target (a VDDK disk handle) is used from one thread only; a retryable
write error reopens it and writes the same chunk again (writes are
idempotent).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError, retry_predicate
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.reconnect import ReconnectingDisk

MIB = 1048576.0


def _default_threads():
    return min(8, max(2, os.cpu_count() or 1))


def import_disk(open_target, repository, backup_id, disk_key, progress=None, retryable=(), max_retries=3,
                retry_delay=1.0, threads=None, sleep=time.sleep, clock=time.monotonic):
    """Restore disk ``disk_key`` of ``backup_id`` into targets made by ``open_target()``.

    ``open_target()`` returns an object with ``write(offset, data)`` and
    ``close()`` (and optionally ``transport_mode``).  Returns the disk's report.
    """
    index = repository.read_manifest(backup_id).disk_index(disk_key)
    stored = [(offset, length, chunk_id) for offset, length, chunk_id in index.extents() if chunk_id is not None]
    total = sum(length for _offset, length, _chunk in stored)
    progress = progress or ProgressFile()
    disk_progress = progress.start_disk(disk_key, total)
    target = ReconnectingDisk(open_target, disk_key, "writing", retry_predicate(retryable), max_retries, retry_delay,
                              sleep)
    threads = threads or _default_threads()
    started = clock()
    written = 0
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            in_flight = collections.deque()
            pending = iter(stored)
            for offset, length, chunk_id in pending:
                in_flight.append((offset, length, pool.submit(repository.chunks.get, chunk_id)))
                if len(in_flight) >= 2 * threads:
                    break
            while in_flight:
                offset, length, future = in_flight.popleft()
                data = future.result()  # raises IntegrityError/MissingDataError before anything is written
                if len(data) != length:
                    raise TransferError("disk %s: chunk at offset %d has %d bytes, the index says %d"
                                        % (disk_key, offset, len(data), length))
                target.call(offset, lambda handle, offset=offset, data=data: handle.write(offset, data))
                written += length
                progress.advance(disk_progress, length)
                for next_offset, next_length, next_chunk in pending:
                    in_flight.append((next_offset, next_length, pool.submit(repository.chunks.get, next_chunk)))
                    break
    except BaseException:
        progress.finish_disk(disk_progress, state="failed")
        target.close()
        raise
    target.close()
    duration = clock() - started
    progress.finish_disk(disk_progress)
    return {
        "key": disk_key,
        "capacity_bytes": index.capacity,
        "bytes_written": written,
        "bytes_skipped": index.capacity - written,
        "retries": target.retries,
        "transport": target.transport,
        "duration_seconds": round(duration, 3),
        "throughput_mib_s": round(written / MIB / duration, 1) if duration > 0 else None,
    }
