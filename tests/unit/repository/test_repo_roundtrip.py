"""Round trips, deduplication, holes and incrementals through the facade."""
import hashlib
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import BackupNotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, backup, read_back

VM = {"name": "app01", "uuid": "4211-aaaa", "instance_uuid": "5011-bbbb"}

# A disk is a list of blocks, each random, text, zeros or a repeat of an earlier block.
block_kind = st.sampled_from(["random", "text", "zero", "repeat"])


def build_disk(kinds, tail, seed):
    rng = __import__("random").Random(seed)
    blocks = []
    for kind in kinds:
        if kind == "random" or (kind == "repeat" and not blocks):
            blocks.append(bytes(rng.getrandbits(8) for _index in range(CHUNK)))
        elif kind == "text":
            blocks.append((b"line %d of the log\n" % rng.randint(0, 9)) * (CHUNK // 18) + b"x" * (CHUNK % 18))
        elif kind == "zero":
            blocks.append(bytes(CHUNK))
        else:
            blocks.append(rng.choice(blocks))
    return b"".join(blocks) + bytes(rng.getrandbits(8) for _index in range(tail))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(block_kind, min_size=1, max_size=12), tail=st.integers(0, CHUNK - 1), seed=st.integers(0, 99))
def test_any_disk_reads_back_byte_for_byte(repo, kinds, tail, seed):
    data = build_disk(kinds, tail, seed)
    item = backup(repo, VM, {"2000": data})
    assert read_back(repo, item.backup_id, "2000") == data
    index = repo.read_manifest(item.backup_id).disk_index("2000")
    zero_blocks = [n for n in range(index.block_count)
                   if not any(data[n * CHUNK:(n + 1) * CHUNK])]
    assert not set(zero_blocks) & set(index.entries)


def test_zero_chunks_are_not_stored(repo):
    item = backup(repo, VM, {"2000": bytes(CHUNK * 50)})
    assert repo.read_manifest(item.backup_id).disk_index("2000").entries == {}
    assert repo.chunks.list_ids() == []
    assert item.summary()["stats"]["zero_blocks"] == 50
    assert read_back(repo, item.backup_id, "2000") == bytes(CHUNK * 50)


def test_equal_data_is_stored_once_across_disks_vms_and_backups(repo):
    block = os.urandom(CHUNK)
    first = backup(repo, VM, {"2000": block * 3, "2001": block})
    assert len(repo.chunks.list_ids()) == 1
    assert first.summary()["stats"]["new_chunks"] == 1
    assert first.summary()["stats"]["deduplicated_chunks"] == 3
    other = backup(repo, {"name": "db01", "uuid": "4211-cccc"}, {"2000": block + os.urandom(CHUNK)})
    assert len(repo.chunks.list_ids()) == 2
    assert other.summary()["stats"]["new_chunks"] == 1


def test_chunk_ids_are_keyed_so_two_repositories_name_equal_data_differently(tmp_path, credential):
    block = os.urandom(CHUNK)
    one = Repository.create(str(tmp_path / "one"), credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    two = Repository.create(str(tmp_path / "two"), credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    import hashlib
    assert one.keys.chunk_id(block) != two.keys.chunk_id(block)
    assert hashlib.sha256(block).digest() not in (one.keys.chunk_id(block), two.keys.chunk_id(block))


def test_compressible_chunks_are_stored_smaller_and_random_ones_not_inflated(repo):
    text = (b"The quick brown fox jumps over the lazy dog. " * 100)[:CHUNK]
    noise = os.urandom(CHUNK)
    item = backup(repo, VM, {"2000": text + noise})
    sizes = sorted(os.path.getsize(os.path.join(repo.location, "chunks", cid.hex()[:2], cid.hex()))
                   for cid in repo.chunks.list_ids())
    assert sizes[0] < CHUNK // 4          # text compressed
    assert sizes[1] == CHUNK + 52         # random kept as is: header + salt + nonce + tag only
    assert read_back(repo, item.backup_id, "2000") == text + noise


def test_incremental_reuses_the_base_index_and_records_change_ids(repo):
    data = bytearray(os.urandom(CHUNK * 8))
    full = backup(repo, VM, {"2000": bytes(data)}, change_ids={"2000": "52 aa/1"})
    assert repo.read_manifest(full.backup_id).change_id("2000") == "52 aa/1"
    data[CHUNK * 3:CHUNK * 4] = os.urandom(CHUNK)
    data[CHUNK * 5:CHUNK * 6] = bytes(CHUNK)
    staged = repo.start_backup(VM, base_backup_id=full.backup_id)
    with staged.open_disk("2000", len(data), base_backup_id=full.backup_id) as writer:
        writer.write(CHUNK * 3, bytes(data[CHUNK * 3:CHUNK * 4]))
        writer.write(CHUNK * 5, bytes(data[CHUNK * 5:CHUNK * 6]))
        writer.set_change_id("52 aa/2")
    incremental = staged.commit()
    assert read_back(repo, incremental.backup_id, "2000") == bytes(data)
    stats = incremental.summary()["disks"][0]["stats"]
    assert stats["blocks_written"] == 2 and stats["new_chunks"] == 1 and stats["blocks_from_base"] == 8
    assert incremental.summary()["base_backup_id"] == full.backup_id
    assert repo.read_manifest(incremental.backup_id).change_id("2000") == "52 aa/2"


def test_incremental_refuses_a_resized_disk(repo):
    full = backup(repo, VM, {"2000": os.urandom(CHUNK * 2)})
    staged = repo.start_backup(VM)
    with pytest.raises(InvalidArgumentError, match="capacity"):
        staged.open_disk("2000", CHUNK * 3, base_backup_id=full.backup_id)


@pytest.mark.parametrize("offset,size", [(1, CHUNK), (0, CHUNK + 1), (CHUNK * 2, CHUNK * 2), (-CHUNK, CHUNK)])
def test_writer_refuses_unaligned_or_oversized_blocks(repo, offset, size):
    staged = repo.start_backup(VM)
    with staged.open_disk("2000", CHUNK * 3) as writer:
        with pytest.raises(InvalidArgumentError):
            writer.write(offset, bytes(size))


def test_backup_ids_are_unique_and_sort_by_time(repo):
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import manifest
    ids = [manifest.new_backup_id(now=1700000000 + step) for step in (0, 0, 5, 3600, 86400 * 40)]
    assert len(set(ids)) == len(ids)
    assert [manifest.backup_time(backup_id) for backup_id in sorted(ids)] == sorted(manifest.backup_time(i) for i in ids)
    assert sorted(ids)[-1].startswith("20231224T221320Z-")


def test_a_streamed_nvram_is_stored_chunk_by_chunk_and_kept_by_prune(repo):
    staged = repo.start_backup(VM)
    blocks = [os.urandom(1000) for _index in range(3 * CHUNK // 1000 + 1)]  # more than three chunks, odd sizes
    saved = staged.put_nvram(iter(blocks))
    assert saved == {"size": sum(map(len, blocks)), "sha256": hashlib.sha256(b"".join(blocks)).hexdigest()}
    staged.commit()
    manifest = repo.read_manifest(staged.backup_id)
    assert [length for length, _id in manifest.nvram_chunks()] == [CHUNK] * 3 + [saved["size"] - 3 * CHUNK]
    assert set(chunk_id for _length, chunk_id in manifest.nvram_chunks()) <= manifest.chunk_ids()
    repo.prune(keep_last=1)
    assert b"".join(repo.read_nvram(staged.backup_id)) == b"".join(blocks)


def test_metadata_secrets_and_nvram_round_trip_but_summary_has_no_secret(repo):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)}, metadata={"key_id": {"key_id": "k-1", "provider_id": "kms"}},
                  secrets={"encryption.bundle": "vmware:SECRETBUNDLE"}, nvram=b"\x00NVRAM\xff" * 100)
    again = repo.read_manifest(item.backup_id)
    assert again.secrets == {"encryption.bundle": "vmware:SECRETBUNDLE"}
    assert b"".join(repo.read_nvram(item.backup_id)) == b"\x00NVRAM\xff" * 100
    assert again.nvram == {"size": 700, "sha256": hashlib.sha256(b"\x00NVRAM\xff" * 100).hexdigest()}
    assert again.metadata["key_id"]["key_id"] == "k-1"
    summary = again.summary()
    assert "SECRETBUNDLE" not in repr(summary)
    assert summary["encryption"]["encryption_bundle_saved"] is True
    assert summary["nvram_saved"] is True and summary["warnings"] == []


def test_summary_warns_when_bundle_or_nvram_missing(repo):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)}, metadata={"key_id": {"key_id": "k-1"}})
    warnings = " ".join(repo.read_manifest(item.backup_id).summary()["warnings"])
    assert "no encryption.bundle" in warnings and "no NVRAM" in warnings


