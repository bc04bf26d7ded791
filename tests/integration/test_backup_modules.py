"""snapshot, metadata_capture and backup_commit through ansible-playbook against the simulator.

What a backup of an encrypted VM must hold to be restorable (the guide's
"Recommendations for VM Home"), read back from the repository and compared
with what the estate built: keyId, the encryption.bundle bytes, the storage
policies, each disk's keyId, and the NVRAM bytes.
"""
import hashlib
import json
import os

from pyVmomi import vim

from estate import ENCRYPTION_POLICY_ID, ENCRYPTION_POLICY_NAME, wait_for_task
from estate_nvram import write_nvram
from playbook import run_playbook
from test_disk_transfer import PASSWORD, open_repository, repository, snapshot_trees  # noqa: F401 pylint: disable=unused-import
from vsphere_env import vmware_env

from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.backup_snapshot import (
    APPLICATION_QUIESCING_REFUSED,
)


def run_tasks(tmp_path, vcsim, tasks, check=False):
    env = vmware_env(vcsim)
    env["VMCRYPT_REPOSITORY_PASSWORD"] = PASSWORD
    for task in tasks:
        task.setdefault("ignore_errors", True)
    return run_playbook(tmp_path, tasks, env=env, check=check)


def snapshot_requests(vcsim):
    path = os.path.join(vcsim.home, "snapshot-requests.jsonl")
    if not os.path.exists(path):  # the launcher writes it at the first snapshot request
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle]


def vm_of(vcsim_si, estate, name):
    return vim.VirtualMachine(estate["vms"][name]["moid"], vcsim_si._stub)


def test_application_quiescing_of_an_encrypted_vm_is_refused_with_the_guides_sentence(
        tmp_path, vcsim, vcsim_si, estate):
    vm = vm_of(vcsim_si, estate, "crypt-vm01")
    before = len(snapshot_requests(vcsim))
    run = run_tasks(tmp_path, vcsim, [
        {"name": "refused", "vmcrypt.backup.snapshot": {"name": "crypt-vm01", "snapshot_name": "nightly",
                                                        "quiesce": "application"}},
        {"name": "fallback", "vmcrypt.backup.snapshot": {"name": "crypt-vm01", "snapshot_name": "nightly",
                                                         "quiesce": "application",
                                                         "quiesce_fallback": "filesystem"}},
        {"name": "again", "vmcrypt.backup.snapshot": {"name": "crypt-vm01", "snapshot_name": "nightly",
                                                      "quiesce": "application", "quiesce_fallback": "filesystem"}},
        {"name": "remove", "vmcrypt.backup.snapshot": {"name": "crypt-vm01", "snapshot_name": "nightly",
                                                       "state": "absent"}},
        {"name": "remove again", "vmcrypt.backup.snapshot": {"name": "crypt-vm01", "snapshot_name": "nightly",
                                                             "state": "absent"}},
    ])
    refused, fallback, again = run["refused"], run["fallback"], run["again"]
    assert refused["_status"] == "failed" and refused["msg"] == APPLICATION_QUIESCING_REFUSED
    assert fallback["_status"] == "ok" and fallback["changed"] is True
    assert fallback["snapshot"]["quiesce"] == "filesystem" and fallback["snapshot"]["created"] is True
    assert fallback["quiesce_warning"] == ("application quiescing is not supported for encrypted VMs: the snapshot "
                                           "is file-system quiesced instead (quiesce_fallback: filesystem)")
    assert [d["key"] for d in fallback["disks"]] == [2000, 2001]
    assert [d["encrypted"] for d in fallback["disks"]] == [True, False]
    # Exactly one snapshot request reached vCenter, and it asked for file-system quiescing only.
    requests = snapshot_requests(vcsim)[before:]
    assert len(requests) == 1
    assert requests[0]["method"] == "CreateSnapshotEx_Task" and requests[0]["memory"] is False
    assert requests[0]["quiesce_spec"]["type"] == "VirtualMachineGuestQuiesceSpec"
    # Idempotent by name; absent removes it once.
    assert again["changed"] is False and again["snapshot"]["moid"] == fallback["snapshot"]["moid"]
    assert run["remove"]["changed"] is True and run["remove again"]["changed"] is False
    assert snapshot_trees(vm) == []


