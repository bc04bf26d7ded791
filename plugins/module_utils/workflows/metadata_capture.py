# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What makes an encrypted VM restorable, into a staged backup: the guide's "Recommendations for VM Home".

"When a VM is saved, the backup agent should include the ConfigInfo.keyId,
the encryption.bundle from ConfigInfo.extraConfig, and the current storage
policy", and "the NVRAM file must be restored" - it is unusable without the
keyId and bundle, which is why the three travel together here:

1. the configuration record (``vsphere.vm_config``: PropertyCollector paths,
   from the snapshot's config when a snapshot is given, so configuration and
   disks describe the same moment), with the VM home's keyId and each disk's;
2. the storage policies of the VM home and of each disk (PBM);
3. the ``encryption.bundle`` - only as a secret of the encrypted repository,
   never in a result or a log;
4. the NVRAM file, streamed from the datastore over the same session into
   repository chunks, with its size and sha256.

The result says what was captured and warns what an administrator must
know: an encrypted VM without a bundle, a vTPM, a policy PBM cannot name, a
missing NVRAM.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import (
    ENCRYPTION_BUNDLE_KEY,
    vm_crypto_facts_of,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.datastore_files import iter_download
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.snapshots import find_snapshot
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.vm_config import (
    capture_storage_policies,
    capture_vm_config,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.staged_backup import (
    open_staged,
    vm_identity,
)

# What backup metadata says about itself; restore_plan reads this version.
METADATA_FORMAT = 1


def capture_warnings(name, record, policy_warnings, nvram_missing):
    """The sentences an administrator must read about this capture."""
    warnings = []
    if record["encrypted"] and not record["encryption_bundle_present"]:
        warnings.append("VM %s is encrypted but has no encryption.bundle: its original key cannot be reused at "
                        "restore, and its NVRAM will be unusable there (a new key and a generic NVRAM)" % name)
    if record["vtpm_present"]:
        warnings.append("VM %s has a vTPM: its secrets live in the encrypted configuration and survive only a "
                        "restore under the original key (keyId and encryption.bundle %s)"
                        % (name, "saved" if record["encryption_bundle_present"] else "NOT saved: they are lost"))
    warnings.extend(policy_warnings)
    if nvram_missing:
        warnings.append("VM %s has no NVRAM file at %s: a generic NVRAM will be used at restore%s"
                        % (name, record["nvram_path"], " (a UEFI VM may need Secure Boot or its boot disk set again)"
                           if record["firmware"] == "efi" else ""))
    return warnings


def _disk_summary(record, policies):
    return [{"key": disk["key"], "label": disk.get("label"), "key_id": disk.get("key_id"),
             "encrypted": disk.get("key_id") is not None,
             "storage_policy": policies["disks"].get(disk["key"])} for disk in record["disks"]]


class MetadataCapture:
    """Capture one VM's restore metadata into a staged backup (new, or continued by id)."""

    def __init__(self, client, finder, repository, vm, snapshot=None, warn=None):
        self.client = client
        self.finder = finder
        self.repository = repository
        self.vm = vm
        self.snapshot_name = snapshot
        self._warn = warn

    def _read(self):
        facts = vm_crypto_facts_of(self.client, self.finder, self.vm)
        snapshot = find_snapshot(self.client, self.vm, self.snapshot_name) if self.snapshot_name else None
        record, secrets = capture_vm_config(self.client, self.vm, snapshot)
        policies, policy_warnings = capture_storage_policies(self.client, self.vm,
                                                             [disk["key"] for disk in record["disks"]])
        return facts, snapshot, record, secrets, policies, policy_warnings

    def _result(self, facts, record, policies, backup_id, committed, nvram, warnings, changed=True):
        return {
            "changed": changed,
            "backup_id": backup_id,
            "committed": committed,
            "vm": vm_identity(facts),
            "snapshot": record["source"]["snapshot"],
            "captured": {
                "config": True,
                "encrypted": record["encrypted"],
                "key_id": record["key_id"],
                "encryption_bundle_saved": record["encryption_bundle_present"],
                "vm_home_storage_policy": policies["vm_home"],
                "disks": _disk_summary(record, policies),
                "firmware": record["firmware"],
                "secure_boot": bool((record["boot_options"] or {}).get("efi_secure_boot_enabled")),
                "vtpm_present": record["vtpm_present"],
                "nvram": nvram,
            },
            "backup_warnings": warnings,
        }

    def plan(self):
        """Check mode: what would be captured; nothing is downloaded or written."""
        facts, _snapshot, record, _secrets, policies, policy_warnings = self._read()
        nvram = {"path": record["nvram_path"], "size": None, "sha256": None} if record["nvram_path"] else None
        warnings = capture_warnings(facts["name"], record, policy_warnings, nvram_missing=False)
        return self._result(facts, record, policies, None, False, nvram, warnings)

    def run(self, backup_id=None, commit=False):
        """Capture into ``backup_id`` (a staged backup of this VM) or a new staged backup; commit if asked.

        A staged backup this call started is discarded when the capture fails.
        """
        facts, snapshot, record, secrets, policies, policy_warnings = self._read()
        staged, started = open_staged(self.repository, facts, backup_id)
        try:
            metadata = {
                "format": METADATA_FORMAT,
                "key_id": record["key_id"],
                "config": record,
                "storage_policies": {"vm_home": policies["vm_home"],
                                     "disks": dict((str(key), policy) for key, policy in policies["disks"].items())},
                "captured_from": {"vm": self.vm._moId, "snapshot": snapshot._moId if snapshot is not None else None,
                                  "vcenter": self.client.content.about.instanceUuid},
            }
            bundle = secrets.get("encryption_bundle")
            staged.put_metadata(metadata, secrets={ENCRYPTION_BUNDLE_KEY: bundle} if bundle else {})
            nvram = self._capture_nvram(staged, record)
            nvram_missing = nvram is None and record["nvram_path"] is not None
            warnings = capture_warnings(facts["name"], record, policy_warnings, nvram_missing=nvram_missing)
            for warning in warnings:
                staged.add_warning(warning)
            committed = staged.commit() is not None if commit else False
        except BaseException:
            if started:
                staged.discard()
            raise
        return self._result(facts, record, policies, staged.backup_id, committed, nvram, warnings)

    def _capture_nvram(self, staged, record):
        """{"path", "size", "sha256"} of the NVRAM stored, or None when the VM has none on its datastore."""
        if not record["nvram_path"]:
            return None
        datacenter = self.finder.datacenter_path(self.vm)
        try:
            saved = staged.put_nvram(iter_download(self.client, datacenter, record["nvram_path"]))
        except NotFoundError:
            return None
        return {"path": record["nvram_path"], "size": saved["size"], "sha256": saved["sha256"]}
