"""import_disk from a real repository into an in-memory target: holes, old contents, authentication, retries."""
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.restore import import_disk, stale_ranges

from transfer_helpers import CHUNK, VM


class FlakyTarget(Exception):
    pass


class MemoryTarget:
    """A thin disk in memory: blocks of CHUNK bytes are allocated when written (or held data before).

    ``can_tell=False`` stands for storage whose allocated blocks VDDK cannot list.
    """

    def __init__(self, capacity, old=None, can_tell=True):
        self.image = bytearray(old if old is not None else bytes(capacity))
        self.capacity = capacity
        self.allocated = set(number for number in range(0, capacity, CHUNK) if any(self.image[number:number + CHUNK]))
        self.can_tell = can_tell
        self.writes = []
        self.zero_writes = []
        self.queries = 0
        self.fail_at = {}
        self.fail_queries = 0
        self.opened = 0

    def open(self):
        self.opened += 1
        return self

    transport_mode = "hotadd"

    def allocated_extents(self):
        self.queries += 1
        if self.fail_queries:
            self.fail_queries -= 1
            raise FlakyTarget("connection dropped")
        if not self.can_tell:
            return None
        return [(number, min(CHUNK, self.capacity - number)) for number in sorted(self.allocated)]

    def write(self, offset, data):
        if self.fail_at.get(offset):
            self.fail_at[offset] -= 1
            raise FlakyTarget("connection dropped")
        (self.writes if any(data) else self.zero_writes).append(offset)
        self.image[offset:offset + len(data)] = data
        self.allocated.update(range(offset // CHUNK * CHUNK, offset + len(data), CHUNK))

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


def test_restore_into_a_blank_disk_is_byte_identical_and_holes_stay_unwritten(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image))
    report = import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert bytes(target.image) == bytes(image)
    assert target.queries == 1 and target.zero_writes == []  # nothing allocated, nothing to clear
    assert target.writes == [CHUNK, 20 * CHUNK, 32 * CHUNK]
    assert report["bytes_written"] == 2 * CHUNK + 1000 and report["bytes_zeroed"] == 0
    assert report["bytes_skipped"] == len(image) - report["bytes_written"]
    assert report["target_check"] == "allocated_blocks"
    assert report["transport"] == "hotadd"


def test_restore_into_a_disk_full_of_other_data_leaves_none_of_it(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image), old=os.urandom(len(image)))
    report = import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert bytes(target.image) == bytes(image)
    assert report["bytes_written"] == 2 * CHUNK + 1000
    assert report["bytes_zeroed"] == len(image) - report["bytes_written"] and report["bytes_skipped"] == 0
    assert target.writes == [CHUNK, 20 * CHUNK, 32 * CHUNK]


def test_only_holes_over_the_targets_old_data_are_zeroed(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    old = bytearray(len(image))
    old[3 * CHUNK + 7:3 * CHUNK + 9] = b"\xff\xff"  # one stale block in a hole of the backup
    old[CHUNK:CHUNK + 10] = b"overwritten"[:10]  # under data of the backup: its chunk replaces it
    target = MemoryTarget(len(image), old=old)
    report = import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert bytes(target.image) == bytes(image)
    assert target.zero_writes == [3 * CHUNK]
    assert report["bytes_zeroed"] == CHUNK
    assert report["bytes_skipped"] == len(image) - report["bytes_written"] - CHUNK


def test_a_target_that_cannot_tell_gets_zeros_over_every_hole_and_a_warning(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image), old=os.urandom(len(image)), can_tell=False)
    warnings = []
    report = import_disk(target.open, repo, backup_id, "2000", threads=2, warn=warnings.append)
    assert bytes(target.image) == bytes(image)
    assert report["target_check"] == "unavailable"
    assert report["bytes_zeroed"] == len(image) - report["bytes_written"]
    [warning] = warnings
    assert warning.startswith("disk 2000: the target cannot tell which of its blocks hold data (or reports all of "
                              "them), so every hole of the backup is written with zeros (%d bytes)"
                              % report["bytes_zeroed"])


