"""The configuration record from recorded pyVmomi objects, and the quiesce specs snapshots send (no server)."""
import json

import pytest
from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import snapshots
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.vm_config import RECORD_FORMAT, build_config_record

BUNDLE = "vmware:key/list/(pair/(fqid/<VMWARE-EMPTYSTRING>/kms/key-home,HMAC-SHA-256,c2VjcmV0))"


def key(key_id, provider="kms"):
    return vim.encryption.CryptoKeyId(keyId=key_id, providerId=vim.encryption.KeyProviderId(id=provider))


def recorded_config():
    controller = vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=1, sharedBus="noSharing",
                                                         scsiCtlrUnitNumber=7, device=[2001, 2000])
    disk = vim.vm.device.VirtualDisk(
        key=2000, controllerKey=1000, unitNumber=0, capacityInBytes=16 * 1024 ** 3,
        deviceInfo=vim.Description(label="Hard disk 1", summary=""),
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
            fileName="[ds1] app01/app01.vmdk", diskMode="persistent", thinProvisioned=True,
            datastore=vim.Datastore("datastore-11"), keyId=key("key-disk0"), changeId="52 aa/4"))
    other = vim.vm.device.VirtualDisk(
        key=2001, controllerKey=1000, unitNumber=2, capacityInKB=1024,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="[ds1] app01/app01_1.vmdk",
                                                              diskMode="independent_persistent",
                                                              thinProvisioned=False))
    nic = vim.vm.device.VirtualVmxnet3(
        key=4000, controllerKey=100, unitNumber=7, addressType="assigned", macAddress="00:50:56:aa:bb:cc",
        deviceInfo=vim.Description(label="Network adapter 1", summary=""),
        connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, allowGuestControl=True),
        backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
            deviceName="VM Network", network=vim.Network("network-7")))
    return {
        "config.name": "app01",
        "config.guestId": "windows2019srv_64Guest",
        "config.version": "vmx-19",
        "config.firmware": "efi",
        "config.bootOptions": vim.vm.BootOptions(efiSecureBootEnabled=True, bootDelay=0, bootOrder=[
            vim.vm.BootOptions.BootableDiskDevice(deviceKey=2000)]),
        "config.hardware.numCPU": 4,
        "config.hardware.numCoresPerSocket": 2,
        "config.hardware.memoryMB": 8192,
        "config.hardware.device": [other, vim.vm.device.VirtualTPM(key=11000), nic, disk, controller],
        "config.extraConfig": [vim.option.OptionValue(key="encryption.bundle", value=BUNDLE),
                               vim.option.OptionValue(key="svga.present", value="TRUE"),
                               vim.option.OptionValue(key="nvram", value="app01-custom.nvram")],
        "config.keyId": key("key-home"),
        "config.files": vim.vm.FileInfo(vmPathName="[ds1] app01/app01.vmx", logDirectory="[ds1] app01"),
    }


def test_the_record_is_plain_json_and_keeps_the_bundle_apart():
    record, secrets = build_config_record(recorded_config(), {"name": "app01"}, "vm-7", "snapshot-9")
    text = json.dumps(record)
    assert secrets == {"encryption_bundle": BUNDLE}
    assert BUNDLE not in text and "c2VjcmV0" not in text
    assert record["extra_config"] == [{"key": "nvram", "value": "app01-custom.nvram"},
                                      {"key": "svga.present", "value": "TRUE"}]
    assert record["encryption_bundle_present"] is True
    assert record["format"] == RECORD_FORMAT
    assert record["source"] == {"vm": "vm-7", "snapshot": "snapshot-9"}
    assert record["key_id"] == {"key_id": "key-home", "provider_id": "kms"}
    assert record["nvram_path"] == "[ds1] app01/app01-custom.nvram"
    assert record["nvram_path_source"] == "extra_config"
    assert record["hardware"] == {"num_cpu": 4, "cores_per_socket": 2, "memory_mb": 8192}
    assert record["boot_options"]["efi_secure_boot_enabled"] is True
    assert record["boot_options"]["boot_order"] == [{"type": "VirtualMachineBootOptionsBootableDiskDevice",
                                                     "device_key": 2000}]
    assert record["vtpm_present"] is True


