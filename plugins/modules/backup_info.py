#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_info
short_description: List the backups of an encrypted backup repository, or summarise one
version_added: 0.1.0
description:
  - Lists committed backups, optionally only those of one VM or only the newest of each VM.
  - With O(backup_id), summarises that backup - disks, sizes, changeIds, encryption facts and warnings.
  - Never returns secrets. It says B(whether) the C(encryption.bundle) and NVRAM were saved, never their value.
  - Staged (uncommitted) backups are never listed as backups; O(staged=true) lists them separately.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.repository
options:
  backup_id:
    description:
      - Id of one backup to summarise. Its summary is returned as RV(backup).
    type: str
  vm:
    description:
      - Only backups of this VM, matched against the name, BIOS uuid or instance uuid recorded at backup time.
    type: str
  latest:
    description:
      - Only the newest backup of each VM (of O(vm) when given).
    type: bool
    default: false
  staged:
    description:
      - Also list staged (uncommitted) backups as RV(staged_backups).
    type: bool
    default: false
notes:
  - Supports check mode; it changes nothing.
attributes:
  check_mode:
    description: Can run in check mode and return the same facts, since it changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: All backups of app01
  vmcrypt.backup.backup_info:
    repository: /backups/repo
    vm: app01
  register: app01_backups

- name: The newest backup of every VM
  vmcrypt.backup.backup_info:
    repository: /backups/repo
    latest: true

- name: Summary of one backup
  vmcrypt.backup.backup_info:
    repository: /backups/repo
    backup_id: "{{ app01_backups.backups[-1].backup_id }}"
  register: one

- name: Refuse to restore a backup without its encryption bundle
  ansible.builtin.assert:
    that: one.backup.encryption.encryption_bundle_saved
"""

RETURN = r"""
backups:
  description: Summaries of the matching committed backups, oldest first.
  returned: always
  type: list
  elements: dict
  contains: &summary
    backup_id:
      description: Backup id, C(YYYYMMDDTHHMMSSZ-xxxxxxxx); ids sort by time.
      type: str
      sample: 20261130T120000Z-1a2b3c4d
    vm:
      description: VM identity recorded at backup time (name, uuid, instance_uuid, ...).
      type: dict
    time:
      description: Backup time (UTC, ISO 8601).
      type: str
    started:
      description: When the backup was started (UTC, ISO 8601).
      type: str
    committed:
      description: When the backup was committed (UTC, ISO 8601).
      type: str
    base_backup_id:
      description: The backup an incremental builds on; null for a full backup.
      type: str
    previous_backup_id:
      description: The backup of the same VM this one followed in the repository's chain; null for the first.
      type: str
    tags:
      description: Tags given when the backup was started (name to value).
      type: dict
    disks:
      description: The disks backed up.
      type: list
      elements: dict
      contains:
        key:
          description: Device key of the disk in the backed-up VM.
          type: str
          sample: "2000"
        capacity:
          description: Capacity in bytes.
          type: int
        chunk_size:
          description: Chunk size in bytes.
          type: int
        change_id:
          description: CBT changeId of the snapshot the disk was read from; null without changed block tracking.
          type: str
        properties:
          description: What the export recorded about the disk (label, transport, encryption, ...).
          type: dict
        stats:
          description: Logical bytes, blocks written, new chunks, bytes stored, deduplicated and zero chunks.
          type: dict
    stats:
      description: Totals - logical bytes, zero blocks, new chunks, bytes stored, deduplicated chunks.
      type: dict
    nvram_saved:
      description: Whether the NVRAM file was saved.
      type: bool
    nvram_size:
      description: Size of the saved NVRAM file in bytes; null when none was saved.
      type: int
    metadata_saved:
      description: Whether the VM metadata (ConfigInfo, keyId, policies) was saved.
      type: bool
    secrets_saved:
      description: Names of the secrets stored in the encrypted manifest (for example C(encryption.bundle)).
      type: list
      elements: str
    encryption:
      description: What a restore of an encrypted VM needs.
      type: dict
      contains:
        vm_key_id:
          description: The VM's keyId (C(key_id), C(provider_id)); null when no metadata was saved or the VM was not
            encrypted.
          type: dict
        encryption_bundle_saved:
          description: Whether the C(encryption.bundle) was saved.
          type: bool
        repository_cipher:
          description: Cipher of the repository data.
          type: str
          sample: AES-256-GCM
    warnings:
      description: What would limit a restore (no bundle, no NVRAM, no metadata).
      type: list
      elements: str
unreadable_backups:
  description: Backups whose manifest could not be read or authenticated (tampered, truncated, unknown version).
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The backup.
      type: str
    error:
      description: Why its manifest could not be read.
      type: str
backup:
  description: Summary of O(backup_id), same fields as an element of RV(backups).
  returned: when O(backup_id) is given
  type: dict
  contains: *summary
staged_backups:
  description: Staged (uncommitted) backups.
  returned: when O(staged=true)
  type: list
  elements: dict
  contains:
    backup_id:
      description: The staged backup.
      type: str
    vm:
      description: Identity of the VM as recorded when the backup started; null when that part is unreadable.
      type: dict
    parts:
      description: Parts written so far (C(vm), C(metadata), C(nvram), disks).
      type: list
      elements: str
    last_change:
      description: When a part was last written (epoch seconds).
      type: float
    in_use:
      description: Whether a live writer holds the backup.
      type: bool
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError), C(WrongKeyError).
  returned: failure
  type: str
  sample: BackupNotFoundError
"""


from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
    open_repository,
    pass_on_repository_warnings,
)


def run(module):
    params = module.params
    repo = open_repository(params)
    result = {"changed": False}
    if params["backup_id"]:
        result["backup"] = repo.read_manifest(params["backup_id"]).summary()
    unreadable = []
    result["backups"] = [item.summary() for item in repo.list_backups(vm=params["vm"], latest=params["latest"],
                                                                      errors=unreadable)]
    result["unreadable_backups"] = unreadable
    if unreadable:
        module.warn("%d backup manifest(s) could not be read or authenticated; run backup_verify" % len(unreadable))
    if params["staged"]:
        result["staged_backups"] = repo.list_staged()
    pass_on_repository_warnings(module, repo)
    return result


def main():
    run_module(run, groups=("repository",), options=dict(
        backup_id=dict(type="str"),
        vm=dict(type="str"),
        latest=dict(type="bool", default=False),
        staged=dict(type="bool", default=False),
    ))


if __name__ == "__main__":
    main()
