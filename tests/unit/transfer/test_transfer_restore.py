"""import_disk from a real repository into an in-memory target: holes, authentication, retries."""
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.restore import import_disk

from transfer_helpers import CHUNK, VM


class FlakyTarget(Exception):
    pass


class MemoryTarget:
    def __init__(self, capacity):
        self.image = bytearray(capacity)
        self.writes = []
        self.fail_at = {}
        self.opened = 0

    def open(self):
        self.opened += 1
        return self

    transport_mode = "hotadd"

    def write(self, offset, data):
        if self.fail_at.get(offset):
            self.fail_at[offset] -= 1
            raise FlakyTarget("connection dropped")
        self.writes.append(offset)
        self.image[offset:offset + len(data)] = data

    def close(self):
        pass


def backed_up(repo, image):
    staged = repo.start_backup(VM)
    with staged.open_disk("2000", len(image)) as writer:
        writer.write_blocks((offset, bytes(image[offset:offset + CHUNK])) for offset in range(0, len(image), CHUNK))
    return staged.commit().backup_id


def sparse_image():
    image = bytearray(32 * CHUNK + 1000)  # a short last chunk too
    image[CHUNK:2 * CHUNK] = os.urandom(CHUNK)
    image[20 * CHUNK + 5:20 * CHUNK + 50] = b"x" * 45
    image[32 * CHUNK:] = os.urandom(1000)
    return image


def test_restore_is_byte_identical_and_holes_stay_unwritten(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image))
    report = import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert bytes(target.image) == bytes(image)
    assert target.writes == [CHUNK, 20 * CHUNK, 32 * CHUNK]
    assert report["bytes_written"] == 2 * CHUNK + 1000
    assert report["bytes_skipped"] == len(image) - report["bytes_written"]
    assert report["transport"] == "hotadd"


def test_tampered_chunk_is_refused_before_it_is_written(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    chunk_id = repo.read_manifest(backup_id).disk_index("2000").entries[20]
    with open(os.path.join(repo.backend.root, chunk_name(chunk_id)), "r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 1]))
    target = MemoryTarget(len(image))
    with pytest.raises(IntegrityError):
        import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert 20 * CHUNK not in target.writes


def test_write_error_reopens_and_writes_the_chunk_again(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image))
    target.fail_at = {20 * CHUNK: 1}
    report = import_disk(target.open, repo, backup_id, "2000", retryable=(FlakyTarget,), sleep=lambda s: None)
    assert report["retries"] == 1 and target.opened == 2
    assert bytes(target.image) == bytes(image)


def test_too_many_write_errors_name_disk_and_offset(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image))
    target.fail_at = {CHUNK: 9}
    with pytest.raises(TransferError) as raised:
        import_disk(target.open, repo, backup_id, "2000", retryable=(FlakyTarget,), max_retries=2,
                    sleep=lambda s: None)
    assert str(raised.value) == "disk 2000: writing at offset %d failed after 2 retries: connection dropped" % CHUNK
