# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which chunks of a disk to read: from allocated extents, or from CBT's changed areas.

Reads happen in whole repository chunks aligned to disk offsets, so an
extent that covers part of a chunk means reading the whole chunk (VDDK
returns zeros for what is not allocated).  Chunks no extent touches are
never read: holes in a full backup, the base backup's data in an
incremental one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ReadPlan:
    """Chunk numbers to read, in disk order, and what they add up to."""

    def __init__(self, capacity, chunk_size, chunk_numbers, incremental):
        self.capacity = capacity
        self.chunk_size = chunk_size
        self.chunk_numbers = chunk_numbers
        self.incremental = incremental

    def chunk_range(self, number):
        """(offset, length) of a chunk; the last one may be short."""
        offset = number * self.chunk_size
        return offset, min(self.chunk_size, self.capacity - offset)

    @property
    def bytes_to_read(self):
        return sum(self.chunk_range(number)[1] for number in self.chunk_numbers)

    @property
    def bytes_skipped(self):
        return self.capacity - self.bytes_to_read


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


def incremental_plan(capacity, chunk_size, changed_extents):
    """Read only the chunks CBT reports changed; the rest comes from the base backup."""
    return ReadPlan(capacity, chunk_size, chunks_touched(changed_extents, capacity, chunk_size), incremental=True)
