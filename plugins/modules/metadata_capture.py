#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: metadata_capture
short_description: Save what makes an encrypted VM restorable - keyId, encryption.bundle, policies, NVRAM
version_added: 0.1.0
description:
  - Starts a staged backup, or adds to one (O(backup_id)), with what the VDDK guide says a backup of an
    encrypted VM must include - C(ConfigInfo.keyId), the C(encryption.bundle) from C(ConfigInfo.extraConfig),
    the storage policies of the VM home and of each disk, each disk's keyId, and the NVRAM file.
  - The configuration is read through the PropertyCollector with explicit paths - from the snapshot's
    configuration when O(snapshot) is given, so that configuration and disks describe the same moment - and
    kept as a record from which a restore rebuilds the ConfigSpec (hardware, devices with their controller
    positions, firmware and boot options, extraConfig, vTPM presence). The VMX file is never copied.
  - The C(encryption.bundle) is stored only inside the encrypted repository. Results and logs say whether it was
    saved, never its value.
  - The NVRAM file is downloaded over HTTPS from the datastore on the same session (certificate validation as
    configured) and streamed into the repository with its size and SHA-256; it is never held whole in memory.
  - Warns what an administrator must know - an encrypted VM without a bundle (its original key cannot be reused
    at restore), a vTPM (its secrets survive only under the original key), a storage policy PBM cannot resolve,
    a missing NVRAM file.
  - With O(commit=true) the backup is committed at once - a metadata-only backup that keeps the key material and
    configuration of a VM before a risky change; vm_restore can re-create the VM from it with blank disks.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
  - vmcrypt.backup.repository
options:
  snapshot:
    description:
      - Name or moid of the backup snapshot to read the configuration from. Without it, the VM's current
        configuration is read.
    type: str
  backup_id:
    description:
      - A staged backup of this VM to add the metadata to. Without it, a new staged backup is started.
    type: str
  commit:
    description:
      - Commit the backup after the capture (a metadata-only backup, or one whose disks were exported before).
    type: bool
    default: false
notes:
  - Supports check mode - it reads the VM and reports what it would capture, and downloads or writes nothing.
"""

EXAMPLES = r"""
- name: Keep the key material and configuration of app01 before a risky change
  vmcrypt.backup.metadata_capture:
    name: app01
    repository: /backups/repo
    commit: true
  register: keys_saved

- name: Capture from the backup snapshot into a new staged backup, for disk_export to continue
  vmcrypt.backup.metadata_capture:
    name: app01
    snapshot: "{{ backup_snapshot.snapshot.moid }}"
    repository: /backups/repo
  register: metadata
"""

RETURN = r"""
backup_id:
  description: The staged (or committed) backup holding the metadata; null in check mode.
  returned: always
  type: str
  sample: 20260101T020000Z-1a2b3c4d
committed:
  description: Whether the backup was committed.
  returned: always
  type: bool
vm:
  description: The VM as the repository records it.
  returned: always
  type: dict
  contains:
    name:
      description: VM name.
      type: str
    uuid:
      description: BIOS UUID.
      type: str
    instance_uuid:
      description: Instance UUID.
      type: str
    moid:
      description: Managed object id.
      type: str
snapshot:
  description: Moid of the snapshot the configuration was read from; null for the live configuration.
  returned: always
  type: str
captured:
  description: What was (or would be) captured. Never the bundle's value.
  returned: always
  type: dict
  contains:
    config:
      description: Whether the configuration record was captured.
      type: bool
    encrypted:
      description: Whether the VM home is encrypted (ConfigInfo.keyId set).
      type: bool
    key_id:
      description: The VM home's keyId and key provider; null for a VM home that is not encrypted.
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider (KMS cluster) id.
          type: str
    encryption_bundle_saved:
      description: Whether an C(encryption.bundle) was found and saved in the repository.
      type: bool
    vm_home_storage_policy:
      description: Storage policy of the VM home ({id, name}); null when none.
      type: dict
      contains:
        id:
          description: Policy id.
          type: str
        name:
          description: Policy name; null when PBM does not know the id.
          type: str
    disks:
      description: Each virtual disk with its keyId and storage policy.
      type: list
      elements: dict
      contains:
        key:
          description: Device key.
          type: int
        label:
          description: Device label.
          type: str
        encrypted:
          description: Whether the disk is encrypted.
          type: bool
        key_id:
          description: The disk's keyId and key provider ({key_id, provider_id}); null for a plain disk.
          type: dict
        storage_policy:
          description: Storage policy ({id, name}); null when none.
          type: dict
    firmware:
      description: V(bios) or V(efi).
      type: str
    secure_boot:
      description: Whether UEFI Secure Boot is enabled.
      type: bool
    vtpm_present:
      description: Whether the VM has a virtual TPM.
      type: bool
    nvram:
      description: The NVRAM file saved ({path, size, sha256}); size and sha256 null in check mode; null when
        the VM has no NVRAM file.
      type: dict
      contains:
        path:
          description: Datastore path of the NVRAM file.
          type: str
        size:
          description: Bytes saved; null in check mode.
          type: int
        sha256:
          description: SHA-256 of the bytes saved; null in check mode.
          type: str
backup_warnings:
  description: What an administrator must read (also recorded in the backup and shown as task warnings).
  returned: always
  type: list
  elements: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(NotFoundError), C(WrongKeyError), C(VsphereFaultError).
  returned: failure
  type: str
  sample: NotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_vm_session
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import pass_on_repository_warnings
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.metadata_capture import MetadataCapture


def run(module):
    params = module.params
    # the key is derived while the session logs in; a wrong password is still reported first, nothing changed
    with repository_and_vm_session(params) as (repository, client, finder, vm):
        capture = MetadataCapture(client, finder, repository, vm, snapshot=params["snapshot"])
        if module.check_mode:
            result = capture.plan()
        else:
            result = capture.run(backup_id=params["backup_id"], commit=params["commit"])
    for warning in result["backup_warnings"]:
        module.warn(warning)
    pass_on_repository_warnings(module, repository)
    return result


def main():
    run_module(run, groups=("vsphere", "one_vm", "repository"), options=dict(
        snapshot=dict(type="str"),
        backup_id=dict(type="str"),
        commit=dict(type="bool", default=False),
    ))


if __name__ == "__main__":
    main()
