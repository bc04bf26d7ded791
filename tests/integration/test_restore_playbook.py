"""playbooks/restore.yml end to end: the simulator, the VDDK double, a real repository, real ansible-playbook.

The guide's situations, each through the playbook an administrator runs:
the original key (a round trip through playbooks/backup.yml, the VM deleted
in between), the saved policy gone, no metadata saved, the key server lost,
and bad input. Each test builds the VMs it changes and removes every VM it
made: the simulator is the whole session's.
"""
import glob
import hashlib
import os

import pytest
from pyVmomi import pbm, vim

from estate import (
    DR_PROVIDER,
    ENCRYPTION_POLICY_ID,
    EstateBuilder,
    key_server_lost,
    power_state,
    remove_vm,
    vms_named,
    wait_for_task,
)
from estate_nvram import local_path, read_local, write_nvram
from test_disk_transfer import (  # noqa: F401 pylint: disable=unused-import
    PASSWORD,
    content,
    double,
    flat_file,
    open_repository,
    put,
    repository,
)
from test_backup_playbook import run_vmcrypt_playbook
from test_restore_plan import _set_policy, capture_backup, disks_only_backup, encryption_constraints
from test_vcsim_pbm import _profile_manager
from test_vm_restore import _bundle_of, _key, _policies, _positions

MIB = 1024 * 1024


@pytest.fixture
def made(vcsim_si):
    """Names of VMs a test makes (built or restored); every VM so named is removed after the test."""
    names = []
    yield names
    for name in names:
        for vm in vms_named(vcsim_si, name):
            remove_vm(vcsim_si, vm)


def build_vm(vcsim, vcsim_si, made, name, **options):
    """An encrypted VM of the test's own, with known bytes in its disks and NVRAM; returns its facts."""
    made.append(name)
    facts = EstateBuilder(vcsim_si).build_vm(name, encrypt=True, **options)
    for index, disk in enumerate(facts["disks"]):
        path = flat_file(vcsim, disk["file"])
        put(path, MIB * (1 + index), os.urandom(300 * 1024))
        put(path, 6 * MIB, b"a log line of the guest's file system\n" * 4000)
        put(path, disk["capacity_kb"] * 1024 - 4096, name.encode() * 100)
    write_nvram(vcsim, facts, hashlib.sha256(name.encode()).digest() * 300)
    return facts


def entry_of(report, name):
    [entry] = [entry for entry in report["vms"] if entry["vm"] == name]
    return entry


@pytest.fixture
def any_vm(double):  # noqa: F811
    """The double serves every VM and snapshot: the tests make VMs whose moids are known only once made."""
    double.vms = []
    double.snapshots = ["*"]
    double.write()
    return double


def disk_bytes(vcsim, vm):
    disks = sorted((d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)),
                   key=lambda d: d.key)
    return dict((d.key, content(flat_file(vcsim, d.backing.fileName), d.capacityInKB * 1024)) for d in disks)


def nvram_bytes(vcsim, vm):
    return [read_local(vcsim, f.name) for f in vm.layoutEx.file if f.type == "nvram"]


