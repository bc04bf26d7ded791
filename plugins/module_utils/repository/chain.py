# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chain of each VM's backups, and its head record: deleting or rolling back the newest backup shows.

Every manifest names the VM's previous backup and the SHA-256 of that
manifest's file (``previous``).  ``heads/<32 hex digits>`` (envelope, magic
``VMCH``, the hex name as context; the name is a keyed hash of the VM's
identity) names the VM's newest backup and its hash; ``commit`` writes it
after the manifest.  ``verify`` reports a head that names a missing backup
(the newest was deleted, or the repository rolled back), a manifest whose
hash no longer matches what a later backup recorded, and a VM whose head
record vanished.  A previous backup that is simply absent is not an error:
prune removes old backups.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope, manifest
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackupNotFoundError,
    IntegrityError,
    MissingDataError,
    RepositoryError,
)

PREFIX = "heads"
HEAD_VERSION = 2
MAX_HEAD_SIZE = 64 << 10


def _name(repository, vm_key):
    hex_name = repository.keys.head_name(vm_key)
    return hex_name, "%s/%s" % (PREFIX, hex_name)


def _read(repository, hex_name, name):
    blob = repository.backend.get(name, max_size=MAX_HEAD_SIZE)
    head = manifest.open_json(repository.keys, envelope.MAGIC_HEAD, hex_name, blob, "head record %s" % name)
    if head.get("version") != HEAD_VERSION or not isinstance(head.get("vm_key"), str):
        raise IntegrityError("head record %s is malformed" % name)
    if repository.keys.head_name(head["vm_key"]) != hex_name:
        raise IntegrityError("head record %s names another VM" % name)
    manifest.check_backup_id(head.get("backup_id"))
    return head


def read_head(repository, vm_key):
    """The head record of the VM with identity key ``vm_key`` (backup_id, sha256), or None."""
    hex_name, name = _name(repository, vm_key)
    try:
        return _read(repository, hex_name, name)
    except MissingDataError:
        return None


def write_head(repository, vm_key, backup_id, sha256):
    hex_name, name = _name(repository, vm_key)
    document = {"version": HEAD_VERSION, "vm_key": vm_key, "backup_id": backup_id, "sha256": sha256}
    repository.backend.put(name, manifest.seal_json(repository.keys, envelope.MAGIC_HEAD, hex_name, document))


def file_hash(blob):
    return hashlib.sha256(blob).hexdigest()


def previous_of(repository, vm):
    """``{"backup_id", "sha256"}`` of the newest committed backup of ``vm`` (identity dict), or None.

    The head record says which it is; without one (the VM's first backup, or
    a commit that stopped before writing the head) the newest manifest of the
    VM.  Also returns a warning when the head names a backup that is gone.
    """
    vm_key = manifest.vm_identity_key(vm)
    head = read_head(repository, vm_key)
    if head is not None:
        try:
            _item, blob = repository.read_manifest_file(head["backup_id"])
        except BackupNotFoundError:
            return ({"backup_id": head["backup_id"], "sha256": head.get("sha256")},
                    "the previous backup %s of this VM is missing: it was deleted or the repository was rolled back"
                    % head["backup_id"])
        return {"backup_id": head["backup_id"], "sha256": file_hash(blob)}, None
    newest = _newest_listed(repository, vm_key)
    if newest is None:
        return None, None
    return {"backup_id": newest.backup_id, "sha256": file_hash(repository.read_manifest_file(newest.backup_id)[1])}, None


def _newest_listed(repository, vm_key):
    """The newest readable manifest of the VM, found by reading them all."""
    newest = None
    for item in repository.list_backups(errors=[]):
        if manifest.vm_identity_key(item.vm) == vm_key:
            newest = item
    return newest


def newest_backup(repository, vm):
    """The Manifest of the backup of ``vm`` (identity dict) committed last, or None.

    One manifest read through the VM's head record, however many backups
    the repository holds (an incremental's base is found this way on every
    run); all manifests are read only when there is no head to follow (a
    commit that stopped before writing it) or it names a backup that is gone.
    """
    vm_key = manifest.vm_identity_key(vm)
    head = read_head(repository, vm_key)
    if head is not None:
        try:
            return repository.read_manifest(head["backup_id"])
        except BackupNotFoundError:
            pass
    return _newest_listed(repository, vm_key)


def check(repository, manifests, complete):
    """Chain problems among ``manifests`` ({backup_id: (Manifest, file bytes)}): [{"backup_id", "vm", "error"}].

    ``complete`` says that ``manifests`` holds every readable backup, so head
    records can be checked too.
    """
    problems = []
    existing = set(repository.backup_ids())
    hashes = dict((backup_id, file_hash(blob)) for backup_id, (_item, blob) in manifests.items())

    def hash_of(backup_id):
        if backup_id not in hashes:
            try:
                hashes[backup_id] = file_hash(repository.read_manifest_file(backup_id)[1])
            except RepositoryError:
                hashes[backup_id] = None
        return hashes[backup_id]

    for backup_id, (item, _blob) in sorted(manifests.items()):
        previous = item.previous
        if previous and previous.get("backup_id") in existing and hash_of(previous["backup_id"]) != previous.get("sha256"):
            problems.append({"backup_id": backup_id, "vm": item.vm.get("name"),
                             "error": "broken chain: the previous backup %s is not the one this backup followed "
                                      "(replaced or altered)" % previous["backup_id"]})
    if not complete:
        return problems
    newest = {}
    for backup_id, (item, _blob) in sorted(manifests.items()):
        newest[manifest.vm_identity_key(item.vm)] = item
    seen = set()
    for name in repository.backend.list(PREFIX):
        hex_name = name.rsplit("/", 1)[-1]
        try:
            head = _read(repository, hex_name, name)
        except (RepositoryError, ValueError) as error:
            problems.append({"backup_id": None, "vm": None, "error": "head record %s is unreadable: %s" % (name, error)})
            continue
        seen.add(head["vm_key"])
        item = newest.get(head["vm_key"])
        vm_name = item.vm.get("name") if item else head["vm_key"]
        if head["backup_id"] not in existing:
            problems.append({"backup_id": head["backup_id"], "vm": vm_name,
                             "error": "broken chain: backup %s, the newest of its VM, is missing: it was deleted "
                                      "or the repository was rolled back" % head["backup_id"]})
        elif hash_of(head["backup_id"]) != head.get("sha256"):
            problems.append({"backup_id": head["backup_id"], "vm": vm_name,
                             "error": "broken chain: backup %s is not the one its VM's head record names"
                                      % head["backup_id"]})
    for vm_key, item in sorted(newest.items()):
        if vm_key not in seen and item.previous:
            problems.append({"backup_id": item.backup_id, "vm": item.vm.get("name"),
                             "error": "broken chain: the head record of this VM is missing"})
    return problems
