# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup snapshots: find, create with the quiescing rules for encrypted VMs, remove, list their disks.

The guide: application-quiesced snapshots are not supported for encrypted
VMs; file-system quiescing is used instead.  The API's ``quiesce`` flag asks
VMware Tools to quiesce; whether that is application (VSS writers) or
file-system quiescing is the guest's Tools setting, so for an encrypted VM
the snapshot is marked as file-system quiesced in its description and the
caller is told.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.crypto_facts import key_id_facts
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import AmbiguousError, NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve_one
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.tasks import wait_for_task


class SnapshotDisk:
    """One virtual disk as a snapshot sees it."""

    def __init__(self, key, label, file_name, capacity, key_id, change_id):
        self.key = key
        self.label = label
        self.file_name = file_name
        self.capacity = capacity
        self.key_id = key_id
        self.change_id = change_id

    @property
    def encrypted(self):
        return self.key_id is not None

    def properties(self):
        """What backup_info may show about the disk: nothing secret."""
        return {"label": self.label, "file": self.file_name, "capacity_bytes": self.capacity,
                "encrypted": self.encrypted, "key_id": self.key_id}


def _walk(trees):
    for tree in trees or []:
        yield tree
        yield from _walk(tree.childSnapshotList)


def find_snapshot(client, vm, name_or_moid):
    """The snapshot of ``vm`` with this moid (snapshot-N) or name."""
    info = retrieve_one(client, vm, ["snapshot"]).get("snapshot")
    trees = list(_walk(info.rootSnapshotList if info else []))
    by_moid = [tree for tree in trees if tree.snapshot._moId == name_or_moid]
    if by_moid:
        return by_moid[0].snapshot
    by_name = [tree for tree in trees if tree.name == name_or_moid]
    if not by_name:
        raise NotFoundError("VM %s has no snapshot '%s'" % (vm._moId, name_or_moid))
    if len(by_name) > 1:
        raise AmbiguousError("VM %s has %d snapshots named '%s': %s; give the snapshot moid"
                             % (vm._moId, len(by_name), name_or_moid,
                                ", ".join(tree.snapshot._moId for tree in by_name)))
    return by_name[0].snapshot


def create_backup_snapshot(client, vm, name, encrypted, quiesce=True, timeout=3600):
    """Create a snapshot without memory for a backup; returns the snapshot reference."""
    description = "vmcrypt.backup backup snapshot"
    if encrypted and quiesce:
        description += " (file-system quiesced: application quiescing is not supported for encrypted VMs)"
    task = vm.CreateSnapshot_Task(name=name, description=description, memory=False, quiesce=bool(quiesce))
    return wait_for_task(client, task, "creating snapshot '%s' of %s" % (name, vm._moId), timeout=timeout)


def remove_snapshot(client, snapshot, timeout=3600):
    task = snapshot.RemoveSnapshot_Task(removeChildren=False, consolidate=True)
    wait_for_task(client, task, "removing snapshot %s" % snapshot._moId, timeout=timeout)


def snapshot_disks(client, snapshot):
    """The virtual disks of a snapshot, in device-key order."""
    devices = retrieve_one(client, snapshot, ["config.hardware.device"]).get("config.hardware.device") or []
    disks = []
    for device in devices:
        if not isinstance(device, vim.vm.device.VirtualDisk):
            continue
        backing = device.backing
        disks.append(SnapshotDisk(
            key=device.key,
            label=device.deviceInfo.label if device.deviceInfo else None,
            file_name=getattr(backing, "fileName", None),
            capacity=device.capacityInBytes or (device.capacityInKB or 0) * 1024,
            key_id=key_id_facts(getattr(backing, "keyId", None)),
            change_id=getattr(backing, "changeId", None),
        ))
    return sorted(disks, key=lambda disk: disk.key)