def test_target_blank_skips_the_question_and_writes_no_zeros(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image))
    report = import_disk(target.open, repo, backup_id, "2000", threads=2, target_blank=True)
    assert bytes(target.image) == bytes(image)
    assert target.queries == 0 and target.zero_writes == []
    assert report["target_check"] == "skipped" and report["bytes_zeroed"] == 0


def test_old_data_past_the_backups_capacity_is_zeroed_too(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    capacity = 40 * CHUNK
    old = bytearray(capacity)
    old[36 * CHUNK:36 * CHUNK + 3] = b"old"
    target = MemoryTarget(capacity, old=old)
    report = import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert bytes(target.image) == bytes(image) + bytes(capacity - len(image))
    assert target.zero_writes == [36 * CHUNK] and report["bytes_zeroed"] == CHUNK
    assert report["bytes_skipped"] == len(image) - report["bytes_written"]


def test_a_lost_connection_while_asking_for_allocated_blocks_reconnects(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    target = MemoryTarget(len(image), old=os.urandom(len(image)))
    target.fail_queries = 1
    report = import_disk(target.open, repo, backup_id, "2000", retryable=(FlakyTarget,), sleep=lambda s: None)
    assert report["retries"] == 1 and target.opened == 2 and target.queries == 2
    assert bytes(target.image) == bytes(image)


@pytest.mark.parametrize("stored, allocated, end, expected", [
    ([], [], 100, []),
    ([], None, 100, [(0, 100)]),
    ([(10, 10)], None, 30, [(0, 10), (20, 10)]),
    ([(10, 10), (40, 10)], [(0, 15), (15, 30)], 60, [(0, 10), (20, 20)]),
    ([(0, 50)], [(20, 10)], 50, []),
    ([(0, 10)], [(5, 100)], 50, [(10, 40)]),  # clipped to the end
    ([], [(30, 10), (0, 10), (5, 10)], 50, [(0, 15), (30, 10)]),  # unsorted, overlapping
])
def test_stale_ranges(stored, allocated, end, expected):
    assert stale_ranges(stored, allocated, end) == expected


def flip_a_byte(repo, chunk_id):
    """One bit of a chunk file's ciphertext changed, as storage rot would."""
    with open(os.path.join(repo.backend.root, chunk_name(chunk_id)), "r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 1]))


def seal_in_place_of(repo, chunk_id, plaintext):
    """Chunk ``chunk_id``'s file replaced by ``plaintext`` sealed under its id: authentic, but not what was stored."""
    sealed = envelope.seal(repo.chunks.keys, envelope.MAGIC_CHUNK, chunk_id, plaintext)
    with open(os.path.join(repo.backend.root, chunk_name(chunk_id)), "wb") as handle:
        handle.write(sealed)


def test_tampered_chunk_is_refused_before_it_is_written(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    flip_a_byte(repo, repo.read_manifest(backup_id).disk_index("2000").entries[20])
    target = MemoryTarget(len(image))
    with pytest.raises(IntegrityError):
        import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert 20 * CHUNK not in target.writes


def test_an_authentic_chunk_of_the_wrong_length_is_refused_before_it_is_written(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    chunk_id = repo.read_manifest(backup_id).disk_index("2000").entries[20]
    seal_in_place_of(repo, chunk_id, bytes(image[20 * CHUNK:21 * CHUNK - 512]))
    target = MemoryTarget(len(image))
    with pytest.raises(IntegrityError) as raised:
        import_disk(target.open, repo, backup_id, "2000", threads=2)
    assert str(raised.value) == "disk 2000: block at offset %d: its chunk has %d bytes, the index says %d" % (
        20 * CHUNK, CHUNK - 512, CHUNK)
    assert 20 * CHUNK not in target.writes


def patched_backup(repo, image, base_id, changes):
    """An incremental of ``image`` whose ``changes`` [(offset, bytes)] are stored as block patches."""
    staged = repo.start_backup(VM, base_backup_id=base_id)
    with staged.open_disk("2000", len(image), base_backup_id=base_id) as writer:
        for offset, data in changes:
            image[offset:offset + len(data)] = data
            writer.write_pieces(offset // CHUNK, [(offset, data)])
    committed = staged.commit()
    assert len(committed.disk_index("2000").patches) == len(changes)
    return committed.backup_id


def test_patched_blocks_restore_byte_identical_over_old_data(repo):
    image = sparse_image()
    base_id = backed_up(repo, image)
    backup_id = patched_backup(repo, image, base_id, [(CHUNK + 100, b"P" * 50), (10 * CHUNK + 7, b"Q" * 9)])
    target = MemoryTarget(len(image), old=os.urandom(len(image)))
    report = import_disk(target.open, repo, backup_id, "2000", threads=2, check_chunk_ids=True)
    assert bytes(target.image) == bytes(image)
    assert target.writes == [CHUNK, 10 * CHUNK, 20 * CHUNK, 32 * CHUNK]  # the patch over a hole is data now
    assert report["bytes_written"] == 3 * CHUNK + 1000


def test_a_tampered_patch_is_refused_before_its_block_is_written(repo):
    image = sparse_image()
    base_id = backed_up(repo, image)
    backup_id = patched_backup(repo, image, base_id, [(20 * CHUNK + 60, b"R" * 30)])
    (_offset, _length, chunk_id), = repo.read_manifest(backup_id).disk_index("2000").patches[20]
    flip_a_byte(repo, chunk_id)
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


def test_check_chunk_ids_refuses_data_a_writer_sealed_under_a_wrong_id(repo):
    image = sparse_image()
    backup_id = backed_up(repo, image)
    entries = repo.read_manifest(backup_id).disk_index("2000").entries
    seal_in_place_of(repo, entries[20], bytes(CHUNK))  # zeros, not chunk 20
    target = MemoryTarget(len(image))
    with pytest.raises(IntegrityError, match="does not hash to its id"):
        import_disk(target.open, repo, backup_id, "2000", threads=2, check_chunk_ids=True)
    assert 20 * CHUNK not in target.writes
    # without the id check the authentic envelope is trusted: that is the trade the option offers
    trusting = MemoryTarget(len(image))
    report = import_disk(trusting.open, repo, backup_id, "2000", threads=2)
    assert report["chunk_ids_checked"] is False and trusting.image[20 * CHUNK:21 * CHUNK] == bytes(CHUNK)


class QueueingTarget(MemoryTarget):
    """Writes are queued, as VDDK WriteAsync queues them, and reach the image only when they complete.

    ``lose_after`` queued writes into an opening, the connection is lost: what is still queued never
    lands and is reported by ``unfinished_writes``, and the error surfaces at the next call.
    """

    def __init__(self, capacity, lose_after, depth=4):
        super(QueueingTarget, self).__init__(capacity)
        self.lose_after = list(lose_after)
        self.depth = depth
        self.queued = []
        self.lost = []
        self.failed = False
        self.queued_this_opening = 0
        self.finished = 0

    def open(self):
        self.queued, self.lost, self.failed, self.queued_this_opening = [], [], False, 0
        return super(QueueingTarget, self).open()

    def write(self, offset, data):
        if self.failed:
            raise FlakyTarget("connection dropped")
        self.queued.append((offset, data))
        self.queued_this_opening += 1
        if self.lose_after and self.queued_this_opening == self.lose_after[0]:
            self.lose_after.pop(0)
            self.lost, self.queued, self.failed = self.queued, [], True
            return
        while len(self.queued) > self.depth:
            super(QueueingTarget, self).write(*self.queued.pop(0))

    def finish_writes(self):
        if self.failed:
            raise FlakyTarget("connection dropped")
        self.finished += 1
        while self.queued:
            super(QueueingTarget, self).write(*self.queued.pop(0))

    def unfinished_writes(self):
        return list(self.lost)


@pytest.mark.parametrize("lose_after", [[10], [10, 3], [32]], ids=["mid-disk", "twice", "at-the-last-write"])
def test_writes_queued_on_a_lost_connection_are_written_again_on_the_next(repo, lose_after):
    image = bytearray(os.urandom(32 * CHUNK))
    backup_id = backed_up(repo, image)
    target = QueueingTarget(len(image), lose_after)
    report = import_disk(target.open, repo, backup_id, "2000", retryable=(FlakyTarget,), sleep=lambda s: None,
                         target_blank=True)
    assert report["retries"] == len(lose_after) and target.opened == len(lose_after) + 1
    assert target.finished == 1 and bytes(target.image) == bytes(image)
