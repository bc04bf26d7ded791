"""vm_restore through ansible-playbook against the simulator: the VM of a backup, per key mode.

Backups are made as the backup role makes them (test_restore_plan.capture_backup: metadata_capture with a known
NVRAM, a chunk in each disk, a commit). Every VM a test creates is removed afterwards: the simulator is the whole
session's.
"""
import json

import pytest
from pyVmomi import vim

from estate import ENCRYPTION_POLICY_ID, vms_named, wait_for_task
from estate_nvram import read_local
from test_disk_transfer import open_repository, repository  # noqa: F401 pylint: disable=unused-import
from test_restore_plan import capture_backup, nvram_of, run_tasks

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.vm_config import capture_storage_policies
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.vm_restore import MASK

SOURCE = "crypt-vm01"


@pytest.fixture
def restored(vcsim_si):
    """Names of the VMs a test restores; every VM so named (or named as a replaced one) is removed after the test."""
    names = []
    yield names
    for name in names:
        for vm in vms_named(vcsim_si, name) + vms_named(vcsim_si, name + " (replaced"):
            wait_for_task(vm.Destroy_Task())  # restored VMs are never powered on


def restore_task(title, repository_path, backup_id, name, **options):
    return {"name": title, "vmcrypt.backup.vm_restore": dict(repository=repository_path, backup_id=backup_id,
                                                             name=name, **options)}


def _key(crypto_key_id):
    if crypto_key_id is None:
        return None
    return {"key_id": crypto_key_id.keyId, "provider_id": crypto_key_id.providerId.id}


def _positions(vm):
    return sorted((d.key, d.controllerKey, d.unitNumber, d.capacityInKB) for d in vm.config.hardware.device
                  if isinstance(d, vim.vm.device.VirtualDisk))


def _policies(vcsim, vm):
    with VsphereClient(hostname=vcsim.host, username=vcsim.username, password=vcsim.password, port=vcsim.port,
                       validate_certs=False) as client:
        disks = sorted(d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
        policies, _warnings = capture_storage_policies(client, vim.VirtualMachine(vm._moId, client.stub), disks)
    return policies


def _bundle_of(vm):
    return [o.value for o in vm.config.extraConfig or [] if o.key == "encryption.bundle"]


def test_original_key_restores_key_bundle_policies_disks_and_nvram(tmp_path, vcsim, vcsim_si, estate, repository,
                                                                   restored):
    facts = estate["vms"][SOURCE]
    repo = open_repository(repository)
    backup_id = capture_backup(vcsim, repo, estate, SOURCE)
    restored.append("restored-original")
    check = run_tasks(tmp_path / "check", vcsim, [restore_task("restore", repository, backup_id, "restored-original")],
                      check=True)["restore"]
    assert check["_status"] == "ok" and check["changed"] is False, check.get("msg")
    assert vms_named(vcsim_si, "restored-original") == []
    assert check["vm"]["moid"] is None and check["nvram"] == {
        "action": "restore", "uploaded": False, "size": len(nvram_of(SOURCE)), "datastore_path": None, "sha256": None}
    spec = check["config_spec"]
    assert spec["crypto"] == {"_type": "CryptoSpecEncrypt", "cryptoKeyId": {
        "keyId": facts["key_id"]["key_id"], "providerId": {"id": facts["key_id"]["provider_id"]}}}
    assert {"key": "encryption.bundle", "value": MASK} in spec["extraConfig"]
    assert spec["vmProfile"] == [{"_type": "VirtualMachineDefinedProfileSpec", "profileId": ENCRYPTION_POLICY_ID}]

    run = run_tasks(tmp_path, vcsim, [restore_task("restore", repository, backup_id, "restored-original",
                                                   cluster=estate_cluster(vcsim_si))])
    result = run["restore"]
    assert result["_status"] == "ok" and result["changed"] is True, result.get("msg")
    assert facts["bundle"] not in run.output and facts["bundle"] not in json.dumps(result)
    assert dict((k, v) for k, v in result["config_spec"].items()) == spec
    [vm] = vms_named(vcsim_si, "restored-original")
    original = vim.VirtualMachine(facts["moid"], vcsim_si._stub)
    assert result["vm"]["moid"] == vm._moId and result["key_mode"] == "original"
    # The guide: keyId and encryption.bundle in the new ConfigSpec, the same key as the original VM. govmomi 0.56's
    # CreateVM_Task drops a given keyId; the launcher (tests/vcsim/create_vm_crypto.go) applies the keyId vCenter
    # would, so the restored VM is encrypted with exactly the original key.
    assert _key(vm.config.keyId) == facts["key_id"]
    assert _bundle_of(vm) == [facts["bundle"]]
    # Disks blank at the same keys, controller positions and capacities; the encrypted one under its saved key.
    assert _positions(vm) == _positions(original)
    disks = dict((d.key, d) for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
    assert _key(disks[2000].backing.keyId) == facts["disks"][0]["key_id"]
    assert disks[2001].backing.keyId is None
    controller = [d for d in vm.config.hardware.device if d.key == 1000][0]
    assert isinstance(controller, vim.vm.device.ParaVirtualSCSIController) and controller.busNumber == 0
    # Policies as planned: the saved encryption policy for the VM home and the encrypted disk.
    policies = _policies(vcsim, vm)
    assert policies["vm_home"]["id"] == ENCRYPTION_POLICY_ID
    assert policies["disks"][2000]["id"] == ENCRYPTION_POLICY_ID and policies["disks"][2001] is None
    # The NVRAM bytes on the datastore are the saved ones.
    assert result["nvram"]["uploaded"] is True and result["nvram"]["size"] == len(nvram_of(SOURCE))
    assert read_local(vcsim, result["nvram"]["datastore_path"]) == nvram_of(SOURCE)
    assert [f.name for f in vm.layoutEx.file if f.type == "nvram"] == [result["nvram"]["datastore_path"]]


def estate_cluster(si):
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ClusterComputeResource], True)
    try:
        return sorted(c.name for c in view.view)[0]
    finally:
        view.Destroy()


