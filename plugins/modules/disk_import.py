#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: disk_import
short_description: Write backed-up disks through VDDK into the disks of a VM
version_added: 0.1.0
description:
  - Writes the disks of a committed backup into the disks of a powered-off VM (usually the one vm_restore
    created) through VDDK, which encrypts them again for an encrypted VM.
  - Every chunk is authenticated before it is written.
  - Nothing of what a target disk held before is left. Unless O(target_blank) is set, the module first asks VDDK
    which blocks of the target disk hold data (C(QueryAllocatedBlocks)); every area that was a hole (zeros) in the
    backup and holds data on the target is written with zeros, and so is old data past the backup's capacity on a
    larger target. Holes over unallocated target blocks are not written, so they stay holes on a thin disk.
  - When VDDK cannot tell which blocks hold data (storage other than VMFS and vSAN), every hole is written with
    zeros, with a warning; this costs a write of the whole disk.
  - No restore snapshot is taken; the VDDK programming guide requires one for SAN transport only and calls it
    optional for NBDSSL and HotAdd.
  - A lost connection is reopened and the disk resumes, up to O(max_retries) times.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
  - vmcrypt.backup.repository
  - vmcrypt.backup.vddk
options:
  backup_id:
    description:
      - The committed backup whose disks are written.
    type: str
    required: true
  disk_map:
    description:
      - Maps a backed-up disk key to a target disk key; for example C(2001) to C(2016) puts backed-up disk 2001
        on the VM's disk 2016.
      - By default every backed-up disk goes to the target disk with the same device key.
    type: dict
  target_blank:
    description:
      - States that every target disk reads as zeros everywhere, as disks vm_restore has just created do, so the
        module neither asks VDDK for their allocated blocks nor writes zeros over the holes of the backup.
      - Only set it for disks created for this restore; on a disk that held data, its old bytes stay in every hole
        of the backup.
    type: bool
    default: false
  check_chunk_ids:
    description:
      - Also recomputes the id (HMAC-SHA256) of every chunk read, as M(vmcrypt.backup.backup_verify) does.
      - Every chunk is authenticated either way (AES-GCM with the chunk's id as associated data), so a chunk
        altered, truncated or copied under another id always fails the import. The id check adds what
        authentication cannot see, data a writer sealed under a wrong id, at the cost of a hash over every byte
        restored (about a third of the import's CPU). M(vmcrypt.backup.backup_verify) (the backup role's
        C(backup_verify=true)) recomputes every id of a backup right after it is written.
    type: bool
    default: false
notes:
  - In check mode VDDK is not loaded and nothing is written; the backup, the VM (power state, disks and their sizes)
    and the transports and privileges are checked as in a run, and the result says which disk goes where.
attributes:
  check_mode:
    description: Checks the backup, the VM's power state and disk sizes, and reports the plan.
    support: full
"""

EXAMPLES = r"""
- name: Write the disks of a backup into the restored VM
  vmcrypt.backup.disk_import:
    name: app01-restored
    repository: /backups/repo
    backup_id: "{{ backup_id }}"
    transports: [nbdssl]
    vddk_libdir: /opt/vmware-vix-disklib-distrib
  environment:
    VMCRYPT_REPOSITORY_PASSWORD: "{{ vault_repository_password }}"

- name: Write them into disks vm_restore has just created (no zeros to write)
  vmcrypt.backup.disk_import:
    name: app01-restored
    repository: /backups/repo
    backup_id: "{{ backup_id }}"
    target_blank: true
  environment:
    VMCRYPT_REPOSITORY_PASSWORD: "{{ vault_repository_password }}"
"""

RETURN = r"""
backup_id:
  description: The backup written.
  returned: always
  type: str
  sample: 20261130T140501Z-1f2e3d4c
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
      sample: nbd
    reason:
      description: Why it was refused.
      type: str
disks:
  description:
    - One report per disk written, in the order of the backed-up disk keys. Check mode returns the same keys,
      with what only a run measures (C(bytes_written), C(bytes_skipped), C(retries), C(transport),
      C(duration_seconds), C(throughput_mib_s)) null.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Device key of the backed-up disk.
      type: int
      sample: 2000
    capacity_bytes:
      description: Capacity of the backed-up disk in bytes.
      type: int
    target:
      description: Device key of the VM's disk written.
      type: int
      sample: 2000
    target_file:
      description: Datastore path of the VM's disk written.
      type: str
      sample: "[datastore1] app01-restored/app01-restored.vmdk"
    bytes_written:
      description: Bytes written through VDDK; null in check mode.
      type: int
    bytes_zeroed:
      description:
        - Bytes of zeros written over old data of the target (holes of the backup, and past its capacity);
          null in check mode.
      type: int
    bytes_skipped:
      description:
        - Bytes of the backed-up disk not written (holes of the backup over target blocks that hold no data);
          null in check mode.
      type: int
    target_check:
      description:
        - How the target's old contents were found; null in check mode.
        - C(allocated_blocks) VDDK listed the blocks holding data, C(unavailable) it could not tell and every hole
          was written with zeros, C(skipped) O(target_blank) was set.
      type: str
      sample: allocated_blocks
    chunk_ids_checked:
      description: Whether every chunk's id was recomputed (O(check_chunk_ids)); null in check mode.
      type: bool
      sample: false
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
      description:
        - Bytes written (data and zeros) per second, in MiB; null in check mode, or when the disk took no
          measurable time.
      type: float
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError), C(InvalidArgumentError),
      C(VddkError).
    - C(VsphereFaultError) when vCenter refused a call.
  returned: failure
  type: str
  sample: BackupNotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.transfer import IMPORT, run_transfer_job


def run(module):
    return run_transfer_job(module, IMPORT)


def main():
    run_module(run, groups=("vsphere", "one_vm", "repository", "vddk"),
               options=dict(backup_id=dict(type="str", required=True), disk_map=dict(type="dict"),
                            target_blank=dict(type="bool", default=False),
                            check_chunk_ids=dict(type="bool", default=False)))


if __name__ == "__main__":
    main()