def test_original_key_round_trip_back_up_delete_restore(tmp_path, vcsim, vcsim_si, estate, any_vm, repository, made):
    name = "roundtrip-vm01"
    facts = build_vm(vcsim, vcsim_si, made, name, firmware="efi", secure_boot=True, vtpm=True)
    original = vim.VirtualMachine(facts["moid"], vcsim_si._stub)
    before = {"disks": disk_bytes(vcsim, original), "nvram": nvram_bytes(vcsim, original),
              "policies": _policies(vcsim, original), "positions": _positions(original)}
    assert before["nvram"] != [b""] and before["policies"]["vm_home"]["id"] == ENCRYPTION_POLICY_ID

    backed_up, backup_report = run_vmcrypt_playbook("backup", tmp_path / "backup", vcsim, any_vm,
                                                    {"repository": repository, "vm_name": name, "backup_verify": True})
    assert backed_up.returncode == 0, backed_up.stdout
    backup_id = entry_of(backup_report, name)["backup_id"]

    wait_for_task(original.Destroy_Task())
    assert vms_named(vcsim_si, name) == []

    # --check: the plan, shown, and nothing made.
    planned, plan_report = run_vmcrypt_playbook("restore", tmp_path / "check", vcsim, any_vm,
                                                {"repository": repository, "vm_name": name}, check=True)
    assert planned.returncode == 0, planned.stdout
    assert vms_named(vcsim_si, name) == []
    entry = entry_of(plan_report, name)
    assert entry["status"] == "planned" and entry["key_mode"] == "original" and entry["backup_id"] == backup_id
    assert entry["power_on"]["predicted"] is True
    assert "1 of 1 VMs planned (check mode" in planned.stdout, planned.stdout[-3000:]

    any_vm.write(fault__write_delay_ms=1000)  # slow enough for progress lines while the import runs
    restored, report = run_vmcrypt_playbook("restore", tmp_path / "restore", vcsim, any_vm,
                                            {"repository": repository, "vm_name": name, "restore_power_on": True})
    assert restored.returncode == 0, restored.stdout
    entry = entry_of(report, name)
    assert entry["status"] == "ok" and entry["failure"] is None, entry
    assert entry["key_mode"] == "original" and entry["source_vm"] == name and entry["backup_id"] == backup_id
    assert entry["nvram"] == {"action": "restore", "uploaded": True, "consequences": []}
    assert entry["power_on"]["powered_on"] is True and entry["transports"] == ["nbdssl"]
    assert sorted(d["key"] for d in entry["disks"]) == sorted(str(key) for key in before["disks"])
    [vm] = vms_named(vcsim_si, name)
    assert power_state(vcsim_si, vm) == "poweredOn"
    # The guide: the same keyId and encryption.bundle, so the VM home and NVRAM stay under the original key.
    assert _key(vm.config.keyId) == facts["key_id"]
    assert _bundle_of(vm) == [facts["bundle"]]
    assert _policies(vcsim, vm) == before["policies"]
    assert nvram_bytes(vcsim, vm) == before["nvram"]
    assert _positions(vm) == before["positions"]
    assert disk_bytes(vcsim, vm) == before["disks"]
    disk_keys = dict((d.key, _key(d.backing.keyId)) for d in vm.config.hardware.device
                     if isinstance(d, vim.vm.device.VirtualDisk))
    assert disk_keys == dict((d["key"], d["key_id"]) for d in facts["disks"])
    assert vm.config.firmware == "efi" and vm.config.bootOptions.efiSecureBootEnabled is True
    assert any(isinstance(d, vim.vm.device.VirtualTPM) for d in vm.config.hardware.device)
    for output in (backed_up.stdout, planned.stdout, restored.stdout):
        assert facts["bundle"] not in output and PASSWORD not in output
    assert "1 of 1 VMs restored" in restored.stdout
    assert "%s disk 2000: " % name in restored.stdout  # progress of the import


def test_saved_policy_gone_restores_under_the_sample_policy_with_the_warning(tmp_path, vcsim, vcsim_si, estate,
                                                                             any_vm, repository, made):
    facts = build_vm(vcsim, vcsim_si, made, "policy-vm01")
    vm = vim.VirtualMachine(facts["moid"], vcsim_si._stub)
    profiles = _profile_manager(vcsim, vcsim_si)
    gold = profiles.PbmCreate(createSpec=pbm.profile.CapabilityBasedProfileCreateSpec(
        name="vmcrypt-test-gold-playbook", description="deleted before restore", category="REQUIREMENT",
        resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
        constraints=encryption_constraints())).uniqueId
    _set_policy(vm, gold)
    try:
        backup_id = capture_backup(vcsim, open_repository(repository), {"vms": {"policy-vm01": facts}},
                                   "policy-vm01")
    finally:
        _set_policy(vm, ENCRYPTION_POLICY_ID)
        profiles.PbmDelete(profileId=[pbm.profile.ProfileId(uniqueId=gold)])
    made.append("policy-vm01-restored")
    completed, report = run_vmcrypt_playbook("restore", tmp_path, vcsim, any_vm, {
                                             "repository": repository, "backup_id": backup_id, "restore_name": "policy-vm01-restored"})
    assert completed.returncode == 0, completed.stdout
    entry = entry_of(report, "policy-vm01-restored")
    assert entry["status"] == "ok" and entry["key_mode"] == "original"
    gone = "its saved storage policy 'vmcrypt-test-gold-playbook' (id %s) no longer exists" % gold
    assert ("the VM home: %s and no storage_policy was given; the sample encryption policy 'VM Encryption Policy' "
            "is used" % gone) in entry["warnings"]
    [restored] = vms_named(vcsim_si, "policy-vm01-restored")
    policies = _policies(vcsim, restored)
    assert policies["vm_home"]["id"] == ENCRYPTION_POLICY_ID and policies["disks"][2000]["id"] == ENCRYPTION_POLICY_ID
    assert "- the VM home: %s" % gone in completed.stdout


