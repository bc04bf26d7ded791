"""restore_plan and backup_keys_check through ansible-playbook against the simulator: the guide's situations.

Backups are made the way the backup role makes them - metadata_capture into a
staged backup, the disks written into it, a commit - and planned on the
session simulator, whose key providers and storage policies the tests change
and put back (every test of the session shares that simulator).
"""
import json
import os

from pyVmomi import pbm, vim

from estate import (
    DR_PROVIDER,
    ENCRYPTION_POLICY_ID,
    ENCRYPTION_POLICY_NAME,
    KEY_PROVIDER_ID,
    EstateBuilder,
    key_server_lost,
    wait_for_task,
)
from estate_nvram import write_nvram
from playbook import run_playbook
from test_disk_transfer import CHUNK, PASSWORD, open_repository, repository  # noqa: F401 pylint: disable=unused-import
from test_vcsim_pbm import _profile_manager
from vsphere_env import vmware_env

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder, VmSelector
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.metadata_capture import MetadataCapture
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import (
    GUIDE_NO_POWER_ON,
    LOST_KEY_PATH,
)

SAMPLE_POLICY = {"id": ENCRYPTION_POLICY_ID, "name": ENCRYPTION_POLICY_NAME}
MIB = 1024 * 1024


def nvram_of(name):
    return (name.encode() * 64)[:4096] + b"\x01\x02" * 100


def capture_backup(vcsim, repo, estate, name, disks=True, nvram=True):
    """A committed backup of VM ``name``: its metadata (and NVRAM) by metadata_capture, a chunk in each disk."""
    vm_facts = estate["vms"].get(name)
    nvram_path = write_nvram(vcsim, vm_facts, nvram_of(name)) if nvram and vm_facts else None
    try:
        with VsphereClient(hostname=vcsim.host, username=vcsim.username, password=vcsim.password, port=vcsim.port,
                           validate_certs=False) as client:
            finder = VmFinder(client)
            vm = finder.find_one(VmSelector(name=name))
            result = MetadataCapture(client, finder, repo, vm).run()
    finally:
        if nvram_path:
            open(nvram_path, "wb").close()
    staged = repo.staged_backup(result["backup_id"])
    if disks:
        for disk in vm_facts["disks"]:
            with staged.open_disk(str(disk["key"]), disk["capacity_kb"] * 1024) as writer:
                writer.write_blocks([(MIB, os.urandom(CHUNK))])
    return staged.commit().backup_id


def disks_only_backup(repo, estate, name):
    """What disk_export alone leaves: disks, no metadata, no NVRAM (the guide's "keyId and bundle not saved")."""
    vm = estate["vms"][name]
    staged = repo.start_backup({"name": name, "uuid": vm["uuid"], "instance_uuid": vm["instance_uuid"]})
    for disk in vm["disks"]:
        with staged.open_disk(str(disk["key"]), disk["capacity_kb"] * 1024) as writer:
            writer.write_blocks([(MIB, os.urandom(CHUNK))])
    return staged.commit().backup_id


def run_tasks(tmp_path, vcsim, tasks, check=False):
    env = vmware_env(vcsim)
    env["VMCRYPT_REPOSITORY_PASSWORD"] = PASSWORD
    tmp_path.mkdir(exist_ok=True)
    for task in tasks:
        task.setdefault("ignore_errors", True)
    return run_playbook(tmp_path, tasks, env=env, check=check)


def plan_task(title, repository_path, backup_id, **options):
    return {"name": title, "vmcrypt.backup.restore_plan": dict(repository=repository_path, backup_id=backup_id,
                                                               **options)}