def test_devices_disks_and_nics():
    record = build_config_record(recorded_config(), {"name": "app01"}, "vm-7")[0]
    assert [device["key"] for device in record["devices"]] == [1000, 2000, 2001, 4000, 11000]
    controller = record["devices"][0]
    assert (controller["type"], controller["bus_number"], controller["device_keys"], controller["shared_bus"]) == \
        ("ParaVirtualSCSIController", 1, [2000, 2001], "noSharing")
    disk = record["devices"][1]
    assert disk["backing"] == {"type": "VirtualDiskFlatVer2BackingInfo", "file_name": "[ds1] app01/app01.vmdk",
                               "disk_mode": "persistent", "thin_provisioned": True, "change_id": "52 aa/4",
                               "datastore": "datastore-11", "key_id": {"key_id": "key-disk0", "provider_id": "kms"}}
    assert record["disks"] == [
        {"key": 2000, "label": "Hard disk 1", "controller_key": 1000, "unit_number": 0,
         "capacity_bytes": 16 * 1024 ** 3, "file_name": "[ds1] app01/app01.vmdk", "disk_mode": "persistent",
         "thin_provisioned": True, "backing_type": "VirtualDiskFlatVer2BackingInfo", "encrypted": True,
         "key_id": {"key_id": "key-disk0", "provider_id": "kms"}},
        {"key": 2001, "label": None, "controller_key": 1000, "unit_number": 2, "capacity_bytes": 1024 * 1024,
         "file_name": "[ds1] app01/app01_1.vmdk", "disk_mode": "independent_persistent",
         "thin_provisioned": False, "backing_type": "VirtualDiskFlatVer2BackingInfo", "encrypted": False,
         "key_id": None}]
    assert record["nics"] == [{"key": 4000, "type": "VirtualVmxnet3", "label": "Network adapter 1",
                               "network_name": "VM Network", "network": "network-7", "port": None,
                               "backing_type": "VirtualEthernetCardNetworkBackingInfo",
                               "address_type": "assigned", "mac_address": "00:50:56:aa:bb:cc"}]
    assert record["devices"][3]["connectable"] == {"start_connected": True, "allow_guest_control": True,
                                                   "connected": False}


def test_a_plain_vm_without_extra_config_has_no_secret():
    props = recorded_config()
    props.pop("config.keyId")
    props["config.extraConfig"] = []
    record, secrets = build_config_record(props, {"name": "app01"}, "vm-7")
    assert secrets == {"encryption_bundle": None}
    assert record["encrypted"] is False and record["key_id"] is None and record["encryption_bundle_present"] is False
    assert record["nvram_path"] == "[ds1] app01/app01.nvram" and record["nvram_path_source"] == "default_name"


@pytest.mark.parametrize("guest_id, guest_family, windows", [
    ("windows2019srv_64Guest", None, True), ("win10_64Guest", None, True), ("rhel9_64Guest", None, False),
    ("otherGuest64", None, False), (None, None, False), ("otherGuest64", "windowsGuest", True),
    ("windows9Guest", "linuxGuest", False)])
def test_is_windows_guest(guest_id, guest_family, windows):
    assert snapshots.is_windows_guest(guest_id=guest_id, guest_family=guest_family) is windows


def test_quiesce_specs():
    assert snapshots.quiesce_spec("none", windows=True) is None
    linux = snapshots.quiesce_spec("filesystem", windows=False, timeout_minutes=10)
    assert not isinstance(linux, vim.vm.WindowsQuiesceSpec) and linux.timeout == 10
    file_share = snapshots.quiesce_spec("filesystem", windows=True)
    assert isinstance(file_share, vim.vm.WindowsQuiesceSpec)
    assert (file_share.vssBackupContext, file_share.vssBackupType, file_share.vssBootableSystemState,
            file_share.vssPartialFileSupport, file_share.timeout) == ("ctx_file_share_backup", 5, False, False, None)
    assert snapshots.quiesce_spec("application", windows=True).vssBackupContext == "ctx_backup"
    linux_application = snapshots.quiesce_spec("application", windows=False)
    assert isinstance(linux_application, vim.vm.GuestQuiesceSpec)
    assert not isinstance(linux_application, vim.vm.WindowsQuiesceSpec)


@pytest.mark.parametrize("mode, timeout", [("vss", None), (True, None), ("filesystem", 4), ("filesystem", 241)])
def test_bad_quiesce_requests(mode, timeout):
    with pytest.raises(InvalidArgumentError):
        snapshots.quiesce_spec(mode, windows=False, timeout_minutes=timeout)
