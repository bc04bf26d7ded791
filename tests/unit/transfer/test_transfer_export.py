"""export_disk into a real repository from an in-memory source: sparse, incremental, resume, failure."""
import json
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.export import export_disk
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.plan import full_plan, incremental_plan
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile

from transfer_helpers import CHUNK, VM


class FlakyConnection(Exception):
    """Stands for a VDDK error such as a dropped NBD connection."""


class MemoryDisk:
    """An image in memory; can fail reads to exercise the resume path."""

    def __init__(self, image):
        self.image = image
        self.fail_at = {}  # offset -> failures left
        self.opened = 0
        self.reads = []

    def open(self):
        self.opened += 1
        return _Handle(self)


class _Handle:
    transport_mode = "nbdssl"

    def __init__(self, disk):
        self.disk = disk
        self.closed = False

    def read(self, offset, length):
        assert not self.closed
        if self.disk.fail_at.get(offset):
            self.disk.fail_at[offset] -= 1
            raise FlakyConnection("connection dropped")
        self.disk.reads.append(offset)
        return bytes(self.disk.image[offset:offset + length])

    def close(self):
        self.closed = True


def image_with(size, regions):
    image = bytearray(size)
    for offset, data in regions:
        image[offset:offset + len(data)] = data
    return image


def export(repo, disk, plan, base=None, **kwargs):
    staged = repo.start_backup(VM, base_backup_id=base)
    with staged.open_disk("2000", plan.capacity, base_backup_id=base) as writer:
        report = export_disk(disk.open, writer, plan, retryable=(FlakyConnection,), sleep=lambda seconds: None,
                             **kwargs)
    return staged.commit(), report


def read_back(repo, backup_id, capacity):
    image = bytearray(capacity)
    for offset, data in repo.read_disk(backup_id, "2000"):
        image[offset:offset + len(data)] = data
    return bytes(image)


def test_sparse_export_reads_only_allocated_chunks_and_round_trips(repo):
    capacity = 64 * CHUNK
    image = image_with(capacity, [(3 * CHUNK + 10, os.urandom(1000)), (40 * CHUNK, b"text " * 30000)])
    plan = full_plan(capacity, CHUNK, [(3 * CHUNK + 10, 1000), (40 * CHUNK, 150000)])
    disk = MemoryDisk(image)
    manifest, report = export(repo, disk, plan)
    assert sorted(disk.reads) == [3 * CHUNK, 40 * CHUNK, 41 * CHUNK, 42 * CHUNK]
    assert report["bytes_read"] == 4 * CHUNK and report["bytes_skipped"] == 60 * CHUNK
    assert report["transport"] == "nbdssl" and report["retries"] == 0
    assert report["new_chunks"] == 4
    assert read_back(repo, manifest.backup_id, capacity) == bytes(image)


def test_read_buffers_handed_on_as_bytearrays_are_stored_and_zero_ones_are_holes(repo):
    class BufferDisk(MemoryDisk):  # as VDDK's endpoint: a new bytearray per read, not copied into bytes
        def open(self):
            handle = MemoryDisk.open(self)
            handle.read = lambda offset, length: bytearray(self.image[offset:offset + length])
            return handle
    capacity = 8 * CHUNK
    image = image_with(capacity, [(CHUNK, os.urandom(CHUNK)), (3 * CHUNK, b"text " * 1000)])
    manifest, report = export(repo, BufferDisk(image), full_plan(capacity, CHUNK))
    assert report["new_chunks"] == 2 and report["zero_chunks"] == 6
    assert read_back(repo, manifest.backup_id, capacity) == bytes(image)


def test_incremental_reads_changed_chunks_and_keeps_the_rest_from_the_base(repo):
    capacity = 16 * CHUNK
    image = image_with(capacity, [(0, os.urandom(16 * CHUNK))])
    first, _report = export(repo, MemoryDisk(image), full_plan(capacity, CHUNK))
    image[5 * CHUNK + 3:5 * CHUNK + 9] = b"CHANGE"
    disk = MemoryDisk(image)
    second, report = export(repo, disk, incremental_plan(capacity, CHUNK, [(5 * CHUNK + 3, 6)]),
                            base=first.backup_id)
    assert disk.reads == [5 * CHUNK]
    assert report["incremental"] is True and report["chunks_from_base"] == 16
    assert report["new_chunks"] == 1
    assert read_back(repo, second.backup_id, capacity) == bytes(image)


def test_incremental_reads_only_the_changed_pieces_and_takes_the_rest_of_their_chunks_from_the_base(repo):
    capacity = 16 * CHUNK
    image = image_with(capacity, [(0, os.urandom(8 * CHUNK)), (12 * CHUNK, b"log line " * 1000)])
    first, _report = export(repo, MemoryDisk(image), full_plan(capacity, CHUNK, [(0, 8 * CHUNK), (12 * CHUNK, 9000)]))
    changed = [(2 * CHUNK + 4096, 1024), (2 * CHUNK + 8192, 512), (CHUNK * 5 - 512, 1024), (10 * CHUNK + 512, 512)]
    for offset, length in changed:  # inside data, across a chunk boundary, inside a hole of the base
        image[offset:offset + length] = os.urandom(length)
    disk = MemoryDisk(image)
    second, report = export(repo, disk, incremental_plan(capacity, CHUNK, changed), base=first.backup_id)
    assert sorted(disk.reads) == sorted(offset for offset, _length in changed[:2]) + [CHUNK * 5 - 512, CHUNK * 5,
                                                                                      10 * CHUNK + 512]
    assert report["bytes_read"] == sum(length for _offset, length in changed)
    assert report["bytes_skipped"] == capacity - report["bytes_read"]
    # five pieces stored as patches of four blocks: only the changed bytes are stored
    assert report["new_chunks"] == 5 and report["patched_chunks"] == 4 and report["chunks_from_base"] == 9
    index = second.disk_index("2000")
    assert sorted(index.patches) == [2, 4, 5, 10] and 10 not in index.entries
    assert sum(length for patch_list in index.patches.values() for _offset, length, _id in patch_list) == 3072
    assert read_back(repo, second.backup_id, capacity) == bytes(image)
    assert read_back(repo, first.backup_id, capacity) != bytes(image)


