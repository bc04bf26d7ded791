# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup under way: started by the first step of a run, continued by the next, then committed or discarded.

metadata_capture starts it (or continues one), disk_export adds the disks,
backup_commit commits it when every step succeeded or discards it when one
failed: until the commit, nothing of it is visible as a backup.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import BackupNotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.manifest import vm_identity_key


def vm_identity(facts):
    """What the repository records of a VM, from its vm_crypto_facts."""
    return {"name": facts["name"], "uuid": facts["bios_uuid"], "instance_uuid": facts["instance_uuid"],
            "moid": facts["moid"]}


def open_staged(repository, facts, backup_id=None):
    """(staged backup, whether this call started it): continue ``backup_id`` of this VM, or start one."""
    if not backup_id:
        return repository.start_backup(vm_identity(facts)), True
    staged = repository.staged_backup(backup_id)
    owner = staged.info()["vm"]
    if vm_identity_key(owner) != vm_identity_key(vm_identity(facts)):
        raise InvalidArgumentError("staged backup %s is of VM %s, not of %s"
                                   % (backup_id, owner.get("name"), facts["name"]))
    return staged, False


def commit_backup(repository, backup_id, warnings=(), dry_run=False):
    """Commit a staged backup, recording ``warnings`` in it; committing a committed backup changes nothing."""
    try:
        staged = repository.staged_backup(backup_id)
    except BackupNotFoundError:
        committed = repository.read_manifest(backup_id)  # raises when it is neither staged nor committed
        return {"changed": False, "backup_id": backup_id, "state": "committed", "backup": committed.summary()}
    if dry_run:
        return {"changed": True, "backup_id": backup_id, "state": "committed", "backup": None}
    for warning in warnings:
        staged.add_warning(warning)
    return {"changed": True, "backup_id": backup_id, "state": "committed", "backup": staged.commit().summary()}


def discard_backup(repository, backup_id, dry_run=False):
    """Discard a staged backup (its stored chunks go at the next prune); a committed backup is never discarded."""
    try:
        staged = repository.staged_backup(backup_id)
    except BackupNotFoundError:
        try:
            repository.read_manifest(backup_id)
        except BackupNotFoundError:
            return {"changed": False, "backup_id": backup_id, "state": "discarded", "backup": None}
        raise InvalidArgumentError("backup %s is committed; remove it with backup_prune, not by discarding"
                                   % backup_id)
    if not dry_run:
        staged.discard()
    return {"changed": True, "backup_id": backup_id, "state": "discarded", "backup": None}
