"""The configuration record metadata capture keeps, read from the simulator.

The session estate holds an encrypted VM (home and first disk encrypted,
bundle set, encryption policy on home and that disk), a UEFI VM with Secure
Boot and a vTPM, and a plain VM; build_estate() says what each one is.
"""
import json

import pytest
from pyVmomi import vim

from estate import ENCRYPTION_POLICY_ID, ENCRYPTION_POLICY_NAME, SCSI_CONTROLLER_KEY, wait_for_task

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import snapshots
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.vm_config import (
    RECORD_FORMAT,
    capture_storage_policies,
    capture_vm_config,
)


@pytest.fixture(scope="module")
def client(vcsim, estate):
    with VsphereClient(vcsim.host, vcsim.username, vcsim.password, port=vcsim.port, validate_certs=False) as session:
        yield session


def vm_ref(client, facts):
    return vim.VirtualMachine(facts["moid"], client.stub)


@pytest.fixture
def snapshot_of(client):
    """Take backup snapshots of estate VMs; they are removed after the test."""
    taken = []

    def take(vm, name="config-capture"):
        snapshot = snapshots.create_backup_snapshot(client, vm, name)
        taken.append(snapshot)
        return snapshot
    yield take
    for snapshot in taken:
        snapshots.remove_snapshot(client, snapshot)


def test_the_encrypted_vm_record_holds_its_keys_and_the_bundle_only_in_secrets(client, estate, snapshot_of):
    facts = estate["vms"]["crypt-vm01"]
    vm = vm_ref(client, facts)
    snapshot = snapshot_of(vm)
    record, secrets = capture_vm_config(client, vm, snapshot)

    assert secrets == {"encryption_bundle": facts["bundle"]}
    text = json.dumps(record)  # plain JSON, and the bundle is nowhere in it
    assert facts["bundle"] not in text
    assert "encryption.bundle" not in [option["key"] for option in record["extra_config"]]
    assert record["encryption_bundle_present"] is True

    assert record["format"] == RECORD_FORMAT
    assert record["source"] == {"vm": facts["moid"], "snapshot": snapshot._moId}
    assert record["name"] == "crypt-vm01"
    assert record["guest_id"] == "otherGuest64"
    assert record["uuid"] == facts["uuid"] and record["instance_uuid"] == facts["instance_uuid"]
    assert record["hardware"] == {"num_cpu": 1, "cores_per_socket": 1, "memory_mb": 256}
    assert record["encrypted"] is True
    assert record["key_id"] == facts["key_id"]
    assert record["files"]["vm_path_name"] == facts["vmx_path"]
    assert record["nvram_path"] == facts["nvram_path"]
    assert record["vtpm_present"] is False
    assert [(d["key"], d["key_id"], d["encrypted"], d["file_name"], d["capacity_bytes"])
            for d in record["disks"]] == \
        [(d["key"], d["key_id"], d["encrypted"], d["file"], d["capacity_kb"] * 1024) for d in facts["disks"]]
    assert record["disks"][0]["key_id"]["provider_id"] == estate["key_provider"]["id"]
    assert record["disks"][1]["key_id"] is None


def test_devices_keep_their_controller_positions(client, estate):
    facts = estate["vms"]["crypt-vm01"]
    record, _secrets = capture_vm_config(client, vm_ref(client, facts))
    devices = dict((device["key"], device) for device in record["devices"])
    controller = devices[SCSI_CONTROLLER_KEY]
    assert controller["type"] == "ParaVirtualSCSIController"
    assert controller["bus_number"] == 0 and controller["shared_bus"] == "noSharing"
    assert [(d["controller_key"], d["unit_number"], d["disk_mode"], d["thin_provisioned"], d["backing_type"])
            for d in record["disks"]] == [(SCSI_CONTROLLER_KEY, 0, "persistent", True, "VirtualDiskFlatVer2BackingInfo"),
                                          (SCSI_CONTROLLER_KEY, 1, "persistent", True, "VirtualDiskFlatVer2BackingInfo")]
    disk = devices[record["disks"][0]["key"]]
    assert disk["type"] == "VirtualDisk"
    assert disk["backing"]["file_name"] == facts["disks"][0]["file"]
    assert disk["backing"]["key_id"] == facts["disks"][0]["key_id"]
    assert disk["backing"]["datastore"] == estate["datastore"]["moid"]