def test_list_backups_filters_by_vm_and_latest(repo):
    a1 = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    b1 = backup(repo, {"name": "db01", "uuid": "4211-cccc"}, {"2000": os.urandom(CHUNK)})
    a2 = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    assert [m.backup_id for m in repo.list_backups()] == sorted([a1.backup_id, b1.backup_id, a2.backup_id])
    assert [m.backup_id for m in repo.list_backups(vm="app01")] == sorted([a1.backup_id, a2.backup_id])
    assert [m.backup_id for m in repo.list_backups(vm="5011-bbbb", latest=True)] == [max(a1.backup_id, a2.backup_id)]
    assert {m.backup_id for m in repo.list_backups(latest=True)} == {max(a1.backup_id, a2.backup_id), b1.backup_id}
    with pytest.raises(BackupNotFoundError):
        repo.read_manifest("20200101T000000Z-00000000")


def test_key_file_repository(tmp_path):
    key_file = tmp_path / "repo.key"
    key_file.write_bytes(os.urandom(32))
    path = str(tmp_path / "repo")
    Repository.create(path, Credential.from_key_file(str(key_file)), chunk_size=CHUNK)
    repo = Repository.open(path, Credential.from_key_file(str(key_file)))
    item = backup(repo, VM, {"2000": b"k" * CHUNK})
    assert read_back(repo, item.backup_id, "2000") == b"k" * CHUNK
