"""Encryption facts from retrieved properties (pyVmomi data objects, no server)."""
from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import nvram_path, vm_crypto_facts
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import ObjectProperties


def key(key_id, provider="kms-cluster-1"):
    return vim.encryption.CryptoKeyId(keyId=key_id, providerId=vim.encryption.KeyProviderId(id=provider))


def disk(device_key, file_name, key_id=None, capacity=8 * 1024 ** 3):
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="persistent",
                                                            keyId=key(key_id) if key_id else None)
    return vim.vm.device.VirtualDisk(key=device_key, capacityInBytes=capacity, controllerKey=1000,
                                     unitNumber=device_key - 2000, backing=backing,
                                     deviceInfo=vim.Description(label="Hard disk %d" % (device_key - 1999),
                                                                summary=""))


def encrypted_vm_props():
    snapshot_child = vim.vm.SnapshotTree(name="child", childSnapshotList=[])
    snapshots = vim.vm.SnapshotInfo(rootSnapshotList=[
        vim.vm.SnapshotTree(name="root", childSnapshotList=[snapshot_child])])
    return {
        "name": "app01",
        "config.uuid": "4211-bios",
        "config.instanceUuid": "5011-instance",
        "config.keyId": key("key-home"),
        "config.firmware": "efi",
        "config.bootOptions.efiSecureBootEnabled": True,
        "config.hardware.device": [disk(2000, "[ds1] app01/app01.vmdk", "key-disk0"),
                                   disk(2001, "[ds1] app01/app01_1.vmdk"),
                                   vim.vm.device.VirtualTPM(key=11000)],
        "config.extraConfig": [vim.option.OptionValue(key="encryption.bundle", value="vmware:key/list/secret"),
                               vim.option.OptionValue(key="nvram", value="app01.nvram")],
        "config.files.vmPathName": "[ds1] app01/app01.vmx",
        "config.changeTrackingEnabled": True,
        "snapshot": snapshots,
        "runtime.powerState": "poweredOff",
    }


def test_encrypted_vm_facts():
    item = ObjectProperties(vim.VirtualMachine("vm-42"), encrypted_vm_props(), {})
    associations = {("vm-42", None): ["policy-enc"], ("vm-42", 2000): ["policy-enc"], ("vm-42", 2001): []}
    facts = vm_crypto_facts(item, "/DC1/vm/app01", associations, {"policy-enc": "VM Encryption Policy"})
    assert facts["encrypted"] is True
    assert facts["key_id"] == {"key_id": "key-home", "provider_id": "kms-cluster-1"}
    assert facts["encryption_bundle_present"] is True
    assert facts["vm_home_storage_policy"] == {"id": "policy-enc", "name": "VM Encryption Policy"}
    assert facts["firmware"] == "efi" and facts["secure_boot"] is True and facts["vtpm_present"] is True
    assert facts["nvram_path"] == "[ds1] app01/app01.nvram"
    assert facts["nvram_path_source"] == "extra_config"
    assert facts["cbt_enabled"] is True
    assert facts["snapshot_count"] == 2
    assert facts["has_encrypted_disks"] is True
    first, second = facts["disks"]
    assert first == {"key": 2000, "label": "Hard disk 1", "file": "[ds1] app01/app01.vmdk",
                     "capacity_bytes": 8 * 1024 ** 3, "controller_key": 1000, "unit_number": 0,
                     "backing_type": "FlatVer2BackingInfo", "encrypted": True,
                     "key_id": {"key_id": "key-disk0", "provider_id": "kms-cluster-1"},
                     "storage_policy": {"id": "policy-enc", "name": "VM Encryption Policy"}}
    assert second["encrypted"] is False and second["key_id"] is None and second["storage_policy"] is None


def test_bundle_value_never_appears_in_facts():
    item = ObjectProperties(vim.VirtualMachine("vm-42"), encrypted_vm_props(), {})
    facts = vm_crypto_facts(item, "/DC1/vm/app01", {}, {})
    assert "vmware:key/list/secret" not in repr(facts)


def test_unencrypted_vm_facts():
    props = {"name": "plain", "config.hardware.device": [disk(2000, "[ds1] plain/plain.vmdk")],
             "config.files.vmPathName": "[ds1] plain/plain.vmx", "config.firmware": "bios",
             "runtime.powerState": "poweredOn"}
    facts = vm_crypto_facts(ObjectProperties(vim.VirtualMachine("vm-7"), props, {}), "/DC1/vm/plain", {}, {})
    assert facts["encrypted"] is False and facts["key_id"] is None
    assert facts["encryption_bundle_present"] is False
    assert facts["has_encrypted_disks"] is False
    assert facts["secure_boot"] is False and facts["vtpm_present"] is False
    assert facts["snapshot_count"] == 0
    assert facts["nvram_path"] == "[ds1] plain/plain.nvram" and facts["nvram_path_source"] == "default_name"


def test_nvram_path_prefers_the_file_layout():
    layout = [vim.vm.FileLayoutEx.FileInfo(key=1, name="[ds2] moved/app01.nvram", type="nvram", size=8684)]
    assert nvram_path("[ds1] app01/app01.vmx", "app01", {"nvram": "other.nvram"}, layout) == (
        "[ds2] moved/app01.nvram", "layout")


def test_nvram_path_keeps_an_absolute_vmx_option():
    assert nvram_path("[ds1] app01/app01.vmx", "app01", {"nvram": "[ds3] x/y.nvram"}, None) == (
        "[ds3] x/y.nvram", "extra_config")
    assert nvram_path(None, "app01", {}, None) == (None, None)
