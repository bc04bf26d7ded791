#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: disk_export
short_description: Read a VM's disks through VDDK into the encrypted backup repository
version_added: 0.1.0
description:
  - Reads each disk of a snapshot of the VM through VDDK, which decrypts encrypted disks, and stores the data
    in the repository, which encrypts it again (AES-256-GCM) and deduplicates it.
  - Unallocated areas are never read. With changed block tracking and an earlier backup of the VM, only the
    areas changed since that backup are read; the rest of the disk index comes from the earlier backup.
  - A lost connection is reopened and the disk resumes at the chunk that failed, up to O(max_retries) times.
  - Without O(snapshot), a backup snapshot is created (file-system quiesced for encrypted VMs) and removed at
    the end, also when the export fails.
  - Without O(backup_id), a new backup is started and committed at the end; with it, the disks are added to
    that staged backup (metadata_capture started it), which a later step commits.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
  - vmcrypt.backup.repository
  - vmcrypt.backup.vddk
options:
  snapshot:
    description:
      - Name or moid of an existing snapshot to read. Without it, a temporary backup snapshot is used.
    type: str
  disks:
    description:
      - Device keys (V(2000)) or labels (V(Hard disk 1)) of the disks to export; all disks by default.
    type: list
    elements: str
  backup_id:
    description:
      - Staged backup to add the disks to.
    type: str
  commit:
    description:
      - Commit the backup when all disks are in. Defaults to V(true) without O(backup_id), V(false) with it.
    type: bool
  incremental:
    description:
      - Read only changed areas when CBT is enabled and an earlier backup of the VM recorded a changeId.
    type: bool
    default: true
  quiesce:
    description:
      - Quiesce the guest file systems for the temporary snapshot (VMware Tools).
    type: bool
    default: true
  manage_access:
    description:
      - Bracket each VDDK connection with PrepareForAccess and EndAccess. Set V(false) when a
        M(vmcrypt.backup.vddk_access) task brackets the whole backup, as the backup role does - the guide places
        PrepareForAccess before the snapshot is created and EndAccess after it is removed.
    type: bool
    default: true
notes:
  - In check mode no snapshot is taken, VDDK is not loaded and nothing is written; the VM, the disks and the
    transports and privileges are checked as in a run, and the result says what would be exported.
  - Secrets (vCenter session, repository password) never appear in results or logs.
attributes:
  check_mode:
    description: Reports the disks and transports it would use without taking a snapshot or reading.
    support: full
"""

EXAMPLES = r"""
- name: Back up every disk of app01 into the repository (one step)
  vmcrypt.backup.disk_export:
    name: app01
    datacenter: DC1
    repository: /backups/repo
    transports: [hotadd, nbdssl]
    proxy_vm: backup-proxy01
    vddk_libdir: /opt/vmware-vix-disklib-distrib
  environment:
    VMCRYPT_REPOSITORY_PASSWORD: "{{ vault_repository_password }}"
  register: export

- name: Add the disks to a backup that metadata_capture started
  vmcrypt.backup.disk_export:
    moid: vm-42
    repository: /backups/repo
    backup_id: "{{ metadata.backup_id }}"
    snapshot: "{{ metadata.snapshot_moid }}"
    transports: [nbdssl]
    progress_file: /tmp/app01-export.json
"""

RETURN = r"""
backup_id:
  description: The backup the disks went into; in check mode O(backup_id), null without it (a new id is chosen by the
    run).
  returned: always
  type: str
  sample: 20261130T140501Z-1f2e3d4c
committed:
  description: Whether the backup was committed (it exists for restores only then); always V(false) in check mode.
  returned: always
  type: bool
vm:
  description: Identity of the VM.
  returned: always
  type: dict
  contains:
    name:
      description: VM name.
      type: str
    uuid:
      description: BIOS UUID (C(config.uuid)).
      type: str
    instance_uuid:
      description: vCenter instance UUID.
      type: str
    moid:
      description: Managed object id.
      type: str
      sample: vm-42
transports:
  description: The transports requested and allowed by the rules for this VM, in order.
  returned: always
  type: list
  elements: str
  sample: [nbdssl]
