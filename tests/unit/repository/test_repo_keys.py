"""Key slots: open, wrong key, add and remove without touching data."""
import json
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    KeySlotError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    UnsupportedFormatError,
    WrongKeyError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, PASSWORD, backup, files_of, read_back

VM = {"name": "app01", "uuid": "u-1"}


def test_wrong_password_is_a_clear_error_and_nothing_is_modified(repo, repo_path):
    backup(repo, VM, {"2000": os.urandom(CHUNK * 2)})
    before = files_of(repo_path)
    with pytest.raises(WrongKeyError) as raised:
        Repository.open(repo_path, Credential.from_password("not the password"))
    assert str(raised.value) == "the password does not open any key slot of repository %s" % repo_path
    assert "not the password" not in str(raised.value)
    assert files_of(repo_path) == before


def test_wrong_key_file_and_wrong_kind_are_refused(repo, repo_path, tmp_path):
    key_file = tmp_path / "other.key"
    key_file.write_bytes(os.urandom(64))
    with pytest.raises(WrongKeyError, match="key file"):
        Repository.open(repo_path, Credential.from_key_file(str(key_file)))


def test_missing_repository_and_create_twice(repo, repo_path, credential, tmp_path):
    with pytest.raises(RepositoryNotFoundError):
        Repository.open(str(tmp_path / "nothing"), credential)
    with pytest.raises(RepositoryExistsError, match="already exists"):
        Repository.create(repo_path, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    with pytest.raises(RepositoryExistsError, match="not empty"):
        Repository.create(str(busy), credential, chunk_size=CHUNK)


def test_added_slots_open_the_same_data_and_removing_slots_keeps_it(repo, repo_path, tmp_path):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK * 3)})
    chunks_before = {k: v for k, v in files_of(repo_path).items() if k.startswith("chunks")}
    key_file = tmp_path / "repo.key"
    key_file.write_bytes(os.urandom(32))
    second = repo.add_slot(Credential.from_password("second password"), label="ops", scrypt_params=FAST_SCRYPT)
    third = repo.add_slot(Credential.from_key_file(str(key_file)), label="dr-site")
    assert {slot["label"] for slot in repo.key_slots()} == {"", "ops", "dr-site"}
    for credential in (Credential.from_password(PASSWORD), Credential.from_password("second password"),
                       Credential.from_key_file(str(key_file))):
        opened = Repository.open(repo_path, credential)
        assert read_back(opened, item.backup_id, "2000") == read_back(repo, item.backup_id, "2000")
    assert repo.find_slot(Credential.from_password("second password")) == second
    assert repo.resolve_slot("dr-site") == third
    repo.remove_slot(repo.slot_id)
    with pytest.raises(WrongKeyError):
        Repository.open(repo_path, Credential.from_password(PASSWORD))
    assert Repository.open(repo_path, Credential.from_password("second password")).slot_id == second
    repo.remove_slot(second)
    with pytest.raises(KeySlotError, match="last one"):
        repo.remove_slot(third)
    assert {k: v for k, v in files_of(repo_path).items() if k.startswith("chunks")} == chunks_before


def test_slot_report_never_shows_salt_or_wrapped_keys(repo):
    text = json.dumps(repo.key_slots())
    assert "salt" not in text and "wrapped" not in text
    assert repo.key_slots()[0]["kdf"] == {"name": "scrypt", "n": 1024, "r": 8, "p": 1}


def test_default_kdf_is_memory_hard(tmp_path, credential):
    repo = Repository.create(str(tmp_path / "r"), credential, chunk_size=CHUNK)
    kdf = repo.key_slots()[0]["kdf"]
    assert kdf["name"] == "scrypt" and 128 * kdf["r"] * kdf["n"] >= 64 << 20


def _slot_path(repo_path):
    keys = os.path.join(repo_path, "keys")
    return os.path.join(keys, os.listdir(keys)[0])


def test_tampered_slot_does_not_open(repo, repo_path, credential):
    path = _slot_path(repo_path)
    slot = json.load(open(path))
    slot["id"] = "deadbeef"          # the slot id is bound into the wrapping
    os.rename(path, os.path.join(os.path.dirname(path), "deadbeef"))
    json.dump(slot, open(os.path.join(os.path.dirname(path), "deadbeef"), "w"))
    with pytest.raises(WrongKeyError):
        Repository.open(repo_path, credential)


def test_truncated_slot_is_an_integrity_error(repo, repo_path, credential):
    path = _slot_path(repo_path)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) // 2])
    with pytest.raises(IntegrityError):
        Repository.open(repo_path, credential)


def test_modified_config_is_detected(repo, repo_path, credential):
    path = os.path.join(repo_path, "config")
    config = json.load(open(path))
    config["chunk_size"] = CHUNK * 2
    json.dump(config, open(path, "w"))
    with pytest.raises(IntegrityError, match="config"):
        Repository.open(repo_path, credential)


def test_future_format_version_is_refused_before_reading(repo, repo_path, credential):
    path = os.path.join(repo_path, "config")
    config = json.load(open(path))
    config["version"] = 3
    json.dump(config, open(path, "w"))
    with pytest.raises(UnsupportedFormatError, match="format version 3; this collection reads version 2 only"):
        Repository.open(repo_path, credential)


def test_a_version_1_repository_is_refused_in_one_line_that_says_what_to_do(repo, repo_path, credential):
    path = os.path.join(repo_path, "config")
    config = json.load(open(path))
    config["version"] = 1
    json.dump(config, open(path, "w"))
    with pytest.raises(UnsupportedFormatError) as raised:
        Repository.open(repo_path, credential)
    message = str(raised.value)
    assert "\n" not in message and "format version 1" in message and "reads version 2" in message
    assert "create a new repository" in message


def test_credential_never_prints_its_secret():
    assert PASSWORD not in repr(Credential.from_password(PASSWORD))


def test_creation_interrupted_before_its_config_can_be_redone(tmp_path, credential, monkeypatch):
    path = str(tmp_path / "repo")
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import backend as backend_module
    real_put = backend_module.LocalBackend.put

    def put(self, name, data, overwrite=True, durable=True, uncached=False):
        if name == "config":
            raise KeyboardInterrupt()  # the process stops between the key slot and the config
        return real_put(self, name, data, overwrite, durable, uncached)

    monkeypatch.setattr(backend_module.LocalBackend, "put", put)
    with pytest.raises(KeyboardInterrupt):
        Repository.create(path, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    monkeypatch.setattr(backend_module.LocalBackend, "put", real_put)
    assert os.listdir(path) == ["keys"]
    with pytest.raises(RepositoryNotFoundError):
        Repository.open(path, credential)
    repo = Repository.create(path, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    assert len(repo.key_slots()) == 1
    assert Repository.open(path, credential).repository_id == repo.repository_id