def test_the_uefi_vm_record_has_secure_boot_and_its_vtpm(client, estate):
    facts = estate["vms"]["uefi-vm01"]
    record, secrets = capture_vm_config(client, vm_ref(client, facts))
    assert record["firmware"] == "efi"
    assert record["boot_options"]["efi_secure_boot_enabled"] is True
    assert record["vtpm_present"] is True
    assert [d["type"] for d in record["devices"] if d["key"] == 11000] == ["VirtualTPM"]
    assert record["key_id"] == facts["key_id"]
    assert secrets == {"encryption_bundle": facts["bundle"]}


def test_the_plain_vm_record_has_no_keys_and_no_secret(client, estate):
    facts = estate["vms"]["plain-vm01"]
    record, secrets = capture_vm_config(client, vm_ref(client, facts))
    assert secrets == {"encryption_bundle": None}
    assert record["encrypted"] is False and record["key_id"] is None
    assert record["encryption_bundle_present"] is False
    assert [d["key_id"] for d in record["disks"]] == [None, None]
    assert record["firmware"] == "bios" and record["boot_options"]["efi_secure_boot_enabled"] is False


def test_a_snapshot_record_describes_the_snapshot_moment_not_the_vm_now(client, estate, snapshot_of):
    vm = vm_ref(client, estate["vms"]["plain-vm01"])
    snapshot = snapshot_of(vm, "moment")
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="changed after the snapshot")))
    try:
        at_snapshot = capture_vm_config(client, vm, snapshot)[0]
        now = capture_vm_config(client, vm)[0]
    finally:
        wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="")))
    assert at_snapshot["annotation"] is None
    assert now["annotation"] == "changed after the snapshot"
    assert at_snapshot["source"]["snapshot"] == snapshot._moId and now["source"]["snapshot"] is None


def test_storage_policies_of_home_and_disks(client, estate):
    facts = estate["vms"]["crypt-vm01"]
    keys = [disk["key"] for disk in facts["disks"]]
    policies, warnings = capture_storage_policies(client, vm_ref(client, facts), keys)
    encryption = {"id": ENCRYPTION_POLICY_ID, "name": ENCRYPTION_POLICY_NAME}
    assert policies == {"vm_home": encryption, "disks": {keys[0]: encryption, keys[1]: None}}
    assert warnings == []

    plain = estate["vms"]["plain-vm01"]
    policies, warnings = capture_storage_policies(client, vm_ref(client, plain), [d["key"] for d in plain["disks"]])
    assert policies == {"vm_home": None, "disks": dict((d["key"], None) for d in plain["disks"])}
    assert warnings == []


def test_a_policy_pbm_cannot_resolve_is_kept_by_id_with_a_warning(client, estate):
    facts = estate["vms"]["plain-vm01"]
    vm = vm_ref(client, facts)
    disk = next(d for d in vm.config.hardware.device if d.key == facts["disks"][1]["key"])
    unknown = "0badc0de-0000-4000-8000-000000000001"

    def set_profile(profile):
        wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk, profile=profile)])))
    set_profile([vim.vm.DefinedProfileSpec(profileId=unknown)])
    try:
        policies, warnings = capture_storage_policies(client, vm, [disk.key])
    finally:
        set_profile([vim.vm.EmptyProfileSpec()])
    assert policies["disks"] == {disk.key: {"id": unknown, "name": None}}, warnings
    assert warnings == ["storage policy %s of disk %d of %s is not known to PBM: restore must be given a policy"
                        % (unknown, disk.key, facts["moid"])]
