# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which chunks of a disk to read: from allocated extents, or from CBT's changed areas.

A full backup reads in whole repository chunks aligned to disk offsets, so
an extent that covers part of a chunk means reading the whole chunk (VDDK
returns zeros for what is not allocated).  An incremental one reads only
the changed areas (widened to whole sectors): a chunk that changed in part
is its base backup's chunk with the changed pieces laid over it, so the
bytes read through VDDK, the costly ones on a real network, are the
changed bytes.  Chunks no extent touches are never read: holes in a full
backup, the base backup's data in an incremental one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ReadPlan:
    """Chunk numbers to read, in disk order, and what they add up to."""

    def __init__(self, capacity, chunk_size, chunk_numbers, incremental, pieces=None):
        self.capacity = capacity
        self.chunk_size = chunk_size
        self.chunk_numbers = chunk_numbers
        self.incremental = incremental
        # chunk number -> [(offset, length)] to read of a chunk that changed in part; absent: the whole chunk
        self.pieces = pieces or {}

    def chunk_range(self, number):
        """(offset, length) of a chunk; the last one may be short."""
        offset = number * self.chunk_size
        return offset, min(self.chunk_size, self.capacity - offset)

    def reads(self, number):
        """[(offset, length)] to read of a chunk: its changed pieces, or the whole chunk."""
        return self.pieces.get(number) or [self.chunk_range(number)]

    @property
    def bytes_to_read(self):
        return sum(length for number in self.chunk_numbers for _offset, length in self.reads(number))

    @property
    def bytes_skipped(self):
        return self.capacity - self.bytes_to_read


def merged_ranges(ranges):
    """(offset, length) ranges sorted, touching or overlapping ones joined, empty ones dropped."""
    merged = []
    for offset, length in sorted(ranges):
        if length <= 0:
            continue
        if merged and merged[-1][0] + merged[-1][1] >= offset:
            last_offset, last_length = merged[-1]
            merged[-1] = (last_offset, max(last_offset + last_length, offset + length) - last_offset)
        else:
            merged.append((offset, length))
    return merged


def chunks_touched(extents, capacity, chunk_size):
    """Sorted chunk numbers that any (offset, length) extent touches, within capacity."""
    last_chunk = (capacity - 1) // chunk_size
    touched = set()
    for offset, length in extents:
        if length <= 0 or offset >= capacity:
            continue
        first = max(0, offset) // chunk_size
        last = min(capacity, offset + length) - 1
        touched.update(range(first, min(last // chunk_size, last_chunk) + 1))
    return sorted(touched)


def full_plan(capacity, chunk_size, allocated_extents=None):
    """Read every allocated chunk; without extent information, every chunk."""
    if allocated_extents is None:
        numbers = list(range((capacity + chunk_size - 1) // chunk_size))
    else:
        numbers = chunks_touched(allocated_extents, capacity, chunk_size)
    return ReadPlan(capacity, chunk_size, numbers, incremental=False)


def incremental_plan(capacity, chunk_size, changed_extents, sector=512):
    """Read only what CBT reports changed, in whole sectors; the rest comes from the base backup.

    A chunk the changed areas cover only in part gets ``pieces``: the
    changed ranges within it, widened to ``sector`` boundaries and merged.
    """
    within = {}
    for offset, length in changed_extents:
        start, stop = max(0, offset) // sector * sector, min(capacity, offset + length)
        stop = min(capacity, -(-stop // sector) * sector)
        while start < stop:
            number = start // chunk_size
            end = min(stop, (number + 1) * chunk_size)
            within.setdefault(number, []).append((start, end - start))
            start = end
    pieces = {}
    for number, ranges in within.items():
        merged = merged_ranges(ranges)
        if merged != [(number * chunk_size, min(chunk_size, capacity - number * chunk_size))]:
            pieces[number] = merged
    return ReadPlan(capacity, chunk_size, sorted(within), incremental=True, pieces=pieces)
