"""The ConfigSpec of a restored VM, built from a configuration record and a plan (plain values, no vCenter)."""
import json

import pytest
from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.vm_restore import (
    MASK,
    RESTORED_FROM_KEY,
    build_config_spec,
    disks_only_record,
    masked,
    to_vim,
)

HOME_KEY = {"key_id": "k-home", "provider_id": "kms-a"}
DISK_KEY = {"key_id": "k-disk", "provider_id": "kms-a"}
POLICY = {"id": "p-enc", "name": "VM Encryption Policy", "source": "saved"}
BUNDLE = "vmware:key/list/(pair/(fqid/<VMWARE-EMPTYSTRING>/kms-a/k-home,HMAC-SHA-256,c2VjcmV0))"
PROFILE = [{"_type": "VirtualMachineDefinedProfileSpec", "profileId": "p-enc"}]


def record(vtpm=False, nics=()):
    devices = [
        {"key": 200, "type": "VirtualIDEController", "label": "IDE 0", "controller_key": 100, "unit_number": None,
         "bus_number": 0},
        {"key": 1000, "type": "ParaVirtualSCSIController", "label": "SCSI controller 0", "controller_key": 100,
         "unit_number": 3, "bus_number": 0, "shared_bus": "noSharing"},
        {"key": 15000, "type": "VirtualAHCIController", "label": "SATA controller 0", "controller_key": 100,
         "unit_number": None, "bus_number": 0},
        {"key": 2000, "type": "VirtualDisk", "controller_key": 1000, "unit_number": 0},
        {"key": 16000, "type": "VirtualDisk", "controller_key": 15000, "unit_number": 1},
        {"key": 3002, "type": "VirtualCdrom", "label": "CD/DVD drive 1", "controller_key": 200, "unit_number": 0},
    ]
    if vtpm:
        devices.append({"key": 11000, "type": "VirtualTPM", "label": "Virtual TPM"})
    for nic in nics:
        devices.append({"key": nic["key"], "type": nic["type"], "connectable": {
            "start_connected": True, "allow_guest_control": True, "connected": True}})
    return {
        "name": "app01", "guest_id": "otherGuest64", "version": "vmx-19", "annotation": None,
        "hardware": {"num_cpu": 2, "cores_per_socket": 1, "memory_mb": 2048},
        "firmware": "efi",
        "boot_options": {"efi_secure_boot_enabled": True, "boot_delay": 0, "enter_bios_setup": False,
                         "boot_retry_enabled": False, "boot_retry_delay": 10000, "network_boot_protocol": None,
                         "boot_order": [{"type": "VirtualMachineBootOptionsBootableDiskDevice", "device_key": 2000}]},
        "change_tracking_enabled": True,
        "files": {"vm_path_name": "[ds-old] app01/app01.vmx"},
        "devices": devices,
        "disks": [{"key": 2000, "controller_key": 1000, "unit_number": 0, "capacity_bytes": 16 << 20,
                   "disk_mode": "persistent", "thin_provisioned": True,
                   "backing_type": "VirtualDiskFlatVer2BackingInfo", "key_id": DISK_KEY},
                  {"key": 16000, "controller_key": 15000, "unit_number": 1, "capacity_bytes": 8 << 20,
                   "disk_mode": "independent_persistent", "thin_provisioned": False,
                   "backing_type": "VirtualDiskFlatVer2BackingInfo", "key_id": None}],
        "nics": list(nics),
        "extra_config": [{"key": "nvram", "value": "app01.nvram"}, {"key": "svga.present", "value": "TRUE"},
                         {"key": "vmware.tools.internalversion", "value": "0"}],
    }


def plan(mode="original"):
    original = mode == "original"
    return {
        "vm_home": {"key_mode": mode, "key_id": HOME_KEY if original else None,
                    "encryption_bundle": "restored" if original else "removed",
                    "storage_policy": None if mode == "none" else POLICY},
        "disks": [{"key": "2000", "capacity_bytes": 16 << 20, "key_mode": "original" if original else mode,
                   "key_id": DISK_KEY if original else None, "storage_policy": None if mode == "none" else POLICY},
                  {"key": "16000", "capacity_bytes": 8 << 20, "key_mode": "none", "key_id": None,
                   "storage_policy": None}],
        "nvram": {"action": "restore" if original else "generic"},
    }


def device_changes(spec, kind):
    return [change for change in spec["deviceChange"] if change["device"]["_type"] == kind]