def test_a_tampered_base_chunk_fails_the_incremental_that_rewrites_its_block_instead_of_being_copied(repo):
    capacity = 4 * CHUNK
    image = image_with(capacity, [(0, os.urandom(capacity))])
    first, _report = export(repo, MemoryDisk(image), full_plan(capacity, CHUNK))
    chunk_id = first.disk_index("2000").entries[1]
    name = os.path.join(repo.location, "chunks", chunk_id.hex()[:2], chunk_id.hex())
    with open(name, "r+b") as handle:
        handle.seek(100)
        handle.write(b"X")
    # more than half the block changed: too much for a patch, so the block is rewritten from its base
    changed = (CHUNK + 512, CHUNK * 3 // 4)
    image[changed[0]:changed[0] + changed[1]] = os.urandom(changed[1])
    staged = repo.start_backup(VM, base_backup_id=first.backup_id)
    with pytest.raises(IntegrityError):
        with staged.open_disk("2000", capacity, base_backup_id=first.backup_id) as writer:
            export_disk(MemoryDisk(image).open, writer, incremental_plan(capacity, CHUNK, [changed]))
    assert "disk-2000" not in " ".join(staged.parts())


def test_dropped_connection_resumes_at_the_failed_chunk(repo):
    capacity = 8 * CHUNK
    image = image_with(capacity, [(0, os.urandom(capacity))])
    disk = MemoryDisk(image)
    disk.fail_at = {3 * CHUNK: 2}
    manifest, report = export(repo, disk, full_plan(capacity, CHUNK), max_retries=3)
    assert report["retries"] == 2
    assert disk.opened == 3
    assert disk.reads == [offset * CHUNK for offset in range(8)]  # nothing read twice, nothing skipped
    assert read_back(repo, manifest.backup_id, capacity) == bytes(image)


def test_too_many_failures_name_disk_and_offset_and_record_nothing(repo):
    capacity = 8 * CHUNK
    disk = MemoryDisk(image_with(capacity, [(0, os.urandom(capacity))]))
    disk.fail_at = {6 * CHUNK: 10}
    staged = repo.start_backup(VM)
    with pytest.raises(TransferError) as raised:
        with staged.open_disk("2000", capacity) as writer:
            export_disk(disk.open, writer, full_plan(capacity, CHUNK), retryable=(FlakyConnection,),
                        max_retries=2, sleep=lambda seconds: None)
    assert str(raised.value) == ("disk 2000: reading at offset %d failed after 2 retries: connection dropped"
                                 % (6 * CHUNK))
    assert "disk-2000" not in " ".join(staged.parts())


def test_other_errors_are_not_retried(repo):
    class Broken:
        def read(self, offset, length):
            raise ValueError("bug")

        def close(self):
            pass
    staged = repo.start_backup(VM)
    with pytest.raises(ValueError):
        with staged.open_disk("2000", CHUNK) as writer:
            export_disk(Broken, writer, full_plan(CHUNK, CHUNK), retryable=(FlakyConnection,))


def test_progress_file_tracks_bytes_and_ends_done(repo, tmp_path):
    capacity = 8 * CHUNK
    path = str(tmp_path / "progress.json")
    ticks = iter(range(1000))
    progress = ProgressFile(path, interval=0.0, clock=lambda: next(ticks) / 1000.0)  # 1 ms a tick
    export(repo, MemoryDisk(image_with(capacity, [(0, os.urandom(capacity))])), full_plan(capacity, CHUNK),
           progress=progress)
    with open(path) as handle:
        [state] = json.load(handle)["disks"]
    assert state["disk"] == "2000" and state["state"] == "done"
    assert state["bytes_done"] == state["bytes_total"] == capacity and state["percent"] == 100.0
    assert state["eta_seconds"] == 0 and state["rate_mib_s"] > 0


def test_a_disk_error_that_no_reconnect_cures_names_disk_and_offset(repo):
    from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError

    class BadSector:
        def read(self, offset, length):
            raise VmcryptError("VixDiskLib_Read: disk I/O error")

        def close(self):
            pass
    staged = repo.start_backup(VM)
    with pytest.raises(TransferError) as raised:
        with staged.open_disk("2000", CHUNK) as writer:
            export_disk(BadSector, writer, full_plan(CHUNK, CHUNK), retryable=(FlakyConnection,))
    assert str(raised.value) == "disk 2000: reading at offset 0 failed: VixDiskLib_Read: disk I/O error"
