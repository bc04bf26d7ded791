# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_import: backed-up disks, through VDDK, into the disks of a (restored) VM.

The target VM is powered off and its disks are at least as large as the
backed-up ones; both are checked before anything is written.  Each disk is
written from authenticated chunks only; holes are left unwritten.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.crypto_facts import vm_crypto_facts_of
from ansible_collections.vmcrypt.backup.plugins.module_utils.disk_export_job import reconnect_cures
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.check import PrivilegeCheck
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.restore import import_disk
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.vddk_endpoints import VddkDiskEndpoint
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.transport import allowed_modes


class ImportOptions:
    def __init__(self, backup_id, disk_map=None, transports=("hotadd", "nbdssl"), vddk_libdir=None,
                 progress_file=None, max_retries=3, retry_delay=2.0, threads=None):
        self.backup_id = backup_id
        self.disk_map = dict((str(source), str(target)) for source, target in (disk_map or {}).items())
        self.transports = list(transports)
        self.vddk_libdir = vddk_libdir
        self.progress_file = progress_file
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.threads = threads


class DiskImportJob:
    def __init__(self, client, finder, repository, vm, options, proxy_vm=None):
        self.client = client
        self.finder = finder
        self.repository = repository
        self.vm = vm
        self.proxy_vm = proxy_vm
        self.options = options

    def _facts(self, vm):
        return vm_crypto_facts_of(self.client, self.finder, vm)

    def _pairs(self, manifest, facts):
        """[(backed-up disk key, its capacity, target disk facts)], checked."""
        if facts["power_state"] != "poweredOff":
            raise InvalidArgumentError("VM %s is %s: power it off before its disks are written"
                                       % (facts["name"], facts["power_state"]))
        targets = dict((str(disk["key"]), disk) for disk in facts["disks"])
        mapping = self.options.disk_map or dict((key, key) for key in manifest.disk_keys)
        pairs = []
        for source, target in sorted(mapping.items()):
            if source not in manifest.disk_keys:
                raise NotFoundError("backup %s has no disk %s; it has %s"
                                    % (manifest.backup_id, source, ", ".join(manifest.disk_keys)))
            if target not in targets:
                raise NotFoundError("VM %s has no disk %s; it has %s"
                                    % (facts["name"], target, ", ".join(sorted(targets))))
            capacity = manifest.disk_index(source).capacity
            if targets[target]["capacity_bytes"] < capacity:
                raise InvalidArgumentError("disk %s of VM %s has %d bytes, smaller than the %d bytes of backed-up disk %s"
                                           % (target, facts["name"], targets[target]["capacity_bytes"], capacity,
                                              source))
            pairs.append((source, capacity, targets[target]))
        return pairs

    def _transports(self, facts):
        """The guide's rules, then the session's restore privileges on the VM's folder, pool and datastores."""
        encrypted = facts["encrypted"] or facts["has_encrypted_disks"]
        proxy_encrypted = bool(self._facts(self.proxy_vm)["encrypted"]) if self.proxy_vm is not None else None
        transports, refused = allowed_modes(self.options.transports, encrypted, proxy_encrypted)
        decision = PrivilegeCheck(self.client, self.finder).run("restore", transports, vm=self.vm,
                                                                proxy_vm=self.proxy_vm)[1]
        if decision.refused_all:
            raise PermissionDeniedError(decision.refusal_message())
        return decision.allowed_transports, refused + decision.reasons, encrypted, proxy_encrypted

    def plan_only(self):
        manifest = self.repository.read_manifest(self.options.backup_id)
        facts = self._facts(self.vm)
        pairs = self._pairs(manifest, facts)
        transports, refused, _encrypted, _proxy = self._transports(facts)
        return {"changed": True, "backup_id": manifest.backup_id, "transports": transports,
                "refused_transports": refused,
                "disks": [{"source": source, "target": str(target["key"]), "capacity_bytes": capacity}
                          for source, capacity, target in pairs]}

    def run(self):
        manifest = self.repository.read_manifest(self.options.backup_id)
        facts = self._facts(self.vm)
        pairs = self._pairs(manifest, facts)
        transports, refused, encrypted, proxy_encrypted = self._transports(facts)
        library = VddkLibrary.get(self.options.vddk_libdir)
        progress = ProgressFile(self.options.progress_file)

        def connect():
            return VddkConnection.from_client(library, self.client, self.vm._moId, snapshot_moref=None,
                                              transports=transports, read_only=False, vm_encrypted=encrypted,
                                              proxy_encrypted=proxy_encrypted)
        reports = []
        for source, _capacity, target in pairs:
            endpoint = VddkDiskEndpoint(connect, target["file"], read_only=False)
            report = import_disk(endpoint.open, self.repository, manifest.backup_id, source, progress=progress,
                                 retryable=reconnect_cures, max_retries=self.options.max_retries,
                                 retry_delay=self.options.retry_delay, threads=self.options.threads)
            report["target"] = str(target["key"])
            report["target_file"] = target["file"]
            reports.append(report)
        return {"changed": True, "backup_id": manifest.backup_id, "transports": transports,
                "refused_transports": refused, "disks": reports}