def test_original_key_sends_the_key_the_bundle_and_the_policies():
    spec, notes = build_config_spec(record(vtpm=True), plan("original"), "app01-restored", "ds-new", bundle=BUNDLE)
    assert spec["name"] == "app01-restored" and spec["files"] == {"vmPathName": "[ds-new]"}
    assert spec["crypto"] == {"_type": "CryptoSpecEncrypt",
                              "cryptoKeyId": {"keyId": "k-home", "providerId": {"id": "kms-a"}}}
    assert spec["extraConfig"] == [{"key": "svga.present", "value": "TRUE"},
                                   {"key": "encryption.bundle", "value": BUNDLE}]
    assert notes["extra_config_skipped"] == ["nvram", "vmware.tools.internalversion"]
    assert spec["vmProfile"] == PROFILE
    assert (spec["firmware"], spec["numCPUs"], spec["memoryMB"], spec["guestId"]) == ("efi", 2, 2048, "otherGuest64")
    assert spec["bootOptions"]["efiSecureBootEnabled"] is True
    assert spec["bootOptions"]["bootOrder"] == [{"_type": "VirtualMachineBootOptionsBootableDiskDevice",
                                                 "deviceKey": 2000}]
    # Controllers at their keys and buses (the default IDE ones are vSphere's own), disks at their positions.
    assert [c["device"] for c in spec["deviceChange"][:2]] == [
        {"_type": "ParaVirtualSCSIController", "key": 1000, "busNumber": 0, "sharedBus": "noSharing"},
        {"_type": "VirtualAHCIController", "key": 15000, "busNumber": 0}]
    first, second = device_changes(spec, "VirtualDisk")
    assert first["fileOperation"] == "create" and first["profile"] == PROFILE
    assert (first["device"]["key"], first["device"]["controllerKey"], first["device"]["unitNumber"],
            first["device"]["capacityInBytes"]) == (2000, 1000, 0, 16 << 20)
    assert first["device"]["backing"]["fileName"] == "[ds-new]"
    assert first["backing"] == {"crypto": {"_type": "CryptoSpecEncrypt",
                                           "cryptoKeyId": {"keyId": "k-disk", "providerId": {"id": "kms-a"}}}}
    assert (second["device"]["key"], second["device"]["controllerKey"], second["device"]["unitNumber"]) == (
        16000, 15000, 1)
    assert "backing" not in second and "profile" not in second
    assert second["device"]["backing"]["diskMode"] == "independent_persistent"
    assert device_changes(spec, "VirtualTPM") == [{"operation": "add", "device": {"_type": "VirtualTPM", "key": 11000}}]
    assert notes["devices_not_restored"] == ["CD/DVD drive 1 (VirtualCdrom)"]


def test_masked_hides_the_bundle_only():
    spec, _notes = build_config_spec(record(), plan("original"), "x", "ds", bundle=BUNDLE)
    shown = masked(spec)
    assert BUNDLE not in json.dumps(shown) and {"key": "encryption.bundle", "value": MASK} in shown["extraConfig"]
    assert BUNDLE in json.dumps(spec)  # the spec sent is untouched


def test_new_keys_send_only_the_policy():
    spec, _notes = build_config_spec(record(vtpm=True), plan("new"), "x", "ds", bundle=BUNDLE)
    assert "crypto" not in spec
    assert BUNDLE not in json.dumps(spec)
    assert spec["vmProfile"] == PROFILE
    first, second = device_changes(spec, "VirtualDisk")
    assert first["profile"] == PROFILE and "backing" not in first and "profile" not in second
    assert len(device_changes(spec, "VirtualTPM")) == 1  # an empty vTPM in the newly encrypted VM


def test_none_sends_no_crypto_no_policy_no_vtpm():
    spec, notes = build_config_spec(record(vtpm=True), plan("none"), "x", "ds", bundle=BUNDLE)
    assert "crypto" not in spec and "vmProfile" not in spec and BUNDLE not in json.dumps(spec)
    assert device_changes(spec, "VirtualTPM") == []
    assert "Virtual TPM (VirtualTPM): a vTPM needs an encrypted VM" in notes["devices_not_restored"]


def test_a_restored_bundle_needs_the_saved_one():
    with pytest.raises(InvalidArgumentError, match="holds none"):
        build_config_spec(record(), plan("original"), "x", "ds", bundle=None)
    with pytest.raises(InvalidArgumentError, match="metadata_capture was not run"):
        build_config_spec(None, plan("new"), "x", "ds")


