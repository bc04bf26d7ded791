"""Block patches: an incremental's changed pieces stored as chunks of their own, read back, verified, pruned."""
import os
import random

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import manifest, patches
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    UnsupportedFormatError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.staging import ChangedPieces

from .helpers import CHUNK, backup, read_back

VM = {"name": "patched-vm", "uuid": "4211-patch"}


def incremental(repo, base, image, changes, backup_id=None):
    """Apply ``changes`` [(disk offset, bytes)] to ``image`` and back up only them, as an incremental's plan does."""
    by_block = {}
    for offset, data in changes:
        image[offset:offset + len(data)] = data
        assert offset // CHUNK == (offset + len(data) - 1) // CHUNK, "a test change must stay inside one block"
        by_block.setdefault(offset // CHUNK, []).append((offset, bytes(data)))
    staged = repo.start_backup(VM, base_backup_id=base, backup_id=backup_id)
    with staged.open_disk("2000", len(image), base_backup_id=base) as writer:
        stats = writer.write_blocks([(number * CHUNK, ChangedPieces(number, pieces))
                                     for number, pieces in sorted(by_block.items())], threads=2)
    return staged.commit(), stats


@pytest.fixture
def full(repo):
    image = bytearray(os.urandom(6 * CHUNK)) + bytearray(2 * CHUNK)  # six blocks of data, two holes
    return backup(repo, VM, {"2000": bytes(image)}), image


def test_a_small_change_is_stored_as_a_patch_and_reads_back(repo, full):
    first, image = full
    second, stats = incremental(repo, first.backup_id, image, [(CHUNK + 100, b"A" * 300), (7 * CHUNK + 8, b"B" * 8)])
    assert stats["patched_blocks"] == 2 and stats["new_chunks"] == 2 and stats["logical_bytes"] == 308
    index = second.disk_index("2000")
    assert index.entries == first.disk_index("2000").entries  # the base's chunks, untouched
    assert [(offset, length) for offset, length, _id in index.patches[1]] == [(100, 300)]
    assert [(offset, length) for offset, length, _id in index.patches[7]] == [(8, 8)]  # over a hole of the base
    assert second.document["version"] == 3 and first.document["version"] == 2
    assert read_back(repo, second.backup_id, "2000") == bytes(image)
    assert index.stored_bytes() == 7 * CHUNK
    patch_ids = set(chunk_id for patch_list in index.patches.values() for _offset, _length, chunk_id in patch_list)
    assert second.chunk_ids() == first.chunk_ids() | patch_ids


def test_a_long_chain_stays_correct_and_bounded(repo, full):
    first, image = full
    generator = random.Random(13)
    base, rewrites = first.backup_id, 0
    for _round in range(40):
        changes = []
        for number in generator.sample(range(8), 3):
            length = generator.choice((16, 200, 512, 1500))
            offset = number * CHUNK + generator.randrange(CHUNK - length)
            changes.append((offset, os.urandom(length)))
        committed, stats = incremental(repo, base, image, changes)
        rewrites += stats["blocks_written"] - stats["patched_blocks"]
        index = committed.disk_index("2000")
        for number, patch_list in index.patches.items():
            assert len(patch_list) <= patches.MAX_PATCHES
            assert sum(length for _offset, length, _id in patch_list) <= patches.MAX_PATCHED_SHARE * CHUNK
        assert read_back(repo, committed.backup_id, "2000") == bytes(image)
        base = committed.backup_id
    assert rewrites > 0  # blocks did reach a limit and were rewritten whole, patches folded in


def test_a_change_covering_an_older_patch_replaces_it(repo, full):
    first, image = full
    second, _stats = incremental(repo, first.backup_id, image, [(2 * CHUNK + 64, b"old" * 10)])
    third, _stats = incremental(repo, second.backup_id, image, [(2 * CHUNK, b"new" * 100)])
    assert [(offset, length) for offset, length, _id in third.disk_index("2000").patches[2]] == [(0, 300)]
    assert read_back(repo, third.backup_id, "2000") == bytes(image)


def test_a_change_over_half_a_block_rewrites_the_block(repo, full):
    first, image = full
    second, stats = incremental(repo, first.backup_id, image, [(3 * CHUNK + 10, os.urandom(CHUNK // 2 + 1))])
    index = second.disk_index("2000")
    assert stats["patched_blocks"] == 0 and 3 not in index.patches
    assert index.entries[3] != first.disk_index("2000").entries[3]
    assert read_back(repo, second.backup_id, "2000") == bytes(image)


def test_zeros_written_over_a_patched_block_make_a_hole(repo, full):
    first, image = full
    second, _stats = incremental(repo, first.backup_id, image, [(6 * CHUNK + 5, b"C" * 20)])
    staged = repo.start_backup(VM, base_backup_id=second.backup_id)
    with staged.open_disk("2000", len(image), base_backup_id=second.backup_id) as writer:
        writer.write(6 * CHUNK, bytes(CHUNK))
    third = staged.commit()
    image[6 * CHUNK:7 * CHUNK] = bytes(CHUNK)
    assert not third.disk_index("2000").holds_data(6) and third.document["version"] == 2
    assert read_back(repo, third.backup_id, "2000") == bytes(image)


def test_a_corrupt_patch_chunk_is_reported_by_verify_and_refused_by_reads(repo, full):
    first, image = full
    second, _stats = incremental(repo, first.backup_id, image, [(4 * CHUNK + 256, os.urandom(512))])
    (offset, _length, chunk_id), = second.disk_index("2000").patches[4]
    with open(os.path.join(repo.backend.root, chunk_name(chunk_id)), "r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 1]))
    report = repo.verify(quarantine=False)
    assert report["backups_failed"] == [second.backup_id]
    assert [(item["disk"], item["offset"]) for item in report["corrupt"]] == [("2000", 4 * CHUNK + offset)]
    with pytest.raises(IntegrityError):
        read_back(repo, second.backup_id, "2000")


def test_prune_keeps_the_base_chunks_a_patched_block_still_reads(repo, full):
    first, image = full
    later = manifest.new_backup_id(now=first.time + 60)  # ids sort by the second they were made in
    second, _stats = incremental(repo, first.backup_id, image, [(0, b"D" * 100)], backup_id=later)
    report = repo.prune(keep_last=1, grace=0)
    assert [item["backup_id"] for item in report["removed_backups"]] == [first.backup_id]
    assert report["chunks_removed"] == 0  # every chunk of the first backup is still read through the second
    assert read_back(repo, second.backup_id, "2000") == bytes(image)
    assert repo.verify()["ok"]


def test_index_patches_round_trip_and_bounds_are_checked():
    patch_lists = {0: [(10, 20, b"b" * 32), (0, 5, b"c" * 32)], 3: [(0, 100, b"d" * 32)]}
    index = manifest.DiskIndex(3 * CHUNK + 100, CHUNK, {0: b"a" * 32}, patch_lists)
    text = index.encode_patches()
    decoded = manifest.DiskIndex.decode(index.capacity, CHUNK, index.encode(), "disk", patches_text=text)
    assert decoded.patches == index.patches and decoded.entries == index.entries
    assert manifest.DiskIndex(CHUNK, CHUNK).encode_patches() is None
    beyond = manifest.DiskIndex(3 * CHUNK + 100, CHUNK, patches={3: [(50, 51, b"e" * 32)]})  # the short last block
    with pytest.raises(IntegrityError, match="patches block 3 beyond its bounds"):
        manifest.DiskIndex.decode(beyond.capacity, CHUNK, "", "disk", patches_text=beyond.encode_patches())
    with pytest.raises(IntegrityError, match="truncated patch list"):
        manifest.DiskIndex.decode(beyond.capacity, CHUNK, "", "disk", patches_text=text[:-8])


def test_a_manifest_of_an_unknown_version_is_refused_in_one_line():
    with pytest.raises(UnsupportedFormatError) as raised:
        manifest.Manifest({"version": 4, "backup_id": "20261201T000000Z-00000000"})
    assert str(raised.value) == "backup manifest has version 4; this code reads versions 2 and 3"


def test_read_block_checks_every_length():
    chunks = {b"base": b"x" * 8, b"short": b"y"}
    get = chunks.__getitem__
    assert patches.read_block(get, b"base", 8, [(2, 1, b"short")], "block") == b"xxyxxxxx"
    assert patches.read_block(get, None, 4, [(3, 1, b"short")], "block") == b"\0\0\0y"
    with pytest.raises(IntegrityError, match="block: a patch at 2 has 1 bytes, the index says 2"):
        patches.read_block(get, b"base", 8, [(2, 2, b"short")], "block")
    with pytest.raises(IntegrityError, match="block: its chunk has 8 bytes, the index says 9"):
        patches.read_block(get, b"base", 9, [], "block")
