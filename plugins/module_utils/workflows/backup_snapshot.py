# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup snapshot: created and removed by name, with the guide's quiescing rule for encrypted VMs.

The guide: "Application quiesced snapshots are not supported for encrypted
VMs. Use file-system quiescing instead. The snapshot manifest file will
contain only a dummy backup.xml file."  So application quiescing of an
encrypted VM is refused (or, when the administrator allows it, replaced by
file-system quiescing with a warning), vSphere is asked for exactly the kind
promised (``vsphere.snapshots.quiesce_spec``), and the snapshot's VSS
manifest (backup.xml) is never read: for an encrypted VM it is a dummy, and
nothing in a restore depends on it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError, NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import vm_crypto_facts_of
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.snapshots import (
    QUIESCE_APPLICATION,
    QUIESCE_FILESYSTEM,
    QUIESCE_MODES,
    create_backup_snapshot,
    find_snapshot,
    find_snapshot_by_name,
    is_windows_guest,
    remove_snapshot,
    snapshot_disks,
)

APPLICATION_QUIESCING_REFUSED = ("application quiesced snapshots are not supported for encrypted VMs; use "
                                 "file-system quiescing instead (quiesce: filesystem, or quiesce_fallback: "
                                 "filesystem)")
FALLBACKS = ("none", QUIESCE_FILESYSTEM)


def quiesce_for(requested, encrypted, fallback="none"):
    """(the quiescing to ask vSphere for, a warning or None): the guide's rule for encrypted VMs."""
    if requested not in QUIESCE_MODES:
        raise InvalidArgumentError("quiesce must be one of %s, not %r" % (", ".join(QUIESCE_MODES), requested))
    if fallback not in FALLBACKS:
        raise InvalidArgumentError("quiesce_fallback must be one of %s, not %r" % (", ".join(FALLBACKS), fallback))
    if requested == QUIESCE_APPLICATION and encrypted:
        if fallback != QUIESCE_FILESYSTEM:
            raise InvalidArgumentError(APPLICATION_QUIESCING_REFUSED)
        return QUIESCE_FILESYSTEM, ("application quiescing is not supported for encrypted VMs: the snapshot is "
                                    "file-system quiesced instead (quiesce_fallback: filesystem)")
    return requested, None


def _disk_report(disk):
    return {"key": disk.key, "label": disk.label, "encrypted": disk.encrypted, "change_id": disk.change_id}


class BackupSnapshot:
    """The named backup snapshot of one VM."""

    def __init__(self, client, finder, vm):
        self.client = client
        self.finder = finder
        self.vm = vm

    def _describe(self, tree, quiesce, created):
        snapshot = tree.snapshot if hasattr(tree, "snapshot") else tree
        disks = snapshot_disks(self.client, snapshot)
        return {"moid": snapshot._moId, "name": getattr(tree, "name", None), "quiesce": quiesce,
                "quiesced": bool(getattr(tree, "quiesced", False)), "created": created}, disks

    def present(self, name, quiesce=QUIESCE_FILESYSTEM, quiesce_fallback="none", dry_run=False, timeout=3600):
        """Create the snapshot ``name`` unless it exists (idempotent); returns the module result.

        A snapshot this call created is removed again if anything after its creation fails.
        """
        facts = vm_crypto_facts_of(self.client, self.finder, self.vm)
        encrypted = facts["encrypted"] or facts["has_encrypted_disks"]
        mode, warning = quiesce_for(quiesce, encrypted, quiesce_fallback)
        result = {"changed": False, "vm": {"name": facts["name"], "moid": facts["moid"]}, "encrypted": encrypted,
                  "quiesce_warning": warning}
        existing = find_snapshot_by_name(self.client, self.vm, name)
        if existing is not None:
            snapshot, disks = self._describe(existing, None, False)
            result.update(snapshot=snapshot, disks=[_disk_report(disk) for disk in disks])
            return result
        result["changed"] = True
        if dry_run:
            result["snapshot"] = {"moid": None, "name": name, "quiesce": mode, "quiesced": None, "created": True}
            result["disks"] = [{"key": disk["key"], "label": disk["label"], "encrypted": disk["encrypted"],
                                "change_id": None} for disk in facts["disks"]]
            return result
        reference = create_backup_snapshot(self.client, self.vm, name, quiesce=mode,
                                           windows=is_windows_guest(guest_id=facts["guest_id"]), timeout=timeout)
        try:
            tree = find_snapshot_by_name(self.client, self.vm, name) or reference
            snapshot, disks = self._describe(tree, mode, True)
        except BaseException:
            remove_snapshot(self.client, reference, timeout=timeout)
            raise
        result.update(snapshot=snapshot, disks=[_disk_report(disk) for disk in disks])
        return result

    def absent(self, name_or_moid, dry_run=False, timeout=3600):
        """Remove the snapshot named ``name_or_moid`` (or with that moid) if it exists; returns the module result."""
        existing = find_snapshot_by_name(self.client, self.vm, name_or_moid)
        snapshot = existing.snapshot if existing is not None else None
        if snapshot is None and name_or_moid.startswith("snapshot-"):
            try:
                snapshot = find_snapshot(self.client, self.vm, name_or_moid)
            except NotFoundError:  # absent already
                snapshot = None
        result = {"changed": snapshot is not None, "vm": {"name": None, "moid": self.vm._moId},
                  "snapshot": {"moid": snapshot._moId if snapshot is not None else None, "name": name_or_moid,
                               "removed": snapshot is not None}}
        if snapshot is not None and not dry_run:
            remove_snapshot(self.client, snapshot, timeout=timeout)
        return result