def test_networks_mapped_found_or_left_disconnected():
    nics = [{"key": 4000, "type": "VirtualVmxnet3", "label": "Network adapter 1", "network_name": "Prod",
             "address_type": "assigned", "mac_address": "00:50:56:aa:bb:cc"},
            {"key": 4001, "type": "VirtualE1000e", "label": "Network adapter 2", "network_name": "Backup",
             "address_type": "manual", "mac_address": "00:50:56:00:00:01"},
            {"key": 4002, "type": "VirtualVmxnet3", "label": "Network adapter 3", "network_name": "Gone",
             "address_type": "generated", "mac_address": "00:50:56:00:00:02"}]
    available = {"DR Prod": {"type": "standard", "moid": "network-7"},
                 "Backup": {"type": "distributed", "switch_uuid": "50 1a", "portgroup_key": "dvportgroup-9"}}
    spec, notes = build_config_spec(record(nics=nics), plan("none"), "x", "ds", networks={"Prod": "DR Prod"},
                                    available_networks=available)
    prod, backup, gone = [c["device"] for c in spec["deviceChange"] if c["device"]["key"] in (4000, 4001, 4002)]
    assert prod["backing"] == {"_type": "VirtualEthernetCardNetworkBackingInfo", "deviceName": "DR Prod",
                               "network": {"_moref": "Network", "value": "network-7"}}
    assert prod["addressType"] == "generated" and prod["connectable"]["startConnected"] is True
    assert backup["backing"]["port"] == {"switchUuid": "50 1a", "portgroupKey": "dvportgroup-9"}
    assert (backup["addressType"], backup["macAddress"]) == ("manual", "00:50:56:00:00:01")
    assert gone["connectable"]["startConnected"] is False
    assert notes["warnings"] == ["network adapter Network adapter 3: network 'Gone' does not exist here; the adapter "
                                 "is left disconnected (map it with networks)"]


def test_to_vim_builds_the_pyvmomi_spec():
    spec, _notes = build_config_spec(record(vtpm=True), plan("original"), "x", "ds", bundle=BUNDLE)
    config = to_vim(spec, vim.vm.ConfigSpec)
    assert isinstance(config.crypto, vim.encryption.CryptoSpecEncrypt)
    assert config.crypto.cryptoKeyId.keyId == "k-home" and config.crypto.cryptoKeyId.providerId.id == "kms-a"
    assert isinstance(config.vmProfile[0], vim.vm.DefinedProfileSpec)
    disk = config.deviceChange[2]
    assert isinstance(disk.device, vim.vm.device.VirtualDisk) and disk.device.capacityInBytes == 16 << 20
    assert isinstance(disk.device.backing, vim.vm.device.VirtualDisk.FlatVer2BackingInfo)
    assert isinstance(disk.backing.crypto, vim.encryption.CryptoSpecEncrypt)
    assert isinstance(config.bootOptions.bootOrder[0], vim.vm.BootOptions.BootableDiskDevice)


def test_the_restored_vm_is_marked_with_its_backup_and_an_old_mark_is_not_carried():
    old = record()
    old["extra_config"] = list(old.get("extra_config") or []) + [{"key": RESTORED_FROM_KEY, "value": "old-backup"}]
    spec, _notes = build_config_spec(old, plan("new"), "x", "ds", backup_id="20261130T020000Z-1a2b3c4d")
    marks = [option for option in spec["extraConfig"] if option["key"] == RESTORED_FROM_KEY]
    assert marks == [{"key": RESTORED_FROM_KEY, "value": "20261130T020000Z-1a2b3c4d"}]


def test_a_backup_of_disks_only_gets_a_minimal_vm_with_every_disk_at_its_key():
    disks = [("2001", 2 << 30)] + [(str(2000 + n), 1 << 30) for n in (0,) + tuple(range(2, 17))]
    made, warning = disks_only_record(disks)
    assert [c["key"] for c in made["devices"]] == [1000, 1001]
    placed = dict((d["key"], (d["controller_key"], d["unit_number"], d["capacity_bytes"])) for d in made["disks"])
    assert len(placed) == 17 and placed[2001] == (1000, 1, 2 << 30)
    assert 7 not in [unit for _controller, unit, _size in placed.values()]
    assert placed[2016] == (1001, 1, 1 << 30)
    assert warning.startswith("the backup holds no VM configuration (metadata_capture was not run): the VM is made "
                              "from its disks alone - 17 disk(s)")
    spec, _notes = build_config_spec(made, plan("new"), "x", "ds")
    assert len(device_changes(spec, "VirtualDisk")) == 17
    assert len(device_changes(spec, "ParaVirtualSCSIController")) == 2
