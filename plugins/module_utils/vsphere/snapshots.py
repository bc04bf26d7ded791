# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup snapshots: find, create with an explicit quiesce spec, remove, list their disks.

Quiescing is asked for exactly: ``CreateSnapshotEx_Task`` with a quiesce
spec names the kind, where ``CreateSnapshot_Task(quiesce=True)`` leaves it to
the guest's VMware Tools settings.

- ``none``: no quiesce spec (crash-consistent);
- ``filesystem``: on Linux and other guests a ``GuestQuiesceSpec`` (Tools
  freezes the file systems); on Windows a ``WindowsQuiesceSpec`` with the
  VSS context ``ctx_file_share_backup`` (VSS_CTX_FILE_SHARE_BACKUP: a shadow
  copy made without involving any VSS writer);
- ``application``: on Windows a ``WindowsQuiesceSpec`` with ``ctx_backup``
  (VSS_CTX_BACKUP: the writers quiesce their applications); elsewhere a
  ``GuestQuiesceSpec``, since Tools runs the guest's own pre-freeze scripts.

Both Windows specs ask for VSS_BT_COPY (5): files are copied without updating
the guest's backup history, so a database's own log backups stay whole.

Which kind is allowed (the guide: application quiescing is not supported for
encrypted VMs) is the workflow's decision; this layer sends what it is told.
The API reference: "If the virtual machine is powered off or VMware Tools are
not available, the quiesce spec is ignored", so a snapshot's ``quiesced``
says what was obtained.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import disk_capacity, key_id_facts
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AmbiguousError,
    InvalidArgumentError,
    NotFoundError,
)
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


QUIESCE_NONE = "none"
QUIESCE_FILESYSTEM = "filesystem"
QUIESCE_APPLICATION = "application"
QUIESCE_MODES = (QUIESCE_NONE, QUIESCE_FILESYSTEM, QUIESCE_APPLICATION)

# VirtualMachineWindowsQuiesceSpecVssBackupContext values.
VSS_CONTEXT_FILE_SHARE_BACKUP = "ctx_file_share_backup"
VSS_CONTEXT_BACKUP = "ctx_backup"
# VSS_BACKUP_TYPE: VSS_BT_COPY copies files without touching their backup history.
VSS_BT_COPY = 5
# GuestQuiesceSpec.timeout is in minutes, between 5 and 240.
QUIESCE_TIMEOUT_MINUTES = (5, 240)

DEFAULT_DESCRIPTION = "vmcrypt.backup backup snapshot"


def is_windows_guest(guest_id=None, guest_family=None):
    """Whether VSS applies: guest.guestFamily "windowsGuest", else a config.guestId such as "windows2019srv_64Guest"."""
    if guest_family:
        return guest_family == "windowsGuest"
    return bool(guest_id) and guest_id.lower().startswith("win")


def quiesce_spec(quiesce, windows, timeout_minutes=None):
    """The quiesce spec ``CreateSnapshotEx_Task`` gets for a mode, or None for "none"."""
    if quiesce not in QUIESCE_MODES:
        raise InvalidArgumentError("quiesce must be one of %s, got %r" % (", ".join(QUIESCE_MODES), quiesce))
    if timeout_minutes is not None:
        low, high = QUIESCE_TIMEOUT_MINUTES
        if not low <= int(timeout_minutes) <= high:
            raise InvalidArgumentError("the quiesce timeout is %s minutes; vSphere accepts %d to %d"
                                       % (timeout_minutes, low, high))
        timeout_minutes = int(timeout_minutes)
    if quiesce == QUIESCE_NONE:
        return None
    if not windows:
        return vim.vm.GuestQuiesceSpec(timeout=timeout_minutes)
    context = VSS_CONTEXT_BACKUP if quiesce == QUIESCE_APPLICATION else VSS_CONTEXT_FILE_SHARE_BACKUP
    return vim.vm.WindowsQuiesceSpec(timeout=timeout_minutes, vssBackupContext=context, vssBackupType=VSS_BT_COPY,
                                     vssBootableSystemState=False, vssPartialFileSupport=False)


def create_backup_snapshot(client, vm, name, quiesce=QUIESCE_NONE, windows=False, description=None,
                           quiesce_timeout=None, timeout=3600):
    """Create a snapshot without memory for a backup; returns the snapshot reference.

    ``quiesce`` is "none", "filesystem" or "application"; ``windows`` says
    whether the guest is Windows (see is_windows_guest); ``quiesce_timeout``
    is the guest's limit in minutes (vSphere's default when None).
    """
    spec = quiesce_spec(quiesce, windows, quiesce_timeout)
    task = vm.CreateSnapshotEx_Task(name=name, description=description or DEFAULT_DESCRIPTION,
                                    memory=False, quiesceSpec=spec)
    return wait_for_task(client, task, "creating snapshot '%s' of %s (quiesce: %s)" % (name, vm._moId, quiesce),
                         timeout=timeout)


def find_snapshot_by_name(client, vm, name):
    """The snapshot tree entry (name, snapshot, quiesced, createTime...) named ``name``, or None.

    For idempotence by name: several snapshots with that name raise AmbiguousError.
    """
    info = retrieve_one(client, vm, ["snapshot"]).get("snapshot")
    found = [tree for tree in _walk(info.rootSnapshotList if info else []) if tree.name == name]
    if len(found) > 1:
        raise AmbiguousError("VM %s has %d snapshots named '%s': %s"
                             % (vm._moId, len(found), name, ", ".join(tree.snapshot._moId for tree in found)))
    return found[0] if found else None


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
            capacity=disk_capacity(device),
            key_id=key_id_facts(getattr(backing, "keyId", None)),
            change_id=getattr(backing, "changeId", None),
        ))
    return sorted(disks, key=lambda disk: disk.key)


def snapshot_change_ids(client, snapshot):
    """{device key: changeId or None} of a snapshot's disks, for the next incremental."""
    return dict((disk.key, disk.change_id) for disk in snapshot_disks(client, snapshot))
