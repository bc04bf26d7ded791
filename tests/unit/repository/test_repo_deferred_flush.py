"""sync_level: chunk files flushed once per writer, and what a power loss in between leaves (flush.py)."""
import errno
import json
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import backend as backend_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import flush, staging
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackendError,
    IntegrityError,
    RepositoryFullError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, backup, blocks_of, read_back
from .power_loss import OUTCOMES, PowerLossBackend, abandon

VM = {"name": "db01", "uuid": "uuid-db01"}
BLOCKS = 12


@pytest.fixture(params=OUTCOMES)
def outcome(request):
    return request.param


def _repository(tmp_path, credential, outcome="empty"):
    backend = PowerLossBackend(str(tmp_path / "repo"), outcome)
    return Repository.create(backend, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)


def _markers(repo):
    return repo.backend.list(flush.PREFIX)


def _write_unclosed(repo, data):
    """A disk writer that has stored ``data`` and not closed yet."""
    writer = repo.start_backup(VM).open_disk("2000", len(data))
    writer.write_blocks(blocks_of(data), threads=2)
    return writer


def test_filesystem_level_publishes_chunks_unflushed_and_flushes_once_before_the_record(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    assert repo.sync_level == flush.FILESYSTEM  # the default
    data = os.urandom(CHUNK * BLOCKS)
    writer = _write_unclosed(repo, data)
    assert len(repo.backend.unflushed_chunks()) == BLOCKS
    assert len(_markers(repo)) == 1  # written, flushed, before the first unflushed chunk
    syncs = repo.backend.syncs
    writer.close()
    assert repo.backend.syncs == syncs + 1 and repo.backend.unflushed_chunks() == []
    assert _markers(repo) == []
    manifest = writer.staged.commit()
    assert repo.backend.power_loss() == []  # the commit left nothing unflushed
    assert repo.verify()["ok"] and read_back(repo, manifest.backup_id, "2000") == data


def test_file_level_flushes_every_chunk_file_and_owes_no_marker(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    repo.sync_level = flush.FILE
    writer = _write_unclosed(repo, os.urandom(CHUNK * BLOCKS))
    assert repo.backend.unflushed_chunks() == [] and _markers(repo) == []
    writer.close()
    assert repo.backend.syncs >= 1  # a chunk it found may be another writer's, unflushed


def test_power_loss_mid_backup_never_leaves_a_backup_naming_a_lost_chunk(tmp_path, credential, outcome):
    repo = _repository(tmp_path, credential, outcome)
    earlier = backup(repo, {"name": "app01", "uuid": "uuid-app01"}, {"2000": os.urandom(CHUNK * 4)})
    data = os.urandom(CHUNK * BLOCKS)
    abandon(_write_unclosed(repo, data))
    lost = repo.backend.power_loss()
    assert len([name for name in lost if name.startswith("chunks/")]) == BLOCKS
    assert len(_markers(repo)) == 1  # the marker was flushed: it survives
    # the same data again: without recovery every block would be "found" and the backup would name lost chunks
    again = backup(repo, VM, {"2000": data})
    assert _markers(repo) == []
    assert again.document["stats"]["new_chunks"] == BLOCKS
    assert repo.verify()["ok"]
    assert read_back(repo, again.backup_id, "2000") == data
    assert read_back(repo, earlier.backup_id, "2000")
    quarantined = len(repo.backend.list("quarantine"))
    assert quarantined == (0 if outcome == "missing" else BLOCKS)
    assert any("stopped without flushing" in text and "%d did not authenticate" % quarantined in text
               for text in again.warnings())
    assert any("stopped without flushing" in text for text in repo.warnings)


def test_the_double_does_lose_unflushed_chunks(tmp_path, credential, monkeypatch):
    """Control: with recovery switched off, the same steps commit a backup that names lost chunks."""
    repo = _repository(tmp_path, credential)
    data = os.urandom(CHUNK * BLOCKS)
    abandon(_write_unclosed(repo, data))
    repo.backend.power_loss()
    monkeypatch.setattr(staging.flush, "recover", lambda repository: flush.Recovery())
    again = backup(repo, VM, {"2000": data})
    assert again.document["stats"]["new_chunks"] == 0
    assert not repo.verify()["ok"]


def test_the_nvram_is_flushed_before_its_part(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    staged = repo.start_backup(VM)
    staged.put_nvram(os.urandom(CHUNK * 2 + 100))
    assert repo.backend.unflushed_chunks() == [] and _markers(repo) == []
    repo.backend.power_loss()
    manifest = staged.commit()
    assert repo.verify()["ok"] and len(manifest.document["nvram"]["chunks"]) == 3


def test_a_live_writers_marker_is_left_alone(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    first = _write_unclosed(repo, os.urandom(CHUNK * BLOCKS))
    marker = _markers(repo)
    recovery = repo.start_backup({"name": "app01", "uuid": "uuid-app01"}).recover_unflushed()
    assert recovery.markers == 0 and recovery.checked == 0 and _markers(repo) == marker
    first.close()
    assert _markers(repo) == []


def test_a_marker_of_an_earlier_boot_is_orphaned_even_while_its_pid_and_lock_look_alive(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    data = os.urandom(CHUNK * BLOCKS)
    first = _write_unclosed(repo, data)
    name = _markers(repo)[0]
    marker = json.loads(repo.backend.get(name).decode("utf-8"))
    marker["boot_id"] = "an-earlier-boot"
    repo.backend.put(name, json.dumps(marker).encode("utf-8"))
    recovery = repo.start_backup({"name": "app01", "uuid": "uuid-app01"}).recover_unflushed()
    assert recovery.markers == 1 and recovery.checked == BLOCKS and recovery.quarantined == []
    assert _markers(repo) == []
    first.close()  # its own marker is gone already: closing still works
    assert read_back(repo, first.staged.commit().backup_id, "2000") == data


def test_an_unreadable_lock_does_not_keep_a_marker_alive(tmp_path, credential):
    """A power loss can leave the (unflushed) lock file empty: its writer is dead, whatever its mtime says."""
    repo = _repository(tmp_path, credential)
    abandon(_write_unclosed(repo, os.urandom(CHUNK * BLOCKS)))
    lock_name = json.loads(repo.backend.get(_markers(repo)[0]).decode("utf-8"))["lock"]
    repo.backend.put(lock_name, b"")
    recovery = repo.start_backup({"name": "app01", "uuid": "uuid-app01"}).recover_unflushed()
    assert recovery.markers == 1 and _markers(repo) == []


def test_a_chunk_moved_to_quarantine_while_the_backup_ran_is_not_recorded(tmp_path, credential):
    repo = _repository(tmp_path, credential)
    data = os.urandom(CHUNK * 3)
    writer = _write_unclosed(repo, data)
    chunk_id = writer.index.entries[1]
    repo.chunks.quarantine(chunk_id)  # a backup_verify found it damaged, say
    with pytest.raises(IntegrityError, match="moved to quarantine .* run it again"):
        writer.close()
    assert "disk-2000" not in writer.staged.parts() and _markers(repo) == []
    assert repo.backend.list("locks") == []
    # stored again since: nothing to refuse
    again = _write_unclosed(repo, data)
    again.close()
    assert "disk-2000" in again.staged.parts()


@pytest.mark.parametrize("code, error", [(errno.EIO, BackendError), (errno.ENOSPC, RepositoryFullError)])
def test_a_failed_flush_records_nothing_and_leaves_the_marker_for_the_next_backup(tmp_path, credential, monkeypatch,
                                                                                  code, error):
    repo = _repository(tmp_path, credential)
    data = os.urandom(CHUNK * BLOCKS)
    writer = _write_unclosed(repo, data)

    def failing_syncfs(fd):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(backend_module, "_syncfs", failing_syncfs)
    with pytest.raises(error) as raised:
        writer.close()
    assert "\n" not in str(raised.value) and "flushing" in str(raised.value)
    assert "disk-2000" not in writer.staged.parts()
    assert len(_markers(repo)) == 1 and repo.backend.list("locks") == []
    monkeypatch.undo()
    repo.backend.power_loss()
    again = backup(repo, VM, {"2000": data})
    assert _markers(repo) == [] and repo.verify()["ok"]
    assert read_back(repo, again.backup_id, "2000") == data


def test_syncfs_is_called_on_the_repository_file_system(tmp_path, monkeypatch):
    calls = []

    class Libc(object):
        def syncfs(self, fd):
            calls.append(os.fstat(fd).st_dev)
            return 0
    monkeypatch.setattr(backend_module, "_libc", Libc)
    backend_module.LocalBackend(str(tmp_path)).sync()
    assert calls == [os.stat(str(tmp_path)).st_dev]


def test_without_syncfs_in_the_c_library_sync_flushes_every_file_system(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(backend_module, "_libc", lambda: None)
    monkeypatch.setattr(backend_module.os, "sync", lambda: calls.append("sync"))
    backend_module.LocalBackend(str(tmp_path)).sync()
    assert calls == ["sync"]


def test_the_real_syncfs_runs_here(tmp_path):
    backend_module.LocalBackend(str(tmp_path)).sync()  # raises BackendError if the C call fails


def test_unknown_sync_level_is_refused():
    with pytest.raises(InvalidArgumentError, match="filesystem, file"):
        flush.check_sync_level("none")


def test_an_unflushed_chunk_file_has_its_writeback_started_and_a_flushed_one_is_fsynced(tmp_path, monkeypatch):
    started = []
    fsynced = []
    real_fsync = os.fsync
    monkeypatch.setattr(backend_module, "_sync_file_range",
                        lambda: lambda fd, offset, length, flags: started.append((offset, length, flags)) or 0)
    monkeypatch.setattr(backend_module.os, "fsync", lambda fd: fsynced.append(fd) or real_fsync(fd))
    backend = backend_module.LocalBackend(str(tmp_path))
    backend.put("chunks/ab/unflushed", b"x" * 100, durable=False)
    assert started == [(0, 0, backend_module.SYNC_FILE_RANGE_WRITE)] and fsynced == []
    backend.put("backups/flushed", b"y" * 100)
    assert len(started) == 1 and len(fsynced) == 2  # the file, then its folder


def test_the_real_sync_file_range_is_found_here():
    assert backend_module._sync_file_range() is not None  # Linux's C library has it since glibc 2.6
