# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VM's configuration as a plain record, read through the PropertyCollector.

The guide asks backup agents not to copy the VMX but to keep a record of the
ConfigInfo structures, and to save ``ConfigInfo.keyId``, the
``encryption.bundle`` of ``ConfigInfo.extraConfig`` and the storage policies
with every backup, so that restore can give them back in a new ConfigSpec.

``capture_vm_config`` reads, with explicit property paths only, either the
VM's ``config`` or - when a snapshot is given - the snapshot's ``config``,
so configuration and disks describe the same moment. The record holds what
rebuilding a ConfigSpec needs:

- identity and hardware: name, guestId, hardware version, uuids, numCPU,
  coresPerSocket, memoryMB, annotation, CBT state;
- firmware and boot options (efiSecureBootEnabled, boot delay, retry, order):
  a UEFI VM whose NVRAM is lost needs Secure Boot set again;
- every device with its key, controller key, unit number and, for
  controllers, bus number, so disks come back at the same SCSI/SATA/NVMe
  positions; disks with capacity, backing file, disk mode, thin/eager
  provisioning, sharing, changeId and the backing's keyId (key id and
  provider): the guide lets restore reuse each disk's key;
- NICs with their network backing (standard network name or distributed
  port group), MAC address type and address;
- whether a vTPM is present (its secrets live in the encrypted
  configuration: they survive only with the original key and bundle);
- ``extraConfig`` as a list of key/value pairs, WITHOUT ``encryption.bundle``;
- ``keyId`` of the VM home, ``files`` (vmPathName, snapshot, suspend and log
  directories) and the NVRAM's datastore path.