refused_transports:
  description: The requested transports that were refused, in the order requested, each with its reason.
  returned: always
  type: list
  elements: dict
  contains:
    transport:
      description: The transport refused.
      type: str
      sample: san
    reason:
      description: Why it was refused.
      type: str
      sample: san is not supported for encrypted disks; use nbdssl or hotadd
snapshot:
  description: The snapshot read, and whether this run created and removed it.
  returned: always
  type: dict
  contains:
    moid:
      description: Managed object id of the snapshot; null in check mode.
      type: str
      sample: snapshot-101
    created:
      description: Whether this run created the snapshot (or in check mode would).
      type: bool
    removed:
      description: Whether this run removed the snapshot it created (or in check mode would).
      type: bool
disks:
  description:
    - One report per disk. Check mode returns the same keys, with what only a run measures (the byte and chunk
      counts, C(retries), C(transport), C(duration_seconds), C(throughput_mib_s), C(flush_seconds)) null.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Device key.
      type: int
      sample: 2000
    label:
      description: Device label.
      type: str
      sample: Hard disk 1
    capacity_bytes:
      description: Capacity of the disk in bytes.
      type: int
    encrypted:
      description: Whether the disk is encrypted in vSphere.
      type: bool
    incremental:
      description: Whether only changed areas were read (in check mode, would be).
      type: bool
    base_backup_id:
      description: The backup unchanged areas come from, for an incremental; null for a full read.
      type: str
    bytes_read:
      description: Bytes read through VDDK; null in check mode.
      type: int
    bytes_skipped:
      description: Bytes never read (unallocated or unchanged); null in check mode.
      type: int
    bytes_stored:
      description: New bytes written to the repository (compressed, encrypted); null in check mode.
      type: int
    bytes_deduplicated:
      description: Bytes of the disk (before compression) in chunks the repository held already, so not stored
        again; null in check mode.
      type: int
    new_chunks:
      description: Chunks new to the repository, stored by this run; null in check mode.
      type: int
    deduplicated_chunks:
      description: Chunks already in the repository; null in check mode.
      type: int
    zero_chunks:
      description: All-zero chunks (not stored); null in check mode.
      type: int
    chunks_from_base:
      description: Chunks of an incremental taken unchanged from RV(disks[].base_backup_id); null in check mode.
      type: int
    patched_chunks:
      description:
        - Chunks of an incremental that changed only in part, whose changed pieces were stored as patches over
          the base backup's chunk instead of a whole new chunk; null in check mode.
        - A chunk is stored whole again once its patches would number more than 8 or cover more than half of it.
      type: int
    retries:
      description: Connections reopened to resume the disk; null in check mode.
      type: int
    transport:
      description: The transport VDDK used; null in check mode.
      type: str
      sample: nbdssl
    duration_seconds:
      description: Time spent on the disk; null in check mode.
      type: float
    throughput_mib_s:
      description: Bytes read per second, in MiB; null in check mode, or when the disk took no measurable time.
      type: float
    flush_seconds:
      description:
        - Time spent flushing the disk's chunk files to stable storage before it was recorded (one C(syncfs) with
          O(repository_sync=filesystem)), after C(duration_seconds); null in check mode.
      type: float
error_type:
  description:
    - On failure, the name of the error's class, for example C(NotFoundError), C(PermissionDeniedError), C(VddkError).
    - C(VsphereFaultError) when vCenter refused a call.
  returned: failure
  type: str
  sample: NotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.transfer import EXPORT, run_transfer_job


def run(module):
    return run_transfer_job(module, EXPORT)


def main():
    run_module(run, groups=("vsphere", "one_vm", "repository", "vddk"), options=dict(
        snapshot=dict(type="str"),
        disks=dict(type="list", elements="str"),
        backup_id=dict(type="str"),
        commit=dict(type="bool"),
        incremental=dict(type="bool", default=True),
        quiesce=dict(type="bool", default=True),
        manage_access=dict(type="bool", default=True),
    ))


if __name__ == "__main__":
    main()