def test_original_key_available_plans_the_original_key_and_a_power_on(tmp_path, vcsim, estate, repository):
    repo = open_repository(repository)
    backup_id = capture_backup(vcsim, repo, estate, "crypt-vm01")
    run = run_tasks(tmp_path, vcsim, [plan_task("plan", repository, backup_id)])
    check = run_tasks(tmp_path / "check", vcsim, [plan_task("plan", repository, backup_id)], check=True)
    plan, facts = run["plan"], estate["vms"]["crypt-vm01"]
    assert plan["_status"] == "ok" and plan["changed"] is False
    assert plan["key_mode"]["chosen"] == "original"
    assert plan["original_key"] == {"key_id": facts["key_id"], "encryption_bundle_saved": True,
                                    "provider_registered": True, "available": True, "reason": None,
                                    "verified_by": "QueryCryptoKeyStatus"}
    assert plan["vm_home"] == {"key_mode": "original", "key_id": facts["key_id"], "encryption_bundle": "restored",
                               "storage_policy": dict(SAMPLE_POLICY, source="saved")}
    assert [(d["key"], d["key_mode"], d["key_id"], d["in_backup"]) for d in plan["disks"]] == [
        ("2000", "original", facts["disks"][0]["key_id"], True), ("2001", "none", None, True)]
    assert plan["disks"][0]["storage_policy"] == dict(SAMPLE_POLICY, source="saved")
    assert plan["nvram"] == {"saved": True, "size": len(nvram_of("crypt-vm01")), "action": "restore",
                             "reason": "it is restored under the original key, with the saved keyId and "
                                       "encryption.bundle", "consequences": []}
    assert plan["power_on"]["predicted"] is True and plan["feasible"] is True
    assert plan["plan_warnings"] == []
    assert [p["id"] for p in plan["key_providers"]] == [KEY_PROVIDER_ID]
    assert facts["bundle"] not in run.output and facts["bundle"] not in json.dumps(plan)
    # Read-only: check mode plans the same.
    assert dict((k, v) for k, v in check["plan"].items() if not k.startswith("_")) == dict(
        (k, v) for k, v in plan.items() if not k.startswith("_"))


def encryption_constraints():
    """Host-based encryption, as the sample "VM Encryption Policy" asks for it."""
    capability = pbm.capability.CapabilityInstance(
        id=pbm.capability.CapabilityMetadata.UniqueId(namespace="vmwarevmcrypt", id="vmwarevmcrypt@encryption"),
        constraint=[pbm.capability.ConstraintInstance(propertyInstance=[
            pbm.capability.PropertyInstance(id="AllowCleartextFilters", value="False")])])
    return pbm.profile.SubProfileCapabilityConstraints(subProfiles=[
        pbm.profile.SubProfileCapabilityConstraints.SubProfile(name="Host based services", capability=[capability])])


def _set_policy(vm, profile_id):
    disk = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk) and d.key == 2000][0]
    profile = [vim.vm.DefinedProfileSpec(profileId=profile_id)]
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(vmProfile=profile, deviceChange=[
        vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk, profile=profile)])))


def test_saved_policy_deleted_falls_back_to_the_sample_with_a_warning(tmp_path, vcsim, vcsim_si, estate, repository):
    profiles = _profile_manager(vcsim, vcsim_si)
    gold = profiles.PbmCreate(createSpec=pbm.profile.CapabilityBasedProfileCreateSpec(
        name="vmcrypt-test-gold", description="deleted before restore", category="REQUIREMENT",
        resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
        constraints=encryption_constraints())).uniqueId
    vm = vim.VirtualMachine(estate["vms"]["crypt-vm01"]["moid"], vcsim_si._stub)
    repo = open_repository(repository)
    _set_policy(vm, gold)
    try:
        backup_id = capture_backup(vcsim, repo, estate, "crypt-vm01", disks=False)
    finally:
        _set_policy(vm, ENCRYPTION_POLICY_ID)
        profiles.PbmDelete(profileId=[pbm.profile.ProfileId(uniqueId=gold)])
    saved = repo.read_manifest(backup_id).metadata["storage_policies"]
    assert saved["vm_home"] == {"id": gold, "name": "vmcrypt-test-gold"}
    run = run_tasks(tmp_path, vcsim, [
        plan_task("sample", repository, backup_id),
        plan_task("administrator", repository, backup_id, storage_policy="vSAN Default Storage Policy"),
        plan_task("unknown policy", repository, backup_id, storage_policy="no-such-policy"),
    ])
    sample = run["sample"]
    assert sample["_status"] == "ok"
    assert sample["vm_home"]["storage_policy"] == dict(SAMPLE_POLICY, source="sample")
    assert sample["disks"][0]["storage_policy"] == dict(SAMPLE_POLICY, source="sample")
    gone = "its saved storage policy 'vmcrypt-test-gold' (id %s) no longer exists" % gold
    assert sample["plan_warnings"] == [
        "the VM home: %s and no storage_policy was given; the sample encryption policy 'VM Encryption Policy' is "
        "used" % gone,
        "disk 2000 (%s): %s and no storage_policy was given; the sample encryption policy 'VM Encryption "
        "Policy' is used" % (estate["vms"]["crypt-vm01"]["disks"][0]["label"], gone)]
    assert sample["warnings"] == sample["plan_warnings"]
    # The disks' data were not exported: the plan says they are created blank.
    assert [d["in_backup"] for d in sample["disks"]] == [False, False]
    administrator = run["administrator"]
    assert administrator["vm_home"]["storage_policy"]["source"] == "administrator"
    assert administrator["vm_home"]["storage_policy"]["name"] == "vSAN Default Storage Policy"
    assert administrator["plan_warnings"] == []
    assert run["unknown policy"]["_status"] == "failed" and run["unknown policy"]["error_type"] == "NotFoundError"
    assert run["unknown policy"]["msg"] == ("storage_policy 'no-such-policy' is neither the id nor the name of a "
                                            "storage policy on this vCenter")