def test_a_taken_name_is_an_error_and_overwrite_replaces_the_vm(tmp_path, vcsim, vcsim_si, estate, repository,
                                                                restored):
    backup_id = capture_backup(vcsim, open_repository(repository), estate, SOURCE, disks=False)
    restored.append("restored-twice")
    run = run_tasks(tmp_path, vcsim, [
        restore_task("first", repository, backup_id, "restored-twice"),
        restore_task("taken", repository, backup_id, "restored-twice"),
        dict(restore_task("overwrite, check mode", repository, backup_id, "restored-twice", overwrite=True),
             check_mode=True),
        restore_task("overwrite", repository, backup_id, "restored-twice", overwrite=True, key_mode="new"),
    ])
    first = run["first"]
    assert first["_status"] == "ok", first.get("msg")
    taken = run["taken"]
    assert taken["_status"] == "failed" and taken["error_type"] == "VmExistsError"
    assert taken["msg"] == ("a VM named 'restored-twice' exists in datacenter 'DC0' (%s): choose another name, or "
                            "overwrite: true to replace it" % first["vm"]["moid"])
    would = run["overwrite, check mode"]
    assert would["_status"] == "ok" and would["replaced_vm"] == first["vm"]["moid"] and would["changed"] is False
    overwrite = run["overwrite"]
    assert overwrite["_status"] == "ok", overwrite.get("msg")
    assert overwrite["replaced_vm"] == first["vm"]["moid"]
    [vm] = vms_named(vcsim_si, "restored-twice")
    assert vm._moId == overwrite["vm"]["moid"] != first["vm"]["moid"]
    assert vms_named(vcsim_si, "restored-twice (replaced by restore %s)" % backup_id) == []
    assert _bundle_of(vm) == []


def test_check_mode_of_a_taken_name_fails_as_the_run_does(tmp_path, vcsim, estate, repository):
    backup_id = capture_backup(vcsim, open_repository(repository), estate, SOURCE, disks=False)
    task = restore_task("taken", repository, backup_id, "plain-vm01")
    check = run_tasks(tmp_path / "check", vcsim, [dict(task)], check=True)["taken"]
    assert check["_status"] == "failed" and check["error_type"] == "VmExistsError"
    ok = run_tasks(tmp_path, vcsim, [restore_task("overwrite", repository, backup_id, "plain-vm01", overwrite=True)],
                   check=True)["overwrite"]
    assert ok["_status"] == "ok" and ok["replaced_vm"] == estate["vms"]["plain-vm01"]["moid"]


