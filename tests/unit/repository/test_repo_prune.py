"""Prune: retention per VM, dry run, garbage collection of shared and orphan chunks."""
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import manifest
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError

from .helpers import CHUNK, files_of, read_back

APP = {"name": "app01", "uuid": "u-app"}
DB = {"name": "db01", "uuid": "u-db"}


def _backup_at(repo, vm, data, epoch):
    staged = repo.start_backup(vm, backup_id=manifest.new_backup_id(now=epoch))
    with staged.open_disk("2000", len(data)) as writer:
        writer.write(0, data)
    return staged.commit()


@pytest.fixture
def history(repo):
    shared = os.urandom(CHUNK)
    day = 86400
    start = 1764460800  # 2025-11-30T00:00:00Z
    apps = [_backup_at(repo, APP, shared + os.urandom(CHUNK), start + n * day) for n in range(5)]
    dbs = [_backup_at(repo, DB, shared + os.urandom(CHUNK), start + n * day + 60) for n in range(2)]
    return repo, apps, dbs


def test_dry_run_reports_and_changes_nothing(history, repo_path):
    repo, apps, dbs = history
    before = files_of(repo_path)
    report = repo.prune(dry_run=True, keep_last=2, grace=0)
    assert sorted(b["backup_id"] for b in report["removed_backups"]) == sorted(a.backup_id for a in apps[:3])
    assert report["chunks_removed"] == 3 and report["bytes_freed"] > 3 * CHUNK
    assert files_of(repo_path) == before


def test_prune_applies_rules_per_vm_and_keeps_shared_chunks(history):
    repo, apps, dbs = history
    report = repo.prune(keep_last=2, grace=0)
    remaining = [m.backup_id for m in repo.list_backups()]
    assert remaining == sorted([a.backup_id for a in apps[3:]] + [d.backup_id for d in dbs])
    assert report["chunks_removed"] == 3
    assert len(repo.chunks.list_ids()) == 1 + 2 + 2  # shared + 2 app + 2 db
    for backup_id in remaining:
        assert len(read_back(repo, backup_id, "2000")) == 2 * CHUNK
    assert repo.verify()["ok"]
    assert repo.prune(keep_last=2, grace=0)["chunks_removed"] == 0  # idempotent


def test_no_rule_only_collects_garbage(history):
    repo, apps, dbs = history
    repo.chunks.put(os.urandom(CHUNK))  # an orphan
    report = repo.prune(grace=0)
    assert report["removed_backups"] == [] and report["chunks_removed"] == 1


def test_staged_backups_keep_their_chunks_until_abandoned(repo):
    staged = repo.start_backup(APP)
    with staged.open_disk("2000", CHUNK) as writer:
        writer.write(0, os.urandom(CHUNK))
    assert repo.prune(grace=0)["chunks_removed"] == 0
    item = staged.commit()
    assert read_back(repo, item.backup_id, "2000")


def test_unreadable_manifest_stops_the_prune(history):
    repo, apps, _dbs = history
    path = os.path.join(repo.location, "backups", apps[0].backup_id)
    open(path, "r+b").write(b"XXXX")
    chunks = repo.chunks.list_ids()
    with pytest.raises(IntegrityError, match="prune refused"):
        repo.prune(keep_last=1, grace=0)
    assert repo.chunks.list_ids() == chunks


def test_staging_left_by_a_commit_that_stopped_after_the_manifest_is_cleaned(repo):
    staged = repo.start_backup(APP)
    with staged.open_disk("2000", CHUNK) as writer:
        writer.write(0, os.urandom(CHUNK))
    item = staged.commit()
    # put a staged part back, as if the process died before removing the staging folder
    staged._write_part("vm", {"backup_id": item.backup_id, "vm": APP, "started": "x", "base_backup_id": None,
                              "tags": {}})
    report = repo.prune(grace=0)
    assert [s["backup_id"] for s in report["abandoned_staged_backups"]] == [item.backup_id]
    assert report["chunks_removed"] == 0 and repo.list_staged() == []
    assert read_back(repo, item.backup_id, "2000")