def test_backup_without_metadata_gets_new_keys_a_generic_nvram_and_the_secure_boot_warning(
        tmp_path, vcsim, estate, repository):
    backup_id = disks_only_backup(open_repository(repository), estate, "uefi-vm01")
    run = run_tasks(tmp_path, vcsim, [
        plan_task("auto", repository, backup_id),
        plan_task("original", repository, backup_id, key_mode="original"),
    ])
    plan = run["auto"]
    assert plan["metadata_saved"] is False and plan["encrypted_at_backup"] is None
    assert plan["key_mode"]["chosen"] == "new"
    assert plan["key_mode"]["reason"].startswith("no VM metadata was saved with this backup: keyId and "
                                                 "encryption.bundle were not saved")
    assert plan["vm_home"] == {"key_mode": "new", "key_id": None, "encryption_bundle": "not_saved",
                               "storage_policy": dict(SAMPLE_POLICY, source="sample")}
    assert [(d["key"], d["key_mode"]) for d in plan["disks"]] == [("2000", "new"), ("2001", "new")]
    assert plan["nvram"]["action"] == "generic" and plan["nvram"]["saved"] is False
    secure_boot = ("NVRAM regenerated: the VM's firmware is unknown (no metadata): if it used UEFI, Secure Boot may "
                   "need to be reconfigured or its boot disk reselected with a generic NVRAM")
    assert secure_boot in plan["plan_warnings"]
    assert "NVRAM regenerated: if the VM had a vTPM, its contents are lost" in plan["plan_warnings"]
    assert plan["power_on"] == {"predicted": True, "reason": "the VM gets new keys from key provider %s"
                                                             % KEY_PROVIDER_ID}
    original = run["original"]
    assert original["feasible"] is False
    assert original["problems"] == ["key_mode original is impossible: no VM metadata was saved: keyId and "
                                    "encryption.bundle are unknown"]


def test_uefi_backup_without_bundle_warns_of_secure_boot_and_the_vtpm(tmp_path, vcsim, vcsim_si, estate, repository):
    vm = vim.VirtualMachine(estate["vms"]["uefi-vm01"]["moid"], vcsim_si._stub)
    bundle = estate["vms"]["uefi-vm01"]["bundle"]
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
        vim.option.OptionValue(key="encryption.bundle", value="")])))
    try:
        backup_id = capture_backup(vcsim, open_repository(repository), estate, "uefi-vm01", disks=False)
    finally:
        wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[
            vim.option.OptionValue(key="encryption.bundle", value=bundle)])))
    plan = run_tasks(tmp_path, vcsim, [plan_task("plan", repository, backup_id)])["plan"]
    assert plan["key_mode"]["chosen"] == "new" and plan["nvram"]["saved"] is True
    assert plan["nvram"]["action"] == "generic"
    assert plan["nvram"]["consequences"] == [
        "the VM uses UEFI firmware: with a generic NVRAM Secure Boot (enabled at backup) may need to be reconfigured "
        "and its boot disk may need to be reselected in the firmware",
        "the VM had a vTPM: its contents (keys, measurements) are lost; it starts empty"]


def _vm_under_the_new_provider(vcsim_si, name):
    """A VM encrypted after the key server was lost, with keys of the new provider."""
    builder = EstateBuilder(vcsim_si)
    crypto = builder.content.cryptoManager
    keys = []
    for _unused in range(2):
        result = crypto.GenerateKey(keyProvider=vim.encryption.KeyProviderId(id=DR_PROVIDER))
        keys.append({"key_id": result.keyId.keyId, "provider_id": result.keyId.providerId.id})
    vm = builder.create_vm(name)
    builder.encrypt_vm(vm, keys[0], keys[1], "vmware:key/list/(pair/(fqid/dr))")
    return vm, builder.describe_vm(vm)


