"""Tampered, swapped, truncated and missing files are detected and located."""
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    MissingDataError,
    UnsupportedFormatError,
)

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, backup, read_back

VM = {"name": "app01", "uuid": "u-1"}


@pytest.fixture
def stored(repo):
    blocks = [os.urandom(CHUNK) for _index in range(4)]
    item = backup(repo, VM, {"2000": b"".join(blocks), "2001": blocks[2]})
    index = repo.read_manifest(item.backup_id).disk_index("2000")
    return repo, item.backup_id, index


def _path(repo, name):
    return os.path.join(repo.location, *name.split("/"))


def _flip(path, position):
    data = bytearray(open(path, "rb").read())
    data[position] ^= 0x01
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("position", [0, 5, 10, 30, -1])
def test_flipped_byte_anywhere_in_a_chunk_is_reported_by_disk_and_offset(stored, position):
    repo, backup_id, index = stored
    _flip(_path(repo, chunk_name(index.entries[1])), position)
    with pytest.raises(IntegrityError):
        read_back(repo, backup_id, "2000")
    report = repo.verify()
    assert not report["ok"] and report["corrupt_count"] == 1 and report["missing_count"] == 0
    assert [(p["backup_id"], p["disk"], p["offset"]) for p in report["corrupt"]] == [(backup_id, "2000", CHUNK)]
    # the corrupt chunk was moved aside: now it is missing, not trusted
    assert report["quarantined"] == [index.entries[1].hex()]
    with pytest.raises(MissingDataError):
        read_back(repo, backup_id, "2000")


def test_shared_chunk_problem_is_reported_for_every_user(stored):
    repo, backup_id, index = stored
    os.remove(_path(repo, chunk_name(index.entries[2])))
    report = repo.verify([backup_id])
    assert sorted((p["disk"], p["offset"]) for p in report["missing"]) == [("2000", 2 * CHUNK), ("2001", 0)]
    with pytest.raises(MissingDataError):
        read_back(repo, backup_id, "2001")


def test_chunk_moved_to_another_id_fails_authentication(stored):
    repo, _backup_id, index = stored
    source, target = _path(repo, chunk_name(index.entries[0])), _path(repo, chunk_name(index.entries[3]))
    os.replace(source, target)
    report = repo.verify()
    assert report["missing_count"] == 1 and report["corrupt_count"] == 1


@pytest.mark.parametrize("keep", [0, 8, 20, 40, CHUNK])
def test_truncated_chunk_is_corrupt(stored, keep):
    repo, _backup_id, index = stored
    path = _path(repo, chunk_name(index.entries[0]))
    data = open(path, "rb").read()
    open(path, "wb").write(data[:keep])
    assert repo.verify()["corrupt_count"] == 1


@pytest.mark.parametrize("position", [0, 4, 12, 40, -1])
def test_tampered_manifest_is_refused(stored, position):
    repo, backup_id, _index = stored
    _flip(_path(repo, "backups/" + backup_id), position)
    # byte 4 is the format version: an unknown version is refused before decryption
    with pytest.raises(UnsupportedFormatError if position == 4 else IntegrityError):
        repo.read_manifest(backup_id)
    report = repo.verify()
    assert report["manifest_errors"][0]["backup_id"] == backup_id and not report["ok"]


def test_truncated_manifest_is_refused(stored):
    repo, backup_id, _index = stored
    path = _path(repo, "backups/" + backup_id)
    open(path, "wb").write(open(path, "rb").read()[:-1])
    with pytest.raises(IntegrityError):
        repo.read_manifest(backup_id)


def test_manifest_renamed_to_another_backup_id_is_refused(stored):
    repo, backup_id, _index = stored
    other = backup(repo, VM, {"2000": os.urandom(CHUNK)}).backup_id
    os.replace(_path(repo, "backups/" + backup_id), _path(repo, "backups/" + other))
    with pytest.raises(IntegrityError):
        repo.read_manifest(other)


def test_sampled_verify_checks_presence_of_all_and_content_of_some(stored):
    repo, _backup_id, index = stored
    os.remove(_path(repo, chunk_name(index.entries[3])))
    report = repo.verify(sample=0.25)
    assert report["sampled"] and report["chunks_authenticated"] == 1 and report["chunks_referenced"] == 4
    assert report["missing_count"] == 1


def test_good_repository_verifies(stored):
    repo, _backup_id, _index = stored
    report = repo.verify()
    assert report["ok"] and report["chunks_authenticated"] == 4 and report["backups_checked"] == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["chunk", "manifest"]), position=st.integers(0, 10 ** 6), mask=st.integers(1, 255),
       cut=st.booleans())
def test_any_flipped_byte_or_cut_is_detected(tmp_path_factory, which, position, mask, cut):
    repo = Repository.create(str(tmp_path_factory.mktemp("r") / "repo"), Credential.from_password("p"),
                             chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    text = (b"compressible " * 400)[:CHUNK]
    item = backup(repo, VM, {"2000": text + os.urandom(CHUNK)})
    if which == "chunk":
        name = chunk_name(repo.read_manifest(item.backup_id).disk_index("2000").entries[position % 2])
    else:
        name = "backups/" + item.backup_id
    path = _path(repo, name)
    data = bytearray(open(path, "rb").read())
    if cut:
        data = data[:position % len(data)]
    else:
        data[position % len(data)] ^= mask
    open(path, "wb").write(bytes(data))
    report = repo.verify(quarantine=False)
    assert not report["ok"]
    with pytest.raises((IntegrityError, UnsupportedFormatError)):
        read_back(repo, item.backup_id, "2000")


def _seal_under(repo, chunk_id, data):
    """What a buggy writer would store: ``data`` sealed (validly) under another chunk's id."""
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope
    sealed = envelope.seal(repo.chunks.keys, envelope.MAGIC_CHUNK, chunk_id, data)
    with open(_path(repo, chunk_name(chunk_id)), "wb") as handle:
        handle.write(sealed)


def test_data_sealed_under_a_wrong_id_passes_authentication_and_fails_the_id_check(stored):
    repo, _backup_id, index = stored
    wrong = repo.chunks.get(index.entries[1])
    _seal_under(repo, index.entries[0], wrong)
    with pytest.raises(IntegrityError, match="does not hash to its id"):
        repo.chunks.get(index.entries[0])
    assert repo.chunks.get(index.entries[0], check_id=False) == wrong  # authentic, but not what the id names
    assert repo.verify()["corrupt_count"] == 1  # verify always recomputes the id
