"""Read plans: whole aligned chunks, holes and unchanged areas never read."""
from hypothesis import given, strategies as st

from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.plan import (
    chunks_touched,
    full_plan,
    incremental_plan,
)

CHUNK = 4096


def test_extent_inside_one_chunk_reads_that_chunk():
    assert chunks_touched([(5000, 10)], 10 * CHUNK, CHUNK) == [1]


def test_extent_across_a_boundary_reads_both_chunks():
    assert chunks_touched([(CHUNK - 1, 2)], 10 * CHUNK, CHUNK) == [0, 1]


def test_extent_ending_on_a_boundary_does_not_touch_the_next_chunk():
    assert chunks_touched([(0, CHUNK)], 10 * CHUNK, CHUNK) == [0]


def test_full_plan_without_extent_information_reads_everything_and_a_short_last_chunk():
    plan = full_plan(2 * CHUNK + 100, CHUNK)
    assert plan.chunk_numbers == [0, 1, 2]
    assert plan.chunk_range(2) == (2 * CHUNK, 100)
    assert plan.bytes_to_read == 2 * CHUNK + 100 and plan.bytes_skipped == 0


def test_sparse_disk_skips_holes():
    plan = full_plan(100 * CHUNK, CHUNK, [(0, 512), (50 * CHUNK, 3 * CHUNK)])
    assert plan.chunk_numbers == [0, 50, 51, 52]
    assert plan.bytes_skipped == 96 * CHUNK
    assert not plan.incremental


def test_incremental_plan_reads_changed_chunks_only():
    plan = incremental_plan(100 * CHUNK, CHUNK, [(10 * CHUNK + 7, 1), (99 * CHUNK, CHUNK)])
    assert plan.chunk_numbers == [10, 99] and plan.incremental


def test_incremental_plan_reads_only_the_changed_sectors_of_a_chunk_changed_in_part():
    plan = incremental_plan(100 * CHUNK, CHUNK, [(10 * CHUNK + 7, 1), (10 * CHUNK + 600, 100), (99 * CHUNK, CHUNK)])
    assert plan.reads(10) == [(10 * CHUNK, 1024)]  # two sectors, touching: one read
    assert plan.reads(99) == [(99 * CHUNK, CHUNK)] and 99 not in plan.pieces  # wholly changed: one read
    assert plan.bytes_to_read == 1024 + CHUNK


def test_a_changed_area_across_a_chunk_boundary_is_split_between_the_two_chunks():
    plan = incremental_plan(10 * CHUNK, CHUNK, [(CHUNK - 1024, 2048)])
    assert plan.chunk_numbers == [0, 1]
    assert plan.reads(0) == [(CHUNK - 1024, 1024)] and plan.reads(1) == [(CHUNK, 1024)]


def test_changed_areas_that_together_cover_a_chunk_read_it_whole():
    plan = incremental_plan(10 * CHUNK, CHUNK, [(2 * CHUNK, 1000), (2 * CHUNK + 900, CHUNK - 900)])
    assert plan.pieces == {} and plan.reads(2) == [(2 * CHUNK, CHUNK)]


@given(st.lists(st.tuples(st.integers(0, 20 * CHUNK), st.integers(1, 3 * CHUNK)), max_size=12))
def test_incremental_reads_cover_every_changed_byte_and_stay_in_their_chunk(extents):
    capacity = 16 * CHUNK + 1536  # a short last chunk
    plan = incremental_plan(capacity, CHUNK, extents)
    covered = set()
    for number in plan.chunk_numbers:
        start, length = plan.chunk_range(number)
        for offset, size in plan.reads(number):
            assert start <= offset and offset + size <= start + length and offset % 512 == 0
            covered.update(range(offset, offset + size))
    for offset, length in extents:
        assert set(range(offset, min(offset + length, capacity))) <= covered
    assert plan.chunk_numbers == chunks_touched(extents, capacity, CHUNK)


def test_extents_beyond_capacity_are_ignored():
    assert chunks_touched([(10 * CHUNK, CHUNK), (9 * CHUNK, 5 * CHUNK)], 10 * CHUNK, CHUNK) == [9]


@given(st.lists(st.tuples(st.integers(0, 64 * CHUNK), st.integers(0, 8 * CHUNK)), max_size=20),
       st.integers(1, 64 * CHUNK))
def test_every_allocated_byte_is_in_a_planned_chunk(extents, capacity):
    planned = set(chunks_touched(extents, capacity, CHUNK))
    for offset, length in extents:
        for byte in range(offset, min(offset + length, capacity), 997):
            assert byte // CHUNK in planned
    assert all(number * CHUNK < capacity for number in planned)
