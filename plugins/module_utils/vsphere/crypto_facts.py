# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Encryption facts of VMs, from PropertyCollector reads of many VMs at once and one PBM call.

What a backup of an encrypted VM must carry (the guide's "Recommendations for
VM Home"): ConfigInfo.keyId, the encryption.bundle of extraConfig, the
storage policies of the home and of each disk, and the NVRAM file.  These
facts say where each one is; the bundle's value is never returned, only that
it exists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import posixpath
import re

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import (
    retrieve,
    retrieve_all,
    without_cycle_collection,
)

ENCRYPTION_BUNDLE_KEY = "encryption.bundle"

# Explicit paths only: pyVmomi cannot read a simulated VM's whole runtime/summary.
VM_PATHS = (
    "name",
    "parent",
    "config.uuid",
    "config.instanceUuid",
    "config.template",
    "config.guestId",
    "config.keyId",
    "config.firmware",
    "config.bootOptions.efiSecureBootEnabled",
    "config.hardware.device",
    "config.extraConfig",
    "config.files.vmPathName",
    "config.changeTrackingEnabled",
    "layoutEx.file",
    "snapshot",
    "runtime.powerState",
)


# What the facts read of two long lists: the devices (controllers, NICs, ... are two thirds of an
# answer's XML) and the file layout (only the NVRAM file; the others are a sixth).
READ_DEVICE_TYPES = frozenset((b"VirtualDisk", b"VirtualTPM"))
_DEVICE = (b"<VirtualDevice", b"</VirtualDevice>")
_LAYOUT_FILE = (b"<VirtualMachineFileLayoutExFileInfo", b"</VirtualMachineFileLayoutExFileInfo>")
_NVRAM_TYPE = b"<type>nvram</type>"
_XSI_TYPE = re.compile(br'\s[A-Za-z_][-.\w]*:type="([^"]*)"')


def _read_device(answer, start, tag_end, end):
    kind = _XSI_TYPE.search(answer, start, tag_end)
    return kind is None or kind.group(1).rsplit(b":", 1)[-1] in READ_DEVICE_TYPES  # untyped: kept, to be sure


def _nvram_file(answer, start, tag_end, end):
    return answer.find(_NVRAM_TYPE, tag_end, end) >= 0


def _cut_items(answer, tags, keep):
    """``answer`` without the elements named by ``tags`` (start, end) for which ``keep`` is false.

    keep(answer, start, end of the start tag, end) sees each element in place.
    These elements never nest; one not closed is left, with all after it.
    """
    start_tag, end_tag = tags
    parts = []
    position = 0
    while True:
        start = answer.find(start_tag, position)
        if start < 0:
            break
        tag_end = answer.find(b">", start)
        if tag_end < 0:
            break
        if answer[start + len(start_tag):start + len(start_tag) + 1] not in (b" ", b">", b"/"):
            parts.append(answer[position:tag_end + 1])  # a longer name that starts alike
            position = tag_end + 1
            continue
        if answer[tag_end - 1:tag_end] == b"/":
            end = tag_end + 1
        else:
            close = answer.find(end_tag, tag_end)
            if close < 0:
                break
            end = close + len(end_tag)
        parts.append(answer[position:end] if keep(answer, start, tag_end, end) else answer[position:start])
        position = end
    parts.append(answer[position:])
    return b"".join(parts)


def without_unread_items(answer):
    """A RetrievePropertiesEx answer (SOAP bytes) without the list items the facts do not read.

    Items of config.hardware.device are ``<VirtualDevice xsi:type="...">``
    elements: one whose type is not in READ_DEVICE_TYPES is cut out whole.
    Items of layoutEx.file are ``<VirtualMachineFileLayoutExFileInfo>``: all
    but the NVRAM file's are cut out.  Anything not written that way is left
    as it is (decoded as before, only slower).
    """
    if _DEVICE[0] in answer:
        answer = _cut_items(answer, _DEVICE, _read_device)
    if _LAYOUT_FILE[0] in answer:
        answer = _cut_items(answer, _LAYOUT_FILE, _nvram_file)
    return answer


def key_id_facts(crypto_key_id):
    """{"key_id", "provider_id"} of a CryptoKeyId, or None when unset."""
    if crypto_key_id is None or not crypto_key_id.keyId:
        return None
    provider = crypto_key_id.providerId
    return {"key_id": crypto_key_id.keyId, "provider_id": provider.id if provider is not None else None}


def disk_capacity(disk):
    """Bytes of a VirtualDisk device (capacityInKB where capacityInBytes is unset, as on older hosts)."""
    return disk.capacityInBytes or (disk.capacityInKB or 0) * 1024


def any_encrypted(home_key_id, devices):
    """Whether a VM's home (ConfigInfo.keyId) or any of its disks is encrypted."""
    if home_key_id is not None and getattr(home_key_id, "keyId", None):
        return True
    return any(isinstance(device, vim.vm.device.VirtualDisk) and key_id_facts(getattr(device.backing, "keyId", None))
               for device in devices or [])


def _datastore_dir(datastore_path):
    # "[ds1] app01/app01.vmx" -> "[ds1] app01"
    return posixpath.dirname(datastore_path) if datastore_path else None


def _is_datastore_path(path):
    return path.startswith("[")


def nvram_path(vmx_path, vm_name, extra_config, layout_files):
    """Datastore path of the NVRAM file and where that answer came from.

    The file layout is authoritative; otherwise the VMX's ``nvram`` option
    (relative to the VM directory); otherwise ESXi's default name.
    """
    for layout_file in layout_files or []:
        if layout_file.type == "nvram":
            return layout_file.name, "layout"
    vm_dir = _datastore_dir(vmx_path)
    configured = extra_config.get("nvram")
    if configured:
        if _is_datastore_path(configured):
            return configured, "extra_config"
        return ("%s/%s" % (vm_dir, configured) if vm_dir else None), "extra_config"
    if vm_dir is None:
        return None, None
    return "%s/%s.nvram" % (vm_dir, vm_name), "default_name"


def policy_of(profile_ids, policy_names):
    if not profile_ids:
        return None
    profile_id = profile_ids[0]
    return {"id": profile_id, "name": policy_names.get(profile_id)}


def _snapshot_count(snapshot_info):
    if snapshot_info is None:
        return 0
    pending = list(snapshot_info.rootSnapshotList or [])
    count = 0
    while pending:
        tree = pending.pop()
        count += 1
        pending.extend(tree.childSnapshotList or [])
    return count


def disk_facts(disk, vm_moid, associations, policy_names):
    backing = disk.backing
    info = disk.deviceInfo
    key_id = key_id_facts(getattr(backing, "keyId", None))
    capacity = disk_capacity(disk)
    return {
        "key": disk.key,
        "label": info.label if info is not None else None,
        "file": getattr(backing, "fileName", None),
        "capacity_bytes": capacity,
        "controller_key": disk.controllerKey,
        "unit_number": disk.unitNumber,
        "backing_type": type(backing).__name__.split(".")[-1] if backing is not None else None,
        "encrypted": key_id is not None,
        "key_id": key_id,
        "storage_policy": policy_of(associations.get((vm_moid, disk.key)), policy_names),
    }


def vm_crypto_facts(item, inventory_path, associations, policy_names):
    """Facts of one VM from its retrieved properties (a pure function)."""
    props = item.props
    devices = props.get("config.hardware.device") or []
    extra_config = dict((option.key, option.value) for option in props.get("config.extraConfig") or [])
    vmx_path = props.get("config.files.vmPathName")
    name = props.get("name")
    disks = [disk_facts(device, item.moid, associations, policy_names)
             for device in devices if isinstance(device, vim.vm.device.VirtualDisk)]
    nvram, nvram_source = nvram_path(vmx_path, name, extra_config, props.get("layoutEx.file"))
    key_id = key_id_facts(props.get("config.keyId"))
    secure_boot = props.get("config.bootOptions.efiSecureBootEnabled")
    return {
        "name": name,
        "moid": item.moid,
        "path": inventory_path,
        "instance_uuid": props.get("config.instanceUuid"),
        "bios_uuid": props.get("config.uuid"),
        "template": bool(props.get("config.template")),
        "guest_id": props.get("config.guestId"),
        "power_state": props.get("runtime.powerState"),
        "encrypted": key_id is not None,
        "key_id": key_id,
        "encryption_bundle_present": bool(extra_config.get(ENCRYPTION_BUNDLE_KEY)),
        "has_encrypted_disks": any(disk["encrypted"] for disk in disks),
        "vm_home_storage_policy": policy_of(associations.get((item.moid, None)), policy_names),
        "firmware": props.get("config.firmware"),
        "secure_boot": bool(secure_boot),
        "vtpm_present": any(isinstance(device, vim.vm.device.VirtualTPM) for device in devices),
        "vmx_path": vmx_path,
        "nvram_path": nvram,
        "nvram_path_source": nvram_source,
        "cbt_enabled": bool(props.get("config.changeTrackingEnabled")),
        "snapshot_count": _snapshot_count(props.get("snapshot")),
        "disks": disks,
    }


def collect_vm_crypto_facts(client, finder, vms=None, container=None, storage_policies=True):
    """Facts for ``vms`` (references) or for every VM below ``container``.

    Returns (facts sorted by inventory path, warnings).
    """
    with without_cycle_collection():
        return _collect_vm_crypto_facts(client, finder, vms, container, storage_policies)


def _collect_vm_crypto_facts(client, finder, vms, container, storage_policies):
    if vms is None:
        items = retrieve_all(client, vim.VirtualMachine, VM_PATHS, container=container,
                             answer_filter=without_unread_items)
    else:
        items = retrieve(client, vim.VirtualMachine, VM_PATHS, objects=vms)
    items = [item for item in items if "name" in item.props]  # VMs deleted while we read
    warnings = []
    associations, policy_names = {}, {}
    if storage_policies and items:
        try:
            associations, policy_names = storage_policies_of(client, items)
        except VmcryptError as error:  # SPBM is a separate service; its outage must not hide the other facts
            warnings.append("storage policies not read: %s" % error)
        except Exception as error:  # a fault or HTTP error after the session was accepted
            warnings.append("storage policies not read: the storage policy service answered %s: %s"
                            % (type(error).__name__, " ".join(str(error).split())))
    facts = [vm_crypto_facts(item, finder.vm_path(item.get("name"), item.get("parent")),
                             associations, policy_names)
             for item in items]
    facts.sort(key=lambda fact: (fact["path"], fact["moid"]))
    return facts, warnings


def vm_crypto_facts_of(client, finder, vm, storage_policies=False):
    """The facts of one VM reference."""
    return collect_vm_crypto_facts(client, finder, vms=[vm], storage_policies=storage_policies)[0][0]


def storage_policies_of(client, items):
    vm_disks = dict((item.moid, [device.key for device in item.get("config.hardware.device") or []
                                 if isinstance(device, vim.vm.device.VirtualDisk)])
                    for item in items)
    pbm_client = client.pbm()
    associations = pbm_client.associated_profiles(vm_disks)
    profile_ids = set()
    for ids in associations.values():
        profile_ids.update(ids)
    return associations, pbm_client.profiles(profile_ids)
