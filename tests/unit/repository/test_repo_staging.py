"""Staged backups: invisible until committed, steps in separate processes, failures leave nothing visible."""
import errno
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import backend as backend_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackupNotFoundError,
    RepositoryFullError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, blocks_of, read_back

VM = {"name": "app01", "uuid": "u-1"}


def test_staged_backup_is_invisible_until_commit(repo, repo_path, credential):
    staged = repo.start_backup(VM)
    data = os.urandom(CHUNK * 3)
    # a later step, as another process would: reopen the repository and the staged backup
    step = Repository.open(repo_path, credential).staged_backup(staged.backup_id)
    with step.open_disk("2000", len(data)) as writer:
        writer.write_blocks(blocks_of(data))
    assert repo.list_backups() == []
    with pytest.raises(BackupNotFoundError):
        repo.read_manifest(staged.backup_id)
    assert [s["backup_id"] for s in repo.list_staged()] == [staged.backup_id]
    item = Repository.open(repo_path, credential).staged_backup(staged.backup_id).commit()
    assert [m.backup_id for m in repo.list_backups()] == [item.backup_id]
    assert read_back(repo, item.backup_id, "2000") == data
    assert repo.list_staged() == []
    assert not os.path.exists(os.path.join(repo_path, "staging", staged.backup_id))


def test_failed_disk_step_records_nothing_and_a_retry_replaces_it(repo):
    staged = repo.start_backup(VM)
    data = os.urandom(CHUNK * 4)
    with pytest.raises(RuntimeError):
        with staged.open_disk("2000", len(data)) as writer:
            writer.write(0, data[:CHUNK])
            raise RuntimeError("VDDK read failed")
    assert "disk-2000" not in staged.parts()
    for _attempt in range(2):
        with staged.open_disk("2000", len(data)) as writer:
            writer.write_blocks(blocks_of(data))
    item = staged.commit()
    assert item.disk_keys == ["2000"] and read_back(repo, item.backup_id, "2000") == data


def test_commit_is_idempotent_after_a_crash_between_manifest_and_cleanup(repo):
    staged = repo.start_backup(VM)
    staged.put_nvram(b"nv")
    first_parts = {part: staged._read_part(part) for part in staged.parts()}
    item = staged.commit()
    again = staged.commit()  # a second commit of the same id finds the manifest
    assert again.document == item.document
    for part, document in first_parts.items():  # as if the first commit stopped before cleaning up
        staged._write_part(part, document)
    third = staged.commit()
    assert third.document == repo.read_manifest(item.backup_id).document == item.document
    assert staged.parts() == [] and [m.backup_id for m in repo.list_backups()] == [item.backup_id]


def test_unknown_staged_backup(repo):
    with pytest.raises(BackupNotFoundError):
        repo.staged_backup("20200101T000000Z-00000000")


def test_write_blocks_propagates_worker_errors(repo):
    staged = repo.start_backup(VM)
    with pytest.raises(Exception, match="not aligned"):
        with staged.open_disk("2000", CHUNK * 4) as writer:
            writer.write_blocks([(0, bytes(CHUNK)), (1, b"x" * CHUNK)])
    assert "disk-2000" not in staged.parts()


def test_full_disk_is_a_clear_error_and_leaves_nothing_half_written(repo, repo_path, monkeypatch):
    staged = repo.start_backup(VM)
    real_write = os.write
    calls = {"n": 0}

    def write(fd, data):
        calls["n"] += 1
        if calls["n"] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    writer = staged.open_disk("2000", CHUNK * 8)
    monkeypatch.setattr(backend_module.os, "write", write)
    with pytest.raises(RepositoryFullError) as raised:
        with writer:
            writer.write_blocks(blocks_of(os.urandom(CHUNK * 8)), threads=1)
    monkeypatch.setattr(backend_module.os, "write", real_write)
    assert "no space left" in str(raised.value)
    leftovers = [name for _d, _s, files in os.walk(repo_path) for name in files if name.startswith(".tmp-")]
    assert leftovers == []
    assert "disk-2000" not in staged.parts()
    # the first write was the writer's unflushed marker (flush.py), then one chunk; the failed writer
    # flushed what it had written and removed its marker
    assert len(repo.chunks.list_ids()) == 1
    assert repo.backend.list("unflushed") == []
    assert repo.verify()["ok"]