def test_metadata_not_saved_restores_under_new_keys_with_a_generic_nvram_and_the_secure_boot_warning(
        tmp_path, vcsim, vcsim_si, estate, any_vm, repository, made):
    facts = build_vm(vcsim, vcsim_si, made, "nometa-vm01", firmware="efi", secure_boot=True)
    backup_id = disks_only_backup(open_repository(repository), {"vms": {"nometa-vm01": facts}}, "nometa-vm01")
    made.append("nometa-vm01-restored")
    datastore = facts["vmx_path"][1:].split("]")[0]
    completed, report = run_vmcrypt_playbook("restore", tmp_path, vcsim, any_vm, {
                                             "repository": repository, "backup_id": backup_id, "restore_name": "nometa-vm01-restored",
                                             "restore_datastore": datastore})
    assert completed.returncode == 0, completed.stdout
    entry = entry_of(report, "nometa-vm01-restored")
    assert entry["status"] == "ok" and entry["key_mode"] == "new"
    assert entry["key_mode_reason"].startswith("no VM metadata was saved with this backup")
    assert entry["nvram"]["action"] == "generic" and entry["nvram"]["uploaded"] is False
    secure_boot = ("NVRAM regenerated: the VM's firmware is unknown (no metadata): if it used UEFI, Secure Boot may "
                   "need to be reconfigured or its boot disk reselected with a generic NVRAM")
    assert secure_boot in entry["warnings"]
    assert any(text.startswith("the backup holds no VM configuration") for text in entry["warnings"])
    [vm] = vms_named(vcsim_si, "nometa-vm01-restored")
    assert _bundle_of(vm) == [] and nvram_bytes(vcsim, vm) == [b""]
    assert _policies(vcsim, vm)["vm_home"]["id"] == ENCRYPTION_POLICY_ID
    written = disks_only_contents(open_repository(repository), backup_id)
    assert disk_bytes(vcsim, vm) == written


def disks_only_contents(repo, backup_id):
    manifest = repo.read_manifest(backup_id)
    contents = {}
    for key in manifest.disk_keys:
        capacity = manifest.disk(key)["capacity"]
        data = bytearray(capacity)
        for offset, block in repo.read_disk(backup_id, key):
            data[offset:offset + len(block)] = block
        contents[int(key)] = bytes(data)
    return contents


def test_key_server_lost_takes_the_lost_key_path_and_states_the_nvram_loss(tmp_path, vcsim, vcsim_si, estate,
                                                                           any_vm, repository, made):
    facts = build_vm(vcsim, vcsim_si, made, "lostkey-vm01", firmware="efi", secure_boot=True)
    backup_id = capture_backup(vcsim, open_repository(repository), {"vms": {"lostkey-vm01": facts}},
                               "lostkey-vm01")
    made.extend(["lostkey-vm01-original", "lostkey-vm01-restored"])
    with key_server_lost(vcsim_si):
        strict, strict_report = run_vmcrypt_playbook("restore", tmp_path / "strict", vcsim, any_vm, {
                                                     "repository": repository, "backup_id": backup_id, "restore_name": "lostkey-vm01-original",
                                                     "restore_require_original_key": True})
        completed, report = run_vmcrypt_playbook("restore", tmp_path / "auto", vcsim, any_vm, {
                                                 "repository": repository, "backup_id": backup_id, "restore_name": "lostkey-vm01-restored"})
        [vm] = vms_named(vcsim_si, "lostkey-vm01-restored")
        key_after = _key(vm.config.keyId)
    # Insisting on the original key: the plan's reason, nothing made.
    assert strict.returncode != 0
    entry = entry_of(strict_report, "lostkey-vm01-original")
    assert entry["status"] == "failed" and "not the original key" in entry["failure"]
    assert "its key provider is not registered on this vCenter" in entry["failure"]
    assert vms_named(vcsim_si, "lostkey-vm01-original") == []
    # auto: the lost-key path - no bundle, only a policy, a generic NVRAM and its consequences stated.
    assert completed.returncode == 0, completed.stdout
    entry = entry_of(report, "lostkey-vm01-restored")
    assert entry["status"] == "ok" and entry["key_mode"] == "new"
    assert entry["key_mode_reason"].startswith("vCenter has lost access to the original key")
    assert entry["nvram"]["action"] == "generic" and entry["nvram"]["uploaded"] is False
    assert any("Secure Boot" in text for text in entry["nvram"]["consequences"])
    assert _bundle_of(vm) == [] and key_after != facts["key_id"]
    assert nvram_bytes(vcsim, vm) == [b""]
    assert "NVRAM consequence: " in completed.stdout and DR_PROVIDER in completed.stdout
    assert disk_bytes(vcsim, vm)[2000][MIB:MIB + 16] != bytes(16)  # the disks' data are written all the same