def test_a_failure_leaves_no_vm_behind(tmp_path, vcsim, vcsim_si, estate, repository, restored):
    repo = open_repository(repository)
    backup_id = capture_backup(vcsim, repo, estate, SOURCE, disks=False)
    restored.extend(["restored-broken", "restored-nowhere"])
    # The NVRAM's chunk is lost after the backup: the VM is created, then its NVRAM cannot be read.
    for _length, chunk_id in repo.read_manifest(backup_id).nvram_chunks():
        repo.chunks.delete(chunk_id)
    run = run_tasks(tmp_path, vcsim, [
        restore_task("nvram lost", repository, backup_id, "restored-broken"),
        restore_task("no datastore", repository, backup_id, "restored-nowhere", datastore="no-such-datastore"),
    ])
    lost = run["nvram lost"]
    assert lost["_status"] == "failed", lost
    # Raised while the NVRAM streams into the created VM's folder: the VM existed, and was removed again.
    assert lost["error_type"] == "MissingDataError" and lost["msg"].startswith("repository file chunks/")
    assert vms_named(vcsim_si, "restored-broken") == []
    nowhere = run["no datastore"]
    assert nowhere["_status"] == "failed" and nowhere["error_type"] == "NotFoundError"
    assert nowhere["msg"] == "no datastore named 'no-such-datastore'"
    assert vms_named(vcsim_si, "restored-nowhere") == []


def test_a_failed_overwrite_keeps_the_old_vm_under_its_name(tmp_path, vcsim, vcsim_si, estate, repository, restored):
    repo = open_repository(repository)
    backup_id = capture_backup(vcsim, repo, estate, SOURCE, disks=False)
    restored.append("restored-kept")
    first = run_tasks(tmp_path / "first", vcsim, [restore_task("first", repository, backup_id, "restored-kept")])
    assert first["first"]["_status"] == "ok", first["first"].get("msg")
    for _length, chunk_id in repo.read_manifest(backup_id).nvram_chunks():
        repo.chunks.delete(chunk_id)
    run = run_tasks(tmp_path, vcsim, [restore_task("overwrite", repository, backup_id, "restored-kept",
                                                   overwrite=True)])
    assert run["overwrite"]["_status"] == "failed" and run["overwrite"]["error_type"] == "MissingDataError"
    # The new VM was removed, the old one got its name back and was not touched.
    assert [vm._moId for vm in vms_named(vcsim_si, "restored-kept")] == [first["first"]["vm"]["moid"]]
    assert vms_named(vcsim_si, "restored-kept (replaced by restore %s)" % backup_id) == []


def test_new_keys_send_only_the_policy_and_keep_a_generic_nvram(tmp_path, vcsim, vcsim_si, estate, repository,
                                                                restored):
    facts = estate["vms"][SOURCE]
    backup_id = capture_backup(vcsim, open_repository(repository), estate, SOURCE, disks=False)
    restored.append("restored-new")
    run = run_tasks(tmp_path, vcsim, [restore_task("new", repository, backup_id, "restored-new", key_mode="new")])
    result = run["new"]
    assert result["_status"] == "ok", result.get("msg")
    assert result["key_mode"] == "new"
    spec = result["config_spec"]
    assert "crypto" not in spec
    assert "encryption.bundle" not in [o["key"] for o in spec.get("extraConfig") or []]
    assert spec["vmProfile"] == [{"_type": "VirtualMachineDefinedProfileSpec", "profileId": ENCRYPTION_POLICY_ID}]
    disk_specs = [c for c in spec["deviceChange"] if c["device"]["_type"] == "VirtualDisk"]
    # As planned: the disk encrypted at backup gets the encryption policy, the plain one stays plain.
    assert [c.get("profile") for c in disk_specs] == [
        [{"_type": "VirtualMachineDefinedProfileSpec", "profileId": ENCRYPTION_POLICY_ID}], None]
    assert all("backing" not in c for c in disk_specs)
    assert result["nvram"] == {"action": "generic", "uploaded": False, "size": None, "datastore_path": None,
                               "sha256": None}
    [vm] = vms_named(vcsim_si, "restored-new")
    assert _bundle_of(vm) == [] and _key(vm.config.keyId) != facts["key_id"]
    policies = _policies(vcsim, vm)
    assert policies["vm_home"]["id"] == ENCRYPTION_POLICY_ID
    assert policies["disks"][2000]["id"] == ENCRYPTION_POLICY_ID and policies["disks"][2001] is None
    nvram = [f.name for f in vm.layoutEx.file if f.type == "nvram"]
    assert [read_local(vcsim, path) for path in nvram] == [b""]
    assert facts["bundle"] not in run.output
