"""The four repository modules against a real repository directory, through ansible-playbook.

The repository password only ever travels in the environment; every test
checks that it (and the encryption.bundle) never shows in the output or the
recorded results.
"""
import json
import os
import time

import pytest

from playbook import run_playbook

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import manifest
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

PASSWORD = "integration-Pa55word-7c1e"
NEW_PASSWORD = "rotated-Pa55word-91ab"
BUNDLE = "vmware:SECRET-ENCRYPTION-BUNDLE-3f9d"
CHUNK = 64 << 10
ENV = {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def _no_secrets(run):
    text = run.output + json.dumps(run.results)
    for secret in (PASSWORD, NEW_PASSWORD, BUNDLE):
        assert secret not in text


def _files(root):
    found = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            found[os.path.relpath(path, root)] = open(path, "rb").read()
    return found


def _task(name, module, **args):
    return {"name": name, "vmcrypt.backup." + module: args, "ignore_errors": True}


def _add_backup(repo, vm, disk, epoch, bundle=True):
    staged = repo.start_backup(vm, backup_id=manifest.new_backup_id(now=epoch))
    staged.put_metadata({"key_id": {"key_id": "kms-key-1", "provider_id": "kms"}},
                        secrets={"encryption.bundle": BUNDLE} if bundle else None)
    staged.put_nvram(b"NVRAM" * 100)
    with staged.open_disk("2000", len(disk), properties={"label": "Hard disk 1"}) as writer:
        writer.write_blocks([(offset, disk[offset:offset + CHUNK]) for offset in range(0, len(disk), CHUNK)])
        writer.set_change_id("52 de ad/%d" % epoch)
    return staged.commit().backup_id


@pytest.fixture
def populated(tmp_path):
    """A repository created by the module, with three backups of two VMs written through the library."""
    path = str(tmp_path / "repo")
    run = run_playbook(tmp_path, [_task("create", "repository", repository=path, chunk_size="64KiB")], env=ENV)
    assert run["create"]["_status"] == "ok", run.output
    repo = Repository.open(path, Credential.from_password(PASSWORD))
    shared = os.urandom(CHUNK)
    day = 86400
    ids = {
        "app_old": _add_backup(repo, {"name": "app01", "uuid": "u-app"}, shared + os.urandom(CHUNK) + bytes(CHUNK),
                               1764460800),
        "app_new": _add_backup(repo, {"name": "app01", "uuid": "u-app"}, shared + os.urandom(CHUNK) + bytes(CHUNK),
                               1764460800 + day),
        "db": _add_backup(repo, {"name": "db01", "uuid": "u-db"}, shared + os.urandom(CHUNK), 1764460800 + 60,
                          bundle=False),
    }
    return path, repo, ids


def test_repository_create_is_idempotent_and_check_mode_honest(tmp_path):
    path = str(tmp_path / "repo")
    dry = run_playbook(tmp_path, [_task("create", "repository", repository=path, chunk_size="64KiB")],
                       env=ENV, check=True)
    assert dry["create"]["changed"] is True and dry["create"]["created"] is True
    assert not os.path.exists(path)
    run = run_playbook(tmp_path, [
        _task("create", "repository", repository=path, chunk_size="64KiB"),
        _task("again", "repository", repository=path),
        _task("other chunk size", "repository", repository=path, chunk_size="1MiB"),
        _task("open", "repository", repository=path, state="opened"),
        _task("open missing", "repository", repository=str(tmp_path / "none"), state="opened"),
    ], env=ENV)
    created = run["create"]
    assert created["_status"] == "ok" and created["changed"] is True and created["created"] is True
    facts = created["repository"]
    assert facts["format_version"] == 2 and facts["chunk_size"] == CHUNK and facts["backup_count"] == 0
    assert facts["cipher"].startswith("AES-256-GCM") and len(facts["key_slots"]) == 1
    assert facts["key_slots"][0]["kind"] == "password" and facts["key_slots"][0]["kdf"]["name"] == "scrypt"
    assert "salt" not in json.dumps(facts)
    assert run["again"]["changed"] is False and run["again"]["repository"]["repository_id"] == facts["repository_id"]
    assert run["other chunk size"]["_status"] == "failed"
    assert "cannot change" in run["other chunk size"]["msg"]
    assert run["open"]["changed"] is False and run["open"]["repository"]["opened_with_slot"] == facts["key_slots"][0]["id"]
    assert run["open missing"]["_status"] == "failed"
    assert run["open missing"]["error_type"] == "RepositoryNotFoundError"
    _no_secrets(run)


def test_wrong_password_fails_clearly_and_touches_nothing(populated, tmp_path):
    path, _repo, _ids = populated
    before = _files(path)
    run = run_playbook(tmp_path, [_task("open", "repository", repository=path),
                                  _task("list", "backup_info", repository=path)],
                       env={"VMCRYPT_REPOSITORY_PASSWORD": "wrong-" + PASSWORD})
    for name in ("open", "list"):
        assert run[name]["_status"] == "failed"
        assert run[name]["msg"] == "the password does not open any key slot of repository %s" % path
        assert run[name]["error_type"] == "WrongKeyError"
    assert _files(path) == before
    _no_secrets(run)


def test_key_slots_add_rotate_remove(populated, tmp_path):
    path, _repo, ids = populated
    key_file = tmp_path / "dr.key"
    key_file.write_bytes(os.urandom(32))
    env = dict(ENV, NEW_REPOSITORY_PASSWORD=NEW_PASSWORD)
    new_password = "{{ lookup('env', 'NEW_REPOSITORY_PASSWORD') }}"
    run = run_playbook(tmp_path, [
        _task("add", "repository", repository=path, add_key_slot={"password": new_password, "label": "ops"}),
        _task("add again", "repository", repository=path, add_key_slot={"password": new_password, "label": "ops"}),
        _task("add key file", "repository", repository=path, add_key_slot={"key_file": str(key_file)}),
    ], env=env)
    assert run["add"]["changed"] is True and run["add"]["key_slot_added"]
    assert run["add again"]["changed"] is False and run["add again"]["key_slot_added"] is None
    assert run["add key file"]["changed"] is True
    dry = run_playbook(tmp_path, [
        _task("remove dry", "repository", repository=path, remove_key_slot="ops")], env=env, check=True)
    assert dry["remove dry"]["changed"] is True
    assert len(dry["remove dry"]["repository"]["key_slots"]) == 3
    # the new password opens the same backups; then the original slot is removed with it
    original = run["add"]["repository"]["opened_with_slot"]
    rotated = run_playbook(tmp_path, [
        _task("list", "backup_info", repository=path),
        _task("remove original", "repository", repository=path, remove_key_slot=original),
        _task("remove original again", "repository", repository=path, remove_key_slot=original),
        _task("remove key file slot", "repository", repository=path,
              remove_key_slot=run["add key file"]["key_slot_added"]),
    ], env={"VMCRYPT_REPOSITORY_PASSWORD": NEW_PASSWORD})
    assert sorted(b["backup_id"] for b in rotated["list"]["backups"]) == sorted(ids.values())
    assert rotated["remove original"]["changed"] is True and rotated["remove original"]["key_slot_removed"] == original
    assert rotated["remove original again"]["changed"] is False
    last = rotated["remove key file slot"]["repository"]["key_slots"]
    assert [slot["label"] for slot in last] == ["ops"]
    final = run_playbook(tmp_path, [
        _task("old password", "backup_info", repository=path),
        _task("remove last", "repository", repository=path, remove_key_slot="ops",
              repository_password="{{ lookup('env', 'NEW_REPOSITORY_PASSWORD') }}"),
    ], env=env)
    assert final["old password"]["error_type"] == "WrongKeyError"
    assert final["remove last"]["_status"] == "failed" and "last one" in final["remove last"]["msg"]
    for each in (run, dry, rotated, final):
        _no_secrets(each)


def test_backup_info_lists_filters_and_summarises_without_secrets(populated, tmp_path):
    path, _repo, ids = populated
    run = run_playbook(tmp_path, [
        _task("all", "backup_info", repository=path, staged=True),
        _task("app01", "backup_info", repository=path, vm="app01"),
        _task("latest", "backup_info", repository=path, latest=True),
        _task("one", "backup_info", repository=path, backup_id=ids["app_new"]),
        _task("db", "backup_info", repository=path, backup_id=ids["db"]),
        _task("unknown", "backup_info", repository=path, backup_id="20200101T000000Z-00000000"),
    ], env=ENV, check=True)
    assert [b["backup_id"] for b in run["all"]["backups"]] == sorted(ids.values())
    assert run["all"]["staged_backups"] == [] and run["all"]["changed"] is False
    assert [b["backup_id"] for b in run["app01"]["backups"]] == [ids["app_old"], ids["app_new"]]
    assert sorted(b["backup_id"] for b in run["latest"]["backups"]) == sorted([ids["app_new"], ids["db"]])
    one = run["one"]["backup"]
    assert one["vm"] == {"name": "app01", "uuid": "u-app"} and one["time"] == "2025-12-01T00:00:00Z"
    assert one["encryption"] == {"vm_key_id": {"key_id": "kms-key-1", "provider_id": "kms"},
                                 "encryption_bundle_saved": True, "repository_cipher": "AES-256-GCM"}
    assert one["secrets_saved"] == ["encryption.bundle"] and one["nvram_saved"] is True and one["warnings"] == []
    disk = one["disks"][0]
    assert disk["key"] == "2000" and disk["capacity"] == 3 * CHUNK and disk["properties"] == {"label": "Hard disk 1"}
    assert disk["stats"]["zero_blocks"] == 1 and disk["stats"]["deduplicated_chunks"] == 1
    assert disk["change_id"] == "52 de ad/1764547200"
    assert any("no encryption.bundle" in w for w in run["db"]["backup"]["warnings"])
    assert run["unknown"]["_status"] == "failed" and run["unknown"]["error_type"] == "BackupNotFoundError"
    _no_secrets(run)


def test_backup_verify_reports_corruption_by_disk_and_offset(populated, tmp_path):
    path, repo, ids = populated
    manifest_path = os.path.join(path, "backups", ids["db"])
    good_manifest = open(manifest_path, "rb").read()
    open(manifest_path, "wb").write(good_manifest[:-1])
    listing = run_playbook(tmp_path, [_task("list", "backup_info", repository=path)], env=ENV)
    assert [b["backup_id"] for b in listing["list"]["backups"]] == [ids["app_old"], ids["app_new"]]
    assert [u["backup_id"] for u in listing["list"]["unreadable_backups"]] == [ids["db"]]
    assert "failed authentication" in listing["list"]["unreadable_backups"][0]["error"]
    open(manifest_path, "wb").write(good_manifest)
    good = run_playbook(tmp_path, [_task("all", "backup_verify", repository=path),
                                   _task("sampled", "backup_verify", repository=path, sample=0.5)], env=ENV)
    assert good["all"]["_status"] == "ok" and good["all"]["ok"] is True
    # 3 disk chunks and the NVRAM's chunk (stored as a chunk since the NVRAM is streamed) are authenticated.
    assert good["all"]["backups_checked"] == 3 and good["all"]["chunks_authenticated"] == 5
    assert good["sampled"]["sampled"] is True and good["sampled"]["chunks_authenticated"] == 3  # ceil(5 / 2)
    index = repo.read_manifest(ids["app_new"]).disk_index("2000")
    chunk_hex = index.entries[1].hex()
    chunk_path = os.path.join(path, "chunks", chunk_hex[:2], chunk_hex)
    data = bytearray(open(chunk_path, "rb").read())
    data[100] ^= 0xFF
    open(chunk_path, "wb").write(bytes(data))
    bad = run_playbook(tmp_path, [
        _task("one", "backup_verify", repository=path, backup_id=ids["app_new"]),
        _task("report only", "backup_verify", repository=path, fail_on_error=False),
    ], env=ENV)
    failed = bad["one"]
    assert failed["_status"] == "failed" and failed["corrupt_count"] == 1 and failed["ok"] is False
    assert "1 corrupt" in failed["msg"]
    assert [(c["backup_id"], c["disk"], c["offset"], c["chunk"]) for c in failed["corrupt"]] == [
        (ids["app_new"], "2000", CHUNK, chunk_hex)]
    assert bad["report only"]["_status"] == "ok" and bad["report only"]["backups_failed"] == [ids["app_new"]]
    _no_secrets(good)
    _no_secrets(bad)


def test_backup_prune_dry_run_then_prune(populated, tmp_path):
    path, repo, ids = populated
    repo.start_backup({"name": "app01", "uuid": "u-app"})  # an abandoned staged backup
    old = time.time() - 2 * 86400  # chunks older than prune's grace period
    for directory, _dirs, files in os.walk(os.path.join(path, "chunks")):
        for name in files:
            os.utime(os.path.join(directory, name), (old, old))
    before = _files(path)
    dry = run_playbook(tmp_path, [_task("prune", "backup_prune", repository=path, keep_last=1,
                                        abandoned_after_hours=0)], env=ENV, check=True)
    plan = dry["prune"]
    assert plan["changed"] is True and plan["dry_run"] is True
    assert [b["backup_id"] for b in plan["removed_backups"]] == [ids["app_old"]]
    assert len(plan["abandoned_staged_backups"]) == 1 and plan["chunks_removed"] == 1
    assert _files(path) == before
    run = run_playbook(tmp_path, [
        _task("prune", "backup_prune", repository=path, keep_last=1, abandoned_after_hours=0),
        _task("prune again", "backup_prune", repository=path, keep_last=1, abandoned_after_hours=0),
        _task("verify", "backup_verify", repository=path),
        _task("bad rule", "backup_prune", repository=path, keep_daily=-1),
    ], env=ENV)
    done = run["prune"]
    assert done["changed"] is True and done["chunks_removed"] == 1 and done["bytes_freed"] > CHUNK
    assert sorted(b["backup_id"] for b in done["kept_backups"]) == sorted([ids["app_new"], ids["db"]])
    assert run["prune again"]["changed"] is False
    assert run["verify"]["ok"] is True and run["verify"]["backups_checked"] == 2
    assert run["bad rule"]["_status"] == "failed"
    assert [m.backup_id for m in repo.list_backups()] == sorted([ids["app_new"], ids["db"]])
    assert repo.list_staged() == []
    _no_secrets(dry)
    _no_secrets(run)


def test_key_file_from_option(tmp_path):
    path = str(tmp_path / "repo")
    key_file = tmp_path / "repo.key"
    key_file.write_bytes(os.urandom(48))
    run = run_playbook(tmp_path, [
        _task("create", "repository", repository=path, repository_key_file=str(key_file), chunk_size="4MiB"),
        _task("info", "backup_info", repository=path, repository_key_file=str(key_file)),
        _task("both", "backup_info", repository=path, repository_key_file=str(key_file),
              repository_password="{{ lookup('env', 'VMCRYPT_REPOSITORY_PASSWORD') }}"),
    ], env=ENV)
    assert run["create"]["repository"]["key_slots"][0]["kind"] == "key_file"
    assert run["create"]["repository"]["chunk_size"] == 4 << 20
    assert run["info"]["backups"] == []
    assert run["both"]["_status"] == "failed" and "mutually exclusive" in run["both"]["msg"]
    _no_secrets(run)


def test_repository_options_set_once_through_the_action_group(tmp_path):
    path = str(tmp_path / "grouped")
    run = run_playbook(tmp_path, [
        {"name": "create", "vmcrypt.backup.repository": {"chunk_size": "64KiB"}},
        {"name": "list", "vmcrypt.backup.backup_info": {}},
    ], env=ENV, module_defaults={"group/vmcrypt.backup.repository": {"repository": path}})
    assert run.returncode == 0, run.output
    assert run["create"]["changed"] is True
    assert run["list"]["backups"] == []