def test_a_plain_vm_may_be_application_quiesced(tmp_path, vcsim, estate):
    before = len(snapshot_requests(vcsim))
    run = run_tasks(tmp_path, vcsim, [
        {"name": "take", "vmcrypt.backup.snapshot": {"name": "plain-vm01", "snapshot_name": "app-consistent",
                                                     "quiesce": "application"}},
        {"name": "drop", "vmcrypt.backup.snapshot": {"name": "plain-vm01", "snapshot_name": "app-consistent",
                                                     "state": "absent"}},
    ])
    assert run["take"]["_status"] == "ok" and run["take"]["snapshot"]["quiesce"] == "application"
    assert run["take"]["quiesce_warning"] is None
    assert [r["name"] for r in snapshot_requests(vcsim)[before:]] == ["app-consistent"]
    assert run["drop"]["changed"] is True


def test_check_mode_creates_no_snapshot(tmp_path, vcsim, vcsim_si, estate):
    before = len(snapshot_requests(vcsim))
    run = run_tasks(tmp_path, vcsim, [{"name": "take", "vmcrypt.backup.snapshot": {
        "name": "crypt-vm01", "snapshot_name": "would-be"}}], check=True)
    assert run["take"]["changed"] is True and run["take"]["snapshot"]["moid"] is None
    assert len(snapshot_requests(vcsim)) == before
    assert snapshot_trees(vm_of(vcsim_si, estate, "crypt-vm01")) == []


def nvram_bytes(name):
    # Like a real NVRAM file: vSphere-encrypted binary, here any bytes that are not all the same.
    return hashlib.sha256(name.encode()).digest() * 300 + b"\x00\xff" * 77


def test_metadata_capture_saves_what_makes_each_vm_restorable(tmp_path, vcsim, estate, repository):
    names = ("crypt-vm01", "plain-vm01", "uefi-vm01")
    nvram = dict((name, nvram_bytes(name)) for name in names)
    paths = [write_nvram(vcsim, estate["vms"][name], nvram[name]) for name in names]
    try:
        run = run_tasks(tmp_path, vcsim, [
            {"name": name, "vmcrypt.backup.metadata_capture": {"name": name, "repository": repository,
                                                               "commit": True}}
            for name in names])
    finally:
        for path in paths:
            open(path, "wb").close()
    repo = open_repository(repository)
    for name in names:
        result, facts = run[name], estate["vms"][name]
        assert result["_status"] == "ok", result.get("msg")
        assert result["committed"] is True
        captured = result["captured"]
        assert captured["key_id"] == facts["key_id"]
        assert captured["encryption_bundle_saved"] is bool(facts["bundle"])
        assert [d["key_id"] for d in captured["disks"]] == [d["key_id"] for d in facts["disks"]]
        assert captured["nvram"] == {"path": facts["nvram_path"], "size": len(nvram[name]),
                                     "sha256": hashlib.sha256(nvram[name]).hexdigest()}
        # The repository holds it all; the result never holds the bundle.
        manifest = repo.read_manifest(result["backup_id"])
        metadata = manifest.metadata
        assert metadata["key_id"] == facts["key_id"]
        assert manifest.secrets.get("encryption.bundle") == facts["bundle"]
        if facts["bundle"]:
            assert facts["bundle"] not in json.dumps(result) and facts["bundle"] not in run.output
        assert b"".join(repo.read_nvram(result["backup_id"])) == nvram[name]
        home_policy = metadata["storage_policies"]["vm_home"]
        assert (home_policy or {}).get("id") == facts["vm_policy_id"]
        for disk in facts["disks"]:
            policy = metadata["storage_policies"]["disks"][str(disk["key"])]
            assert (policy or {}).get("id") == disk["policy_id"]
            if policy:
                assert policy["name"] == ENCRYPTION_POLICY_NAME and policy["id"] == ENCRYPTION_POLICY_ID
        record = metadata["config"]
        assert [d["key_id"] for d in record["disks"]] == [d["key_id"] for d in facts["disks"]]
        assert (record["firmware"], record["vtpm_present"]) == (facts["firmware"], facts["vtpm"])
        assert bool(record["boot_options"].get("efi_secure_boot_enabled")) is facts["secure_boot"]
        assert "encryption.bundle" not in [option["key"] for option in record["extra_config"]]
    uefi_warnings = run["uefi-vm01"]["backup_warnings"]
    assert any("has a vTPM" in warning and "saved" in warning for warning in uefi_warnings)
    assert run["crypt-vm01"]["backup_warnings"] == [] and run["plain-vm01"]["backup_warnings"] == []


