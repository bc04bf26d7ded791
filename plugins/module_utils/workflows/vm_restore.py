# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create the VM of a backup, as ``restore_plan`` decided, with blank disks and (under the original key) its NVRAM.

The VDDK guide's section on encrypted VMs: the keyId and the
``encryption.bundle`` "should be provided in the new VirtualMachine
ConfigSpec. This will ensure that the recovered VM metadata files are
protected with the same key as the original VM", and the NVRAM "can be
handled as it was in previous releases, using HTTP download and upload".

A ConfigSpec has no ``keyId`` field: the key travels in ``ConfigSpec.crypto``
(vSphere Web Services API, ``vim.encryption.CryptoSpec*``, since 6.5).
``CryptoSpecRegister`` (a ``CryptoSpecNoOp``) names "the key the VM/disk is
already encrypted with" and "indicates that the operation requires keys to
be sent but the encryption settings ... should not be modified": it is for
registering files that exist already. A VM created anew has no encrypted
files yet, so its home is encrypted with the saved key:
``CryptoSpecEncrypt(cryptoKeyId=<saved ConfigInfo.keyId>)``, with the saved
``encryption.bundle`` in ``extraConfig`` and the planned policy as
``vmProfile``; each disk planned under its own saved key gets
``backing.crypto = CryptoSpecEncrypt(<saved disk keyId>)``.

Per key mode:

- ``original``: the above; the saved NVRAM is uploaded over the datastore's
  HTTPS interface once the VM exists.
- ``new`` (also the lost-key path): "specify only a VM encryption storage
  policy for the VM and its disks" - ``vmProfile`` and each disk's
  ``profile``, no crypto spec with a key, no bundle; vSphere gets new keys
  and makes a generic NVRAM (nothing is uploaded).
- ``none``: no crypto spec, no bundle, no vTPM; the administrator's policy
  (if any) as profiles.

``build_config_spec`` is the ConfigSpec as plain data, from the configuration
record (``vsphere/vm_config.py``) and the plan (a pure function, unit-tested);
``to_vim`` turns it into pyVmomi objects; ``restore_vm`` creates the VM and
removes it again when any later step fails, so no half-made VM is left.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re