def test_key_server_lost_predicts_no_power_on_and_the_check_flags_it(tmp_path, vcsim, vcsim_si, estate, repository):
    repo = open_repository(repository)
    crypt = estate["vms"]["crypt-vm01"]
    # Backed up while the original key server was there (the situation of the first test).
    with_lost_key = capture_backup(vcsim, repo, estate, "crypt-vm01")
    vm = None
    try:
        with key_server_lost(vcsim_si):
            # A VM encrypted afterwards under the new provider: its backups stay restorable.
            vm, described = _vm_under_the_new_provider(vcsim_si, "keys-check-vm")
            with_new_key = capture_backup(vcsim, repo, dict(estate, vms={"keys-check-vm": described}),
                                          "keys-check-vm", nvram=False)
            run = run_tasks(tmp_path, vcsim, [
                plan_task("auto", repository, with_lost_key),
                plan_task("original", repository, with_lost_key, key_mode="original"),
                plan_task("new provider", repository, with_new_key),
                {"name": "check", "vmcrypt.backup.backup_keys_check": {"repository": repository}},
            ])
    finally:
        if vm is not None:
            wait_for_task(vm.Destroy_Task())
    # The original provider registered again under its cluster name (as a replicated key server would be).
    after = run_tasks(tmp_path / "after", vcsim, [
        {"name": "check", "vmcrypt.backup.backup_keys_check": {"repository": repository,
                                                               "backup_ids": [with_lost_key, with_new_key]}}])

    auto = run["auto"]
    assert auto["original_key"] == {"key_id": crypt["key_id"], "encryption_bundle_saved": True,
                                    "provider_registered": False, "available": False,
                                    "reason": "its key provider is not registered on this vCenter",
                                    "verified_by": "QueryCryptoKeyStatus"}
    assert auto["key_mode"]["chosen"] == "new"
    assert auto["key_mode"]["reason"] == ("vCenter has lost access to the original key (its key provider is not "
                                          "registered on this vCenter): " + LOST_KEY_PATH)
    assert auto["vm_home"]["encryption_bundle"] == "removed" and auto["vm_home"]["key_id"] is None
    assert auto["vm_home"]["storage_policy"] == dict(SAMPLE_POLICY, source="saved")
    assert [d["key_mode"] for d in auto["disks"]] == ["new", "none"]
    assert auto["nvram"]["action"] == "generic" and auto["nvram"]["saved"] is True
    assert auto["power_on"] == {"predicted": True, "reason": "the VM gets new keys from key provider %s"
                                                             % DR_PROVIDER}
    assert crypt["bundle"] not in run.output
    original = run["original"]
    assert original["key_mode"]["chosen"] == "original"
    assert original["power_on"] == {"predicted": False, "reason": (
        "vCenter lacks access to the original key (its key provider is not registered on this vCenter): "
        + GUIDE_NO_POWER_ON)}
    assert ("Without access to the original key: %s. To restore anyway, key_mode new is the lost-key path: %s."
            % (GUIDE_NO_POWER_ON, LOST_KEY_PATH)) in original["sentences"]
    assert original["disks"][0]["key_mode"] == "new"
    assert run["new provider"]["key_mode"]["chosen"] == "original"
    assert run["new provider"]["power_on"]["predicted"] is True

    check = run["check"]
    assert check["_status"] == "ok" and check["flagged"] == [with_lost_key]
    by_id = dict((entry["backup_id"], entry) for entry in check["backups"])
    assert by_id[with_lost_key]["status"] == "key_unavailable"
    assert by_id[with_lost_key]["detail"] == (
        "the original key %s of key provider %s cannot be used here: its key provider is not registered on this "
        "vCenter" % (crypt["key_id"]["key_id"], KEY_PROVIDER_ID))
    assert [d["key"] for d in by_id[with_lost_key]["disks_with_unavailable_keys"]] == ["2000"]
    assert (by_id[with_new_key]["status"], by_id[with_new_key]["flagged"]) == ("available", False)

    statuses = dict((entry["backup_id"], entry["status"]) for entry in after["check"]["backups"])
    assert statuses == {with_lost_key: "available", with_new_key: "key_unavailable"}
    assert after["check"]["flagged"] == [with_new_key]