def test_an_encrypted_vm_without_bundle_is_captured_with_a_warning(tmp_path, vcsim, vcsim_si, estate, repository):
    vm = vm_of(vcsim_si, estate, "crypt-vm01")
    bundle = estate["vms"]["crypt-vm01"]["bundle"]
    reconfigure = vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="encryption.bundle", value="")]))
    wait_for_task(reconfigure)
    try:
        run = run_tasks(tmp_path, vcsim, [{"name": "capture", "vmcrypt.backup.metadata_capture": {
            "name": "crypt-vm01", "repository": repository, "commit": True}}])
    finally:
        wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key="encryption.bundle", value=bundle)])))
    result = run["capture"]
    assert result["captured"]["encryption_bundle_saved"] is False
    assert result["backup_warnings"][0].startswith("VM crypt-vm01 is encrypted but has no encryption.bundle")
    manifest = open_repository(repository).read_manifest(result["backup_id"])
    assert "encryption.bundle" not in manifest.secrets
    assert any("no encryption.bundle" in warning for warning in manifest.warnings())


def test_capture_continues_a_staged_backup_and_commit_is_idempotent(tmp_path, vcsim, estate, repository):
    repo = open_repository(repository)
    staged = repo.start_backup({"name": "crypt-vm01", "uuid": estate["vms"]["crypt-vm01"]["uuid"],
                                "instance_uuid": estate["vms"]["crypt-vm01"]["instance_uuid"]})
    other = repo.start_backup({"name": "plain-vm01", "uuid": estate["vms"]["plain-vm01"]["uuid"],
                               "instance_uuid": estate["vms"]["plain-vm01"]["instance_uuid"]})
    run = run_tasks(tmp_path, vcsim, [
        {"name": "capture", "vmcrypt.backup.metadata_capture": {"name": "crypt-vm01", "repository": repository,
                                                                "backup_id": staged.backup_id}},
        {"name": "wrong vm", "vmcrypt.backup.metadata_capture": {"name": "crypt-vm01", "repository": repository,
                                                                 "backup_id": other.backup_id}},
        {"name": "commit", "vmcrypt.backup.backup_commit": {"repository": repository, "backup_id": staged.backup_id,
                                                            "warnings": ["snapshot snapshot-9 was left behind"]}},
        {"name": "commit again", "vmcrypt.backup.backup_commit": {"repository": repository,
                                                                  "backup_id": staged.backup_id}},
        {"name": "discard other", "vmcrypt.backup.backup_commit": {"repository": repository,
                                                                   "backup_id": other.backup_id,
                                                                   "state": "discarded"}},
        {"name": "discard committed", "vmcrypt.backup.backup_commit": {"repository": repository,
                                                                       "backup_id": staged.backup_id,
                                                                       "state": "discarded"}},
    ])
    assert run["capture"]["backup_id"] == staged.backup_id and run["capture"]["committed"] is False
    assert run["wrong vm"]["_status"] == "failed"
    assert run["wrong vm"]["msg"] == "staged backup %s is of VM plain-vm01, not of crypt-vm01" % other.backup_id
    assert run["commit"]["changed"] is True and run["commit again"]["changed"] is False
    assert "snapshot snapshot-9 was left behind" in run["commit"]["backup"]["warnings"]
    assert run["discard other"]["changed"] is True and repo.list_staged() == []
    assert run["discard committed"]["_status"] == "failed"
    assert [item.backup_id for item in repo.list_backups()] == [staged.backup_id]


def test_metadata_capture_check_mode_writes_nothing(tmp_path, vcsim, estate, repository):
    run = run_tasks(tmp_path, vcsim, [{"name": "capture", "vmcrypt.backup.metadata_capture": {
        "name": "uefi-vm01", "repository": repository, "commit": True}}], check=True)
    result = run["capture"]
    assert result["changed"] is True and result["backup_id"] is None and result["committed"] is False
    assert result["captured"]["nvram"] == {"path": estate["vms"]["uefi-vm01"]["nvram_path"], "size": None,
                                           "sha256": None}
    repo = open_repository(repository)
    assert repo.list_backups() == [] and repo.list_staged() == []
