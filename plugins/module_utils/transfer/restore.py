# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a backed-up disk into a target disk: fetch, authenticate and decompress in parallel, write in order.

Every chunk is authenticated by the repository before a byte of it reaches
the target.  The target is left reading exactly as the backup (and as zeros
past the backup's capacity), whatever it held before:

- the chunks the backup stored are written;
- a hole of the backup (a block it holds as zeros) is written with zeros
  where the target has data there, and left alone where the target is
  unallocated (it reads as zeros already; writing zeros would only allocate
  a thin disk's blocks, which the VDDK guide asks restores to avoid).  Which
  target blocks hold data is asked of the target (VDDK
  ``QueryAllocatedBlocks``) before the first write;
- when the target cannot tell, every hole is written with zeros;
- ``target_blank=True`` skips the question: the caller states the target
  reads as zeros everywhere (a disk it has just created), so holes are
  never written.

The target (a VDDK disk handle) is used from one thread only, with several
writes queued on it (VDDK WriteAsync) while the next chunks are decoded; a
retryable error reopens it, writes again what was queued and not known
written, and does the same I/O again (writes are idempotent).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import os
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import patches
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import retry_predicate
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.plan import merged_ranges
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.reconnect import ReconnectingDisk

MIB = 1048576.0
# How the target's old contents were dealt with (the report's ``target_check``).
CHECK_SKIPPED = "skipped"  # target_blank: the caller vouches for a blank target
CHECK_ALLOCATED_BLOCKS = "allocated_blocks"  # the target said which blocks hold data
CHECK_UNAVAILABLE = "unavailable"  # the target could not tell: every hole written with zeros


def _default_threads():
    """Decoding threads per disk: twice the CPUs, 4 to 8, since each also reads its chunk files, and a restore
    reads a repository long out of the page cache: a thread waiting on the disk leaves its CPU to the others."""
    return min(8, max(4, 2 * (os.cpu_count() or 1)))


def _target_allocation(handle):
    """(allocated [(offset, length)] or None when it cannot tell, capacity in bytes or None)."""
    query = getattr(handle, "allocated_extents", None)
    extents = query() if query is not None else None
    return extents, getattr(handle, "capacity", None)


def stale_ranges(stored, allocated, end):
    """[(offset, length)] below ``end`` that are not ``stored`` and, unless ``allocated`` is None, are allocated.

    ``stored`` and ``allocated`` are sorted lists of (offset, length).
    """
    wanted = [(0, end)] if allocated is None else merged_ranges(sorted(allocated))
    result = []
    data = iter(stored)
    current = next(data, None)
    for start, length in wanted:
        position, stop = max(0, start), min(start + length, end)
        while position < stop:
            while current is not None and current[0] + current[1] <= position:
                current = next(data, None)
            if current is None or current[0] >= stop:
                result.append((position, stop - position))
                break
            if current[0] > position:
                result.append((position, current[0] - position))
            position = current[0] + current[1]
    return merged_ranges(result)


def _finish_writes(handle):
    finish = getattr(handle, "finish_writes", None)
    if finish is not None:
        finish()


def _pieces(ranges, size):
    for offset, length in ranges:
        for start in range(offset, offset + length, size):
            yield start, min(size, offset + length - start)


def import_disk(open_target, repository, backup_id, disk_key, progress=None, retryable=(), max_retries=3,
                retry_delay=1.0, threads=None, sleep=time.sleep, clock=time.monotonic, target_blank=False,
                warn=None, check_chunk_ids=False):
    """Restore disk ``disk_key`` of ``backup_id`` into targets made by ``open_target()``.

    ``open_target()`` returns an object with ``write(offset, data)`` and
    ``close()``, optionally ``transport_mode``, ``capacity`` (bytes) and
    ``allocated_extents()`` ([(offset, length)] holding data, or None when
    it cannot tell).  ``warn(text)`` hears when holes are zeroed blind.
    Every chunk is authenticated; ``check_chunk_ids`` also recomputes each
    chunk's id (``ChunkStore.get``), as the backup's own verify did.
    Returns the disk's report.
    """
    index = repository.read_manifest(backup_id).disk_index(disk_key)
    # (offset, length, chunk id or None, patches) of every block holding data: a chunk, patches, or both
    stored = [block for block in index.extents() if block[2] is not None or block[3]]
    target = ReconnectingDisk(open_target, disk_key, "writing", retry_predicate(retryable), max_retries, retry_delay,
                              sleep)
    progress = progress or ProgressFile()
    started = clock()
    zeros = []
    try:
        if target_blank:
            check = CHECK_SKIPPED
        else:
            allocated, capacity = target.call(0, _target_allocation)
            end = max(index.capacity, capacity or 0)
            zeros = stale_ranges([(block[0], block[1]) for block in stored], allocated, end)
            check = CHECK_ALLOCATED_BLOCKS if allocated is not None else CHECK_UNAVAILABLE
            if allocated is None and zeros and warn:
                zero_bytes = sum(length for _offset, length in zeros)
                warn("disk %s: the target cannot tell which of its blocks hold data (or reports all of them), so "
                     "every hole of the backup is written with zeros (%d bytes), leaving nothing of its old "
                     "contents; set target_blank for disks just created" % (disk_key, zero_bytes))
    except BaseException:
        target.close()
        raise
    plan = sorted(stored + [(offset, length, None, ()) for offset, length in _pieces(zeros, index.chunk_size)])
    total = sum(block[1] for block in plan)
    disk_progress = progress.start_disk(disk_key, total)
    threads = threads or _default_threads()
    written = zeroed = 0
    zero_block = bytes(index.chunk_size)
    try:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            def get(chunk_id):
                return repository.chunks.get(chunk_id, check_chunk_ids)

            def fetch(offset, length, chunk_id, patch_list):
                if chunk_id is None and not patch_list:
                    return offset, length, None
                # read_block checks every length against the index, patched or not
                return offset, length, pool.submit(patches.read_block, get, chunk_id, length, patch_list,
                                                   "disk %s: block at offset %d" % (disk_key, offset))
            in_flight = collections.deque()
            pending = iter(plan)
            for item in pending:
                in_flight.append(fetch(*item))
                if len(in_flight) >= 2 * threads:
                    break
            while in_flight:
                offset, length, future = in_flight.popleft()
                if future is None:
                    data = zero_block if length == len(zero_block) else bytes(length)
                else:
                    data = future.result()  # raises IntegrityError/MissingDataError before anything is written
                target.call(offset, lambda handle, offset=offset, data=data: handle.write(offset, data))
                if future is None:
                    zeroed += length
                else:
                    written += length
                progress.advance(disk_progress, length)
                for item in pending:
                    in_flight.append(fetch(*item))
                    break
        # queued writes (VDDK WriteAsync) are done, or their failures retried, before the disk counts as written
        target.call(total, _finish_writes)
    except BaseException:
        progress.finish_disk(disk_progress, state="failed")
        target.close()
        raise
    target.close()
    duration = clock() - started
    progress.finish_disk(disk_progress)
    zeroed_inside = sum(max(0, min(offset + length, index.capacity) - offset)
                        for offset, length, chunk_id, patch_list in plan if chunk_id is None and not patch_list)
    return {
        "key": disk_key,
        "capacity_bytes": index.capacity,
        "bytes_written": written,
        "bytes_zeroed": zeroed,
        "bytes_skipped": index.capacity - written - zeroed_inside,
        "target_check": check,
        "chunk_ids_checked": check_chunk_ids,
        "retries": target.retries,
        "transport": target.transport,
        "duration_seconds": round(duration, 3),
        "throughput_mib_s": round((written + zeroed) / MIB / duration, 1) if duration > 0 else None,
    }