try:
    from pyVmomi import VmomiSupport, vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AmbiguousError,
    InvalidArgumentError,
    NotFoundError,
    VmcryptError,
    VmExistsError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import (
    ENCRYPTION_BUNDLE_KEY,
    disk_capacity,
    nvram_path,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.datastore_files import upload
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve, retrieve_one
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.tasks import wait_for_task
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import plan_restore

MASK = "********"
# extraConfig of a VM made by vm_restore: the backup it was made from. Only a VM carrying it is ever removed by
# undo_restore, and the administrator sees where the VM came from.
RESTORED_FROM_KEY = "vmcrypt.restoredFrom"


# Created by vSphere with every VM: never added again.
DEFAULT_DEVICES = ("VirtualIDEController", "VirtualPCIController", "VirtualPS2Controller", "VirtualSIOController",
                   "VirtualKeyboard", "VirtualPointingDevice", "VirtualMachineVideoCard", "VirtualMachineVMCIDevice")
CONTROLLERS = ("ParaVirtualSCSIController", "VirtualLsiLogicController", "VirtualLsiLogicSASController",
               "VirtualBusLogicController", "VirtualAHCIController", "VirtualNVMEController")
SCSI_CONTROLLERS = CONTROLLERS[:4]
NICS = ("VirtualVmxnet3", "VirtualVmxnet2", "VirtualE1000", "VirtualE1000e", "VirtualPCNet32", "VirtualVmxnet")
# extraConfig a host writes for the VM it runs (paths, statistics, identities): not carried to a new VM.
HOST_EXTRA_CONFIG = re.compile(r"^(nvram|migrate\.|vmxstats\.|sched\.swap\.derivedName|monitor\.phys_bits_used|"
                               r"uuid\.|vc\.uuid|checkpoint\.|numa\.autosize|softPowerOff|cleanShutdown|"
                               r"vmware\.tools\.|toolsInstallManager\.|pciBridge|scsi\d|sata\d|nvme\d|ide\d|"
                               r"ethernet\d|guestinfo\.)")
BOOT_DEVICES = {"VirtualMachineBootOptionsBootableDiskDevice": "device_key",
                "VirtualMachineBootOptionsBootableEthernetDevice": "device_key",
                "VirtualMachineBootOptionsBootableCdromDevice": None,
                "VirtualMachineBootOptionsBootableFloppyDevice": None}


# -- the ConfigSpec as plain data ------------------------------------------------------------------------------

def _crypto_key(key):
    return {"keyId": key["key_id"], "providerId": {"id": key["provider_id"]} if key.get("provider_id") else None}


def _profile(policy):
    if not policy:
        return None
    return [{"_type": "VirtualMachineDefinedProfileSpec", "profileId": policy["id"]}]


def _boot_options(options):
    if not options:
        return None
    order = []
    for entry in options.get("boot_order") or []:
        if entry.get("type") in BOOT_DEVICES:
            item = {"_type": entry["type"]}
            if BOOT_DEVICES[entry["type"]]:
                item["deviceKey"] = entry.get("device_key")
            order.append(item)
    plain = {"efiSecureBootEnabled": options.get("efi_secure_boot_enabled"), "bootDelay": options.get("boot_delay"),
             "enterBIOSSetup": options.get("enter_bios_setup"), "bootRetryEnabled": options.get("boot_retry_enabled"),
             "bootRetryDelay": options.get("boot_retry_delay"),
             "networkBootProtocol": options.get("network_boot_protocol"), "bootOrder": order or None}
    return dict((name, value) for name, value in plain.items() if value is not None)


def _controller(device):
    plain = {"_type": device["type"], "key": device["key"], "busNumber": device.get("bus_number") or 0}
    if device["type"] in SCSI_CONTROLLERS:
        plain["sharedBus"] = device.get("shared_bus") or "noSharing"
    return {"operation": "add", "device": plain}


def _disk_spec(disk, decision, datastore, notes):
    backing = {"_type": "VirtualDiskFlatVer2BackingInfo", "fileName": "[%s]" % datastore,
               "diskMode": disk.get("disk_mode") or "persistent",
               "thinProvisioned": bool(disk.get("thin_provisioned", True))}
    if disk.get("backing_type") and disk["backing_type"] != "VirtualDiskFlatVer2BackingInfo":
        notes["warnings"].append("disk %s had a %s backing: it is created as a flat virtual disk"
                                 % (disk["key"], disk["backing_type"]))
    capacity = int(decision.get("capacity_bytes") or disk["capacity_bytes"])
    spec = {"operation": "add", "fileOperation": "create", "device": {
        "_type": "VirtualDisk", "key": disk["key"], "controllerKey": disk["controller_key"],
        "unitNumber": disk["unit_number"], "capacityInBytes": capacity, "capacityInKB": capacity // 1024,
        "backing": backing}}
    profile = _profile(decision.get("storage_policy"))
    if profile:
        spec["profile"] = profile
    if decision.get("key_mode") == "original" and decision.get("key_id"):
        spec["backing"] = {"crypto": {"_type": "CryptoSpecEncrypt", "cryptoKeyId": _crypto_key(decision["key_id"])}}
    return spec


def _nic_spec(nic, device, networks, available, notes):
    old = nic.get("network_name") or (nic.get("port") or {}).get("portgroup_key") or nic.get("network")
    wanted = (networks or {}).get(old, old)
    found = (available or {}).get(wanted)
    connectable = dict((device or {}).get("connectable") or {"start_connected": True, "allow_guest_control": True})
    plain = {"_type": nic["type"], "key": nic["key"], "addressType": "generated"}
    if nic.get("address_type") == "manual" and nic.get("mac_address"):
        plain.update(addressType="manual", macAddress=nic["mac_address"])
    if found is None:
        notes["warnings"].append("network adapter %s: network '%s' does not exist here; the adapter is left "
                                 "disconnected (map it with networks)" % (nic.get("label") or nic["key"], wanted))
        plain["backing"] = {"_type": "VirtualEthernetCardNetworkBackingInfo", "deviceName": wanted or ""}
        connectable = {"start_connected": False, "allow_guest_control": True, "connected": False}
    elif found["type"] == "distributed":
        plain["backing"] = {"_type": "VirtualEthernetCardDistributedVirtualPortBackingInfo", "port": {
            "switchUuid": found["switch_uuid"], "portgroupKey": found["portgroup_key"]}}
    else:
        plain["backing"] = {"_type": "VirtualEthernetCardNetworkBackingInfo", "deviceName": wanted,
                            "network": {"_moref": "Network", "value": found["moid"]}}
    plain["connectable"] = {"startConnected": bool(connectable.get("start_connected")),
                            "allowGuestControl": bool(connectable.get("allow_guest_control", True)),
                            "connected": False}
    return {"operation": "add", "device": plain}


def disks_only_record(disks):
    """The configuration a VM is rebuilt from when its backup holds disks only (no metadata_capture).

    ``disks`` is [(key, capacity_bytes)]. Each disk keeps its key, on paravirtual SCSI controllers in key order
    (15 disks each: unit 7 is the controller's own); one vCPU, 1024 MB, a generic 64-bit guest, BIOS, no network
    adapter. Returns (record, warning).
    """
    units = [unit for unit in range(16) if unit != 7]
    controllers, placed = [], []
    for index, (key, capacity) in enumerate(sorted((int(key), int(capacity)) for key, capacity in disks)):
        bus, unit = divmod(index, len(units))
        if bus == len(controllers):
            controllers.append({"key": 1000 + bus, "type": "ParaVirtualSCSIController", "bus_number": bus})
        placed.append({"key": key, "controller_key": 1000 + bus, "unit_number": units[unit],
                       "capacity_bytes": capacity})
    record = {"guest_id": "otherGuest64", "hardware": {"num_cpu": 1, "memory_mb": 1024}, "devices": controllers,
              "disks": placed, "nics": []}
    warning = ("the backup holds no VM configuration (metadata_capture was not run): the VM is made from its disks "
               "alone - %d disk(s) on paravirtual SCSI, 1 vCPU, 1024 MB, guest otherGuest64, BIOS firmware, no "
               "network adapter; set its hardware, firmware and networks before powering it on" % len(placed))
    return record, warning


def build_config_spec(record, plan, name, datastore, bundle=None, networks=None, available_networks=None,
                      backup_id=None):
    """(ConfigSpec as plain data, notes) for the VM of ``record`` (vm_config's record) as ``plan`` decided.

    ``bundle`` is the saved encryption.bundle (used only when the plan restores it), ``networks`` maps an old
    network name to a new one, ``available_networks`` maps the names that exist here to {"type": "standard",
    "moid"} or {"type": "distributed", "switch_uuid", "portgroup_key"}. Polymorphic values carry "_type" (the
    vSphere type name), managed objects {"_moref", "value"}. ``notes`` = {"warnings", "devices_not_restored",
    "extra_config_skipped"}. ``backup_id`` marks the VM as made by the restore of that backup
    (``RESTORED_FROM_KEY``), which is what lets a later step remove it, and nothing else. Pure: no I/O.
    """
    if not record:
        raise InvalidArgumentError("the backup holds no VM configuration (metadata_capture was not run): the VM "
                                   "cannot be rebuilt from it")
    home = plan["vm_home"]
    mode = home["key_mode"]
    notes = {"warnings": [], "devices_not_restored": [], "extra_config_skipped": []}
    hardware = record.get("hardware") or {}
    spec = {"name": name, "guestId": record.get("guest_id"), "version": record.get("version"),
            "numCPUs": hardware.get("num_cpu"), "numCoresPerSocket": hardware.get("cores_per_socket"),
            "memoryMB": hardware.get("memory_mb"), "annotation": record.get("annotation"),
            "firmware": record.get("firmware"), "bootOptions": _boot_options(record.get("boot_options")),
            "changeTrackingEnabled": record.get("change_tracking_enabled") or None,
            "files": {"vmPathName": "[%s]" % datastore}}
    extra = []
    for option in record.get("extra_config") or []:
        if option["key"] in (ENCRYPTION_BUNDLE_KEY, RESTORED_FROM_KEY):
            continue
        if HOST_EXTRA_CONFIG.match(option["key"]):
            notes["extra_config_skipped"].append(option["key"])
        else:
            extra.append({"key": option["key"], "value": option["value"]})
    if home["encryption_bundle"] == "restored":
        if not bundle:
            raise InvalidArgumentError("the plan restores the encryption.bundle but the backup holds none")
        if not home.get("key_id"):
            raise InvalidArgumentError("the plan restores the encryption.bundle without a keyId")
        extra.append({"key": ENCRYPTION_BUNDLE_KEY, "value": bundle})
    if backup_id:
        extra.append({"key": RESTORED_FROM_KEY, "value": backup_id})
    if mode == "original" and home.get("key_id"):
        spec["crypto"] = {"_type": "CryptoSpecEncrypt", "cryptoKeyId": _crypto_key(home["key_id"])}
    spec["extraConfig"] = extra or None
    spec["vmProfile"] = _profile(home.get("storage_policy"))

    devices = dict((device["key"], device) for device in record.get("devices") or [])
    decisions = dict((str(disk["key"]), disk) for disk in plan.get("disks") or [])
    changes = []
    for device in sorted(devices.values(), key=lambda item: item["key"]):
        if device["type"] in CONTROLLERS:
            changes.append(_controller(device))
    for disk in sorted(record.get("disks") or [], key=lambda item: item["key"]):
        changes.append(_disk_spec(disk, decisions.get(str(disk["key"]), {}), datastore, notes))
    for nic in sorted(record.get("nics") or [], key=lambda item: item["key"]):
        changes.append(_nic_spec(nic, devices.get(nic["key"]), networks, available_networks, notes))
    handled = set(CONTROLLERS + NICS + DEFAULT_DEVICES + ("VirtualDisk", "VirtualTPM"))
    for device in sorted(devices.values(), key=lambda item: item["key"]):
        if device["type"] == "VirtualTPM":
            if mode == "none":
                notes["devices_not_restored"].append("%s (%s): a vTPM needs an encrypted VM" % (
                    device.get("label") or device["key"], device["type"]))
            else:
                changes.append({"operation": "add", "device": {"_type": "VirtualTPM", "key": device["key"]}})
        elif device["type"] not in handled and device["type"] not in [nic["type"] for nic in record.get("nics") or []]:
            notes["devices_not_restored"].append("%s (%s)" % (device.get("label") or device["key"], device["type"]))
    spec["deviceChange"] = changes
    return dict((key, value) for key, value in spec.items() if value is not None), notes


def masked(spec):
    """A copy of a plain ConfigSpec with the encryption.bundle's value masked."""
    copied = copy.deepcopy(spec)
    for option in copied.get("extraConfig") or []:
        if option["key"] == ENCRYPTION_BUNDLE_KEY:
            option["value"] = MASK
    return copied


# -- plain data to pyVmomi ----------------------------------------------------------------------------------------

def _vim_type(name):
    return VmomiSupport.GetWsdlType("urn:vim25", name)


def to_vim(value, vim_type, stub=None):
    """pyVmomi objects of a plain value of ``vim_type`` (a pyVmomi type)."""
    if value is None:
        return None
    if isinstance(value, dict) and "_moref" in value:
        return _vim_type(value["_moref"])(value["value"], stub)
    if isinstance(value, dict):
        cls = _vim_type(value["_type"]) if "_type" in value else vim_type
        fields = {}
        for key, item in value.items():
            if key == "_type":
                continue
            fields[key] = to_vim(item, cls._GetPropertyInfo(key).type, stub)
        return cls(**fields)
    if isinstance(value, list):
        return [to_vim(item, vim_type.Item, stub) for item in value]
    return vim_type(value) if vim_type in (VmomiSupport.long,) else value


# -- on vCenter ---------------------------------------------------------------------------------------------------

def _networks_of(client, datacenter):
    found = {}
    for item in retrieve(client, vim.Network, ["name"], container=datacenter):
        if isinstance(item.obj, vim.dvs.DistributedVirtualPortgroup):
            props = retrieve_one(client, item.obj, ["key", "config.distributedVirtualSwitch"])
            switch = retrieve_one(client, props.get("config.distributedVirtualSwitch"), ["uuid"])
            found[item.get("name")] = {"type": "distributed", "switch_uuid": switch.get("uuid"),
                                       "portgroup_key": props.get("key")}
        else:
            found[item.get("name")] = {"type": "standard", "moid": item.moid}
    return found


def _one_named(client, vim_type, name, container, what):
    found = [item.obj for item in retrieve(client, vim_type, ["name"], container=container) if item.get("name") == name]
    if not found:
        raise NotFoundError("no %s named '%s'" % (what, name))
    if len(found) > 1:
        raise AmbiguousError("%s name '%s' is ambiguous: %s" % (what, name, ", ".join(o._moId for o in found)))
    return found[0]


def _datacenter(client, finder, name):
    """(datacenter, its path): the one named, or the only one."""
    if name:
        found = finder.datacenter(name)
    else:
        datacenters = [item.obj for item in retrieve(client, vim.Datacenter, ["name"])]
        if len(datacenters) != 1:
            raise InvalidArgumentError("this vCenter has %d datacenters: give datacenter" % len(datacenters))
        found = datacenters[0]
    return found, finder.tree.datacenter_path_of(found._moId)


class Placement:
    """Where the VM goes: datacenter, folder, resource pool, host and datastore (resolved, nothing created)."""

    def __init__(self, client, finder, record, datacenter=None, folder=None, cluster=None, resource_pool=None,
                 host=None, datastore=None):
        if cluster and resource_pool:
            raise InvalidArgumentError("give cluster or resource_pool, not both")
        self.datacenter, self.datacenter_name = _datacenter(client, finder, datacenter)
        self.folder = (finder.folder(folder, self.datacenter_name) if folder
                       else retrieve_one(client, self.datacenter, ["vmFolder"]).get("vmFolder"))
        self.host = _one_named(client, vim.HostSystem, host, self.datacenter, "host") if host else None
        if resource_pool:
            self.pool = _one_named(client, vim.ResourcePool, resource_pool, self.datacenter, "resource pool")
        elif cluster:
            self.pool = retrieve_one(client, finder.cluster(cluster, self.datacenter_name), ["resourcePool"]).get(
                "resourcePool")
        elif self.host is not None:
            parent = retrieve_one(client, self.host, ["parent"]).get("parent")
            self.pool = retrieve_one(client, parent, ["resourcePool"]).get("resourcePool")
        else:
            computes = [item.obj for item in retrieve(client, vim.ComputeResource, ["name"], container=self.datacenter)]
            if len(computes) != 1:
                raise InvalidArgumentError("datacenter '%s' has %d clusters or hosts: give cluster, resource_pool or "
                                           "host" % (self.datacenter_name, len(computes)))
            self.pool = retrieve_one(client, computes[0], ["resourcePool"]).get("resourcePool")
        if not datastore:
            match = re.match(r"^\[([^\]]+)\]", ((record or {}).get("files") or {}).get("vm_path_name") or "")
            if not match:
                raise InvalidArgumentError("the backup does not record the VM's datastore: give datastore")
            datastore = match.group(1)
        self.datastore_name = datastore
        self.datastore = _one_named(client, vim.Datastore, datastore, self.datacenter, "datastore")

    def describe(self):
        return {"datacenter": self.datacenter_name, "folder": self.folder._moId, "resource_pool": self.pool._moId,
                "host": self.host._moId if self.host is not None else None, "datastore": self.datastore_name}


def _existing(client, datacenter, name):
    return [item.obj for item in retrieve(client, vim.VirtualMachine, ["name"], container=datacenter)
            if item.get("name") == name]


def _destroy(client, vm, what):
    state = retrieve_one(client, vm, ["runtime.powerState"]).get("runtime.powerState")
    if state != "poweredOff":
        wait_for_task(client, vm.PowerOffVM_Task(), "power off of %s" % what)
    wait_for_task(client, vm.Destroy_Task(), "removal of %s" % what)


def _created_facts(client, vm, datastore, name):
    """What the new VM is, as vCenter made it, and where its NVRAM goes (its layout's file, else beside its VMX)."""
    props = retrieve_one(client, vm, ["config.keyId", "config.files.vmPathName", "config.hardware.device",
                                      "layoutEx.file"]).props
    key = props.get("config.keyId")
    disks = []
    for device in sorted(props.get("config.hardware.device") or [], key=lambda item: item.key):
        if isinstance(device, vim.vm.device.VirtualDisk):
            disk_key = getattr(device.backing, "keyId", None)
            disks.append({"key": str(device.key), "controller_key": device.controllerKey,
                          "unit_number": device.unitNumber, "capacity_bytes": disk_capacity(device),
                          "file_name": device.backing.fileName, "encrypted": disk_key is not None})
    vmx_path = props.get("config.files.vmPathName")
    nvram = nvram_path(vmx_path or "[%s] %s/%s.vmx" % (datastore, name, name), name, {},
                       props.get("layoutEx.file"))[0]
    return {"moid": vm._moId, "vmx_path": vmx_path, "encrypted": key is not None, "disks": disks,
            "nvram_path": nvram}


def _remove_and_give_back(client, vm, old, name):
    """Remove the half-made VM ``vm`` (when there is one) and give the VM it replaced, ``old``, its name back."""
    if vm is not None:
        _destroy(client, vm, "the half-made VM '%s' (%s)" % (name, vm._moId))
    if old is not None:
        wait_for_task(client, old.Rename_Task(newName=name), "renaming VM %s back to '%s'" % (old._moId, name))


def _undo(client, vm, old, name, error):
    """Undo a restore_vm that failed after creating the VM; raise when that fails too."""
    try:
        _remove_and_give_back(client, vm, old, name)
    except Exception as cleanup:  # pylint: disable=broad-except
        raise VmcryptError("%s; cleaning up failed as well: %s"
                           % (getattr(error, "msg", None) or error, getattr(cleanup, "msg", None) or cleanup))


def restore_vm(client, repository, backup_id, name, datacenter=None, folder=None, cluster=None, resource_pool=None,
               host=None, datastore=None, networks=None, key_mode="auto", storage_policy=None, overwrite=False,
               keep_replaced=False, plan_only=False):
    """Create the VM of ``backup_id`` as ``name``; returns (result, warnings). ``plan_only``: the same checks,
    nothing created, the ConfigSpec it would send (bundle masked). ``keep_replaced``: a VM replaced by
    ``overwrite`` stays, renamed (``replaced_name``), until ``finish_restore`` removes it or ``undo_restore``
    gives it its name back - so a restore whose disks fail to import loses nothing."""
    if not name:
        raise InvalidArgumentError("name (of the new VM) is required")
    manifest = repository.read_manifest(backup_id)
    plan, sentences, warnings = plan_restore(client, repository, backup_id, key_mode=key_mode,
                                             storage_policy=storage_policy)
    if not plan["feasible"]:
        raise InvalidArgumentError("the restore of backup %s is not possible as planned: %s"
                                   % (backup_id, "; ".join(plan["problems"])))
    record = (manifest.metadata or {}).get("config")
    if not record:
        record, warning = disks_only_record((key, manifest.disk(key)["capacity"]) for key in manifest.disk_keys)
        warnings = list(warnings) + [warning]
    finder = VmFinder(client)
    place = Placement(client, finder, record, datacenter=datacenter, folder=folder, cluster=cluster,
                      resource_pool=resource_pool, host=host, datastore=datastore)
    bundle = manifest.secrets.get(ENCRYPTION_BUNDLE_KEY)
    spec, notes = build_config_spec(record, plan, name, place.datastore_name, bundle=bundle, networks=networks,
                                    available_networks=_networks_of(client, place.datacenter), backup_id=backup_id)
    warnings = list(warnings) + notes["warnings"] + ["not restored: %s" % item for item in notes["devices_not_restored"]]
    existing = _existing(client, place.datacenter, name)
    if len(existing) > 1:
        raise AmbiguousError("%d VMs are named '%s' in datacenter '%s': remove all but one before overwriting"
                             % (len(existing), name, place.datacenter_name))
    if existing and not overwrite:
        raise VmExistsError("a VM named '%s' exists in datacenter '%s' (%s): choose another name, or "
                            "overwrite: true to replace it" % (name, place.datacenter_name, existing[0]._moId))
    nvram_action = plan["nvram"]["action"]
    result = {"changed": not plan_only, "backup_id": backup_id, "key_mode": plan["key_mode"]["chosen"],
              "placement": place.describe(), "config_spec": masked(spec), "replaced_vm": None,
              "extra_config_skipped": notes["extra_config_skipped"], "sentences": sentences,
              "vm": {"name": name, "moid": None, "vmx_path": None, "encrypted": None, "disks": []},
              "nvram": {"action": nvram_action, "uploaded": False, "size": plan["nvram"]["size"]
                        if nvram_action == "restore" else None, "datastore_path": None, "sha256": None}}
    if existing:
        result["replaced_vm"] = existing[0]._moId
    if plan_only:
        return result, warnings

    old = existing[0] if existing else None
    old_name = None
    if old is not None:  # out of the way first: put back if the new VM cannot be made
        old_name = replaced_name(name, backup_id)
        wait_for_task(client, old.Rename_Task(newName=old_name), "renaming VM '%s' out of the way" % name)
    vm = None
    try:
        task = place.folder.CreateVM_Task(config=to_vim(spec, vim.vm.ConfigSpec, client.stub), pool=place.pool,
                                          host=place.host)
        vm = wait_for_task(client, task, "creation of VM '%s'" % name)
        facts = _created_facts(client, vm, place.datastore_name, name)
        if nvram_action == "restore":
            path = facts["nvram_path"]
            size, digest = upload(client, place.datacenter_name, path, repository.read_nvram(backup_id),
                                  manifest.nvram["size"])
            result["nvram"].update(uploaded=True, size=size, datastore_path=path, sha256=digest)
        if old is not None and not keep_replaced:
            _destroy(client, old, "the replaced VM %s" % old._moId)
            old = None
    except Exception as error:
        _undo(client, vm, old, name, error)
        raise
    result["vm"].update(facts, name=name)
    result["vm"].pop("nvram_path", None)
    return result, warnings


def replaced_name(name, backup_id):
    """The name a VM replaced by the restore of ``backup_id`` carries until the restore is finished or undone."""
    return "%s (replaced by restore %s)" % (name, backup_id)


def _restored_from(client, vm):
    options = retrieve_one(client, vm, ["config.extraConfig"]).get("config.extraConfig") or []
    return [option.value for option in options if option.key == RESTORED_FROM_KEY][:1] or [None]


def _only_named(client, datacenter, datacenter_name, name):
    found = _existing(client, datacenter, name)
    if len(found) > 1:
        raise AmbiguousError("%d VMs are named '%s' in datacenter '%s'" % (len(found), name, datacenter_name))
    return found[0] if found else None


def _made_by_restore(client, datacenter, datacenter_name, name, backup_id):
    """The VM ``name`` when the restore of ``backup_id`` made it; None when there is none; an error for another."""
    vm = _only_named(client, datacenter, datacenter_name, name)
    if vm is not None and _restored_from(client, vm)[0] != backup_id:
        raise InvalidArgumentError("VM '%s' (%s) was not made by the restore of backup %s: it is left alone"
                                   % (name, vm._moId, backup_id))
    return vm


def undo_restore(client, backup_id, name, datacenter=None, plan_only=False):
    """Remove the VM the restore of ``backup_id`` made as ``name`` and give a VM it replaced its name back.

    Only a VM carrying ``RESTORED_FROM_KEY`` = ``backup_id`` is removed; nothing to undo is no change.
    """
    dc, dc_name = _datacenter(client, VmFinder(client), datacenter)
    vm = _made_by_restore(client, dc, dc_name, name, backup_id)
    old = _only_named(client, dc, dc_name, replaced_name(name, backup_id))
    result = {"changed": vm is not None or old is not None, "removed_vm": vm._moId if vm is not None else None,
              "renamed_back_vm": old._moId if old is not None else None, "powered_on": False}
    if not plan_only:
        _remove_and_give_back(client, vm, old, name)
    return result


def finish_restore(client, backup_id, name, datacenter=None, power_on=False, plan_only=False):
    """The restore of ``backup_id`` as ``name`` succeeded: remove the VM it replaced, and power it on if asked."""
    dc, dc_name = _datacenter(client, VmFinder(client), datacenter)
    vm = _made_by_restore(client, dc, dc_name, name, backup_id)
    if vm is None:
        raise NotFoundError("no VM named '%s' in datacenter '%s' to finish the restore of backup %s"
                            % (name, dc_name, backup_id))
    old = _only_named(client, dc, dc_name, replaced_name(name, backup_id))
    powered = retrieve_one(client, vm, ["runtime.powerState"]).get("runtime.powerState") == "poweredOn"
    start = power_on and not powered
    result = {"changed": old is not None or start, "removed_vm": old._moId if old is not None else None,
              "renamed_back_vm": None, "powered_on": powered or start}
    if plan_only:
        return result
    if old is not None:
        _destroy(client, old, "the VM %s replaced by the restore" % old._moId)
    if start:
        wait_for_task(client, vm.PowerOnVM_Task(), "power on of VM '%s' (%s)" % (name, vm._moId))
    return result