The ``encryption.bundle`` value is returned apart, in ``secrets``, which the
caller stores only inside the encrypted repository; the record only says
whether there was one. Everything returned is plain JSON (no pyVmomi objects).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import (
    ENCRYPTION_BUNDLE_KEY,
    disk_capacity,
    key_id_facts,
    nvram_path,
    policy_of,
    storage_policies_of,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import ObjectProperties, retrieve_one

RECORD_FORMAT = 1

# Paths below "config" of a VirtualMachine or a VirtualMachineSnapshot.
# Explicit paths only: pyVmomi cannot read a simulated VM's whole runtime/summary.
CONFIG_PATHS = (
    "config.name",
    "config.guestId",
    "config.guestFullName",
    "config.version",
    "config.uuid",
    "config.instanceUuid",
    "config.annotation",
    "config.firmware",
    "config.bootOptions",
    "config.hardware.numCPU",
    "config.hardware.numCoresPerSocket",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.extraConfig",
    "config.keyId",
    "config.files",
    "config.changeTrackingEnabled",
)
# Of the VM itself: the NVRAM file is the VM's, with or without a snapshot.
VM_PATHS = ("name", "layoutEx.file")


def _type_name(obj):
    """vSphere's type name of a data object: "VirtualDiskFlatVer2BackingInfo"."""
    return getattr(type(obj), "_wsdlName", None) or type(obj).__name__.split(".")[-1]


def _moid(ref):
    return ref._moId if ref is not None else None


def _boot_options(options):
    if options is None:
        return None
    order = []
    for device in options.bootOrder or []:
        entry = {"type": _type_name(device)}
        if getattr(device, "deviceKey", None) is not None:
            entry["device_key"] = device.deviceKey
        order.append(entry)
    return {
        "efi_secure_boot_enabled": bool(options.efiSecureBootEnabled),
        "boot_delay": options.bootDelay,
        "enter_bios_setup": options.enterBIOSSetup,
        "boot_retry_enabled": options.bootRetryEnabled,
        "boot_retry_delay": options.bootRetryDelay,
        "network_boot_protocol": options.networkBootProtocol or None,
        "boot_order": order,
    }


def _backing(backing):
    """The backing fields a ConfigSpec needs again, for any device type."""
    if backing is None:
        return None
    record = {"type": _type_name(backing)}
    for attribute, name in (("fileName", "file_name"), ("deviceName", "device_name"), ("diskMode", "disk_mode"),
                            ("thinProvisioned", "thin_provisioned"), ("eagerlyScrub", "eagerly_scrub"),
                            ("sharing", "sharing"), ("uuid", "uuid"), ("changeId", "change_id"),
                            ("compatibilityMode", "compatibility_mode"), ("lunUuid", "lun_uuid")):
        value = getattr(backing, attribute, None)
        if value is not None and value != "":
            record[name] = value
    if hasattr(backing, "datastore"):
        record["datastore"] = _moid(backing.datastore)
    if hasattr(backing, "keyId"):
        record["key_id"] = key_id_facts(backing.keyId)
    if hasattr(backing, "network"):
        record["network"] = _moid(backing.network)
    port = getattr(backing, "port", None)
    if port is not None:
        record["port"] = {"switch_uuid": port.switchUuid, "portgroup_key": port.portgroupKey}
    return record


def _device(device):
    info = device.deviceInfo
    connectable = device.connectable
    record = {
        "key": device.key,
        "type": _type_name(device),
        "label": info.label if info is not None else None,
        "controller_key": device.controllerKey,
        "unit_number": device.unitNumber,
        "backing": _backing(device.backing),
    }
    if connectable is not None:
        record["connectable"] = {"start_connected": bool(connectable.startConnected),
                                 "allow_guest_control": bool(connectable.allowGuestControl),
                                 "connected": bool(connectable.connected)}
    if isinstance(device, vim.vm.device.VirtualController):
        record["bus_number"] = device.busNumber
        record["device_keys"] = sorted(device.device or [])
    if isinstance(device, vim.vm.device.VirtualSCSIController):
        record["shared_bus"] = device.sharedBus
        record["scsi_controller_unit_number"] = device.scsiCtlrUnitNumber
    if isinstance(device, vim.vm.device.VirtualDisk):
        record["capacity_bytes"] = disk_capacity(device)
    if isinstance(device, vim.vm.device.VirtualEthernetCard):
        record["address_type"] = device.addressType
        record["mac_address"] = device.macAddress
        record["wake_on_lan_enabled"] = device.wakeOnLanEnabled
    return record


def _disk(device):
    """The disk view a restore and backup_info use (a subset of its device record)."""
    backing = device.backing
    key_id = key_id_facts(getattr(backing, "keyId", None))
    return {
        "key": device.key,
        "label": device.deviceInfo.label if device.deviceInfo is not None else None,
        "controller_key": device.controllerKey,
        "unit_number": device.unitNumber,
        "capacity_bytes": disk_capacity(device),
        "file_name": getattr(backing, "fileName", None),
        "disk_mode": getattr(backing, "diskMode", None),
        "thin_provisioned": getattr(backing, "thinProvisioned", None),
        "backing_type": _type_name(backing) if backing is not None else None,
        "encrypted": key_id is not None,
        "key_id": key_id,
    }


def _nic(device):
    backing = _backing(device.backing) or {}
    return {
        "key": device.key,
        "type": _type_name(device),
        "label": device.deviceInfo.label if device.deviceInfo is not None else None,
        "network_name": backing.get("device_name"),
        "network": backing.get("network"),
        "port": backing.get("port"),
        "backing_type": backing.get("type"),
        "address_type": device.addressType,
        "mac_address": device.macAddress,
    }


def _files(files):
    if files is None:
        return {}
    return {"vm_path_name": files.vmPathName, "snapshot_directory": files.snapshotDirectory,
            "suspend_directory": files.suspendDirectory, "log_directory": files.logDirectory}


def build_config_record(config_props, vm_props, vm_moid, snapshot_moid=None):
    """(record, secrets) from retrieved paths (a pure function: unit tests feed it recorded objects).

    ``config_props`` maps the CONFIG_PATHS to their values (absent = unset),
    ``vm_props`` maps the VM_PATHS.
    """
    devices = sorted(config_props.get("config.hardware.device") or [], key=lambda device: device.key)
    extra_config = [(option.key, option.value) for option in config_props.get("config.extraConfig") or []]
    bundle = None
    plain_extra_config = []
    for key, value in extra_config:
        if key == ENCRYPTION_BUNDLE_KEY:
            bundle = value
        else:
            plain_extra_config.append({"key": key, "value": value})
    plain_extra_config.sort(key=lambda option: option["key"])
    files = config_props.get("config.files")
    name = config_props.get("config.name") or vm_props.get("name")
    nvram, nvram_source = nvram_path(files.vmPathName if files is not None else None, vm_props.get("name") or name,
                                     dict(extra_config), vm_props.get("layoutEx.file"))
    key_id = key_id_facts(config_props.get("config.keyId"))
    disks = [_disk(device) for device in devices if isinstance(device, vim.vm.device.VirtualDisk)]
    record = {
        "format": RECORD_FORMAT,
        "source": {"vm": vm_moid, "snapshot": snapshot_moid},
        "name": name,
        "guest_id": config_props.get("config.guestId"),
        "guest_full_name": config_props.get("config.guestFullName"),
        "version": config_props.get("config.version"),
        "uuid": config_props.get("config.uuid"),
        "instance_uuid": config_props.get("config.instanceUuid"),
        "annotation": config_props.get("config.annotation") or None,
        "hardware": {
            "num_cpu": config_props.get("config.hardware.numCPU"),
            "cores_per_socket": config_props.get("config.hardware.numCoresPerSocket"),
            "memory_mb": config_props.get("config.hardware.memoryMB"),
        },
        "firmware": config_props.get("config.firmware"),
        "boot_options": _boot_options(config_props.get("config.bootOptions")),
        "change_tracking_enabled": bool(config_props.get("config.changeTrackingEnabled")),
        "encrypted": key_id is not None,
        "key_id": key_id,
        "encryption_bundle_present": bool(bundle),
        "files": _files(files),
        "nvram_path": nvram,
        "nvram_path_source": nvram_source,
        "vtpm_present": any(isinstance(device, vim.vm.device.VirtualTPM) for device in devices),
        "devices": [_device(device) for device in devices],
        "disks": disks,
        "nics": [_nic(device) for device in devices if isinstance(device, vim.vm.device.VirtualEthernetCard)],
        "extra_config": plain_extra_config,
    }
    return record, {"encryption_bundle": bundle or None}


def capture_vm_config(client, vm, snapshot=None):
    """(record, secrets) of ``vm``'s configuration, from ``snapshot``'s config when given.

    ``secrets`` is {"encryption_bundle": value or None}: store it only in the
    encrypted repository, never in a result.
    """
    source = snapshot if snapshot is not None else vm
    config_props = retrieve_one(client, source, CONFIG_PATHS).props
    vm_props = retrieve_one(client, vm, VM_PATHS).props
    return build_config_record(config_props, vm_props, vm._moId, snapshot._moId if snapshot is not None else None)


def capture_storage_policies(client, vm, disk_keys):
    """Storage policies of the VM home and of each disk (device key), from PBM.

    Returns ({"vm_home": policy or None, "disks": {device key: policy or None}}, warnings):
    a policy is {"id", "name"} (name None when PBM does not know the id); warnings name each policy PBM could not
    resolve, or say that PBM could not be read at all (then every policy is None).
    """
    item = ObjectProperties(vm, {"config.hardware.device": [vim.vm.device.VirtualDisk(key=key) for key in disk_keys]}, {})
    policies = {"vm_home": None, "disks": dict((key, None) for key in disk_keys)}
    warnings = []
    try:
        associations, names = storage_policies_of(client, [item])
    except VmcryptError as error:
        return policies, ["storage policies of %s not read: %s" % (vm._moId, error)]
    except Exception as error:  # SPBM is a separate service; its outage must not stop a capture
        return policies, ["storage policies of %s not read: %s"
                          % (vm._moId, getattr(error, "msg", None) or type(error).__name__)]
    owners = [(None, "the VM home")] + [(key, "disk %d" % key) for key in disk_keys]
    for key, what in owners:
        policy = policy_of(associations.get((vm._moId, key)), names)
        if policy is not None and policy["name"] is None:
            warnings.append("storage policy %s of %s of %s is not known to PBM: restore must be given a policy"
                            % (policy["id"], what, vm._moId))
        if key is None:
            policies["vm_home"] = policy
        else:
            policies["disks"][key] = policy
    return policies, warnings