def errors(completed):
    """The error lines ansible-playbook printed."""
    return [line for line in completed.stdout.splitlines() if line.startswith("[ERROR]:")]


def corrupt_a_chunk(repository):
    chunks = sorted(glob.glob(os.path.join(repository, "chunks", "**", "*"), recursive=True))
    chunks = [path for path in chunks if os.path.isfile(path)]
    biggest = max(chunks, key=os.path.getsize)
    with open(biggest, "r+b") as handle:
        handle.seek(os.path.getsize(biggest) // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def test_bad_input_gives_one_clear_error_and_leaves_nothing_half_made(tmp_path, vcsim, vcsim_si, estate, any_vm,
                                                                      repository, made):
    facts = build_vm(vcsim, vcsim_si, made, "badinput-vm01")
    backup_id = capture_backup(vcsim, open_repository(repository), {"vms": {"badinput-vm01": facts}},
                               "badinput-vm01")
    target = "badinput-vm01-restored"
    made.append(target)
    common = {"repository": repository, "backup_id": backup_id, "restore_name": target}

    unknown, _report = run_vmcrypt_playbook("restore", tmp_path / "unknown", vcsim, any_vm,
                                            dict(common, backup_id="20990101T000000Z-00000000"))
    [error] = errors(unknown)
    assert unknown.returncode != 0 and "20990101T000000Z-00000000" in error, unknown.stdout

    wrong, _report = run_vmcrypt_playbook("restore", tmp_path / "password", vcsim, any_vm,
                                          common, env={"VMCRYPT_REPOSITORY_PASSWORD": "not the password"})
    [error] = errors(wrong)
    assert wrong.returncode != 0 and "password" in error.lower(), wrong.stdout
    assert "not the password" not in wrong.stdout

    datastore, report = run_vmcrypt_playbook("restore", tmp_path / "datastore", vcsim, any_vm,
                                             dict(common, restore_datastore="no-such-datastore"))
    assert datastore.returncode != 0
    assert "no datastore named 'no-such-datastore'" in entry_of(report, target)["failure"]

    taken, report = run_vmcrypt_playbook("restore", tmp_path / "taken", vcsim, any_vm, dict(common, restore_name="badinput-vm01"))
    assert taken.returncode != 0
    assert "a VM named 'badinput-vm01' exists" in entry_of(report, "badinput-vm01")["failure"]
    [kept] = vms_named(vcsim_si, "badinput-vm01")
    assert kept._moId == facts["moid"]

    corrupt_a_chunk(repository)
    corrupt, report = run_vmcrypt_playbook("restore", tmp_path / "corrupt", vcsim, any_vm, common)
    assert corrupt.returncode != 0
    entry = entry_of(report, target)
    assert "failed authentication (tampered, truncated or from another repository)" in entry["failure"]
    assert entry["removed_half_made_vm"] is not None

    # Replacing a VM with a backup that fails to import: the old VM keeps its name and its files.
    replaced, report = run_vmcrypt_playbook("restore", tmp_path / "replace", vcsim, any_vm,
                                            dict(common, restore_name="badinput-vm01", restore_overwrite=True))
    assert replaced.returncode != 0
    assert "failed authentication" in entry_of(report, "badinput-vm01")["failure"]
    assert [vm._moId for vm in vms_named(vcsim_si, "badinput-vm01")] == [facts["moid"]]
    assert vms_named(vcsim_si, "badinput-vm01 (replaced by restore %s)" % backup_id) == []

    for completed in (unknown, wrong, datastore, taken, corrupt, replaced):
        assert vms_named(vcsim_si, target) == []
        assert facts["bundle"] not in completed.stdout and PASSWORD not in completed.stdout
    assert os.path.exists(local_path(vcsim, facts["vmx_path"]))  # the VM whose name was taken is untouched
