#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_commit
short_description: Commit a staged backup, or discard it
version_added: 0.1.0
description:
  - The last step of a backup run - metadata_capture starts a staged backup, disk_export adds the disks, and this
    module commits it (writes its manifest, so it becomes a backup that backup_info lists and restores use), or
    discards it when a step failed, so that nothing half-made is ever visible.
  - O(warnings) are recorded in the backup, for example a backup snapshot that could not be removed.
  - Idempotent - committing a committed backup, or discarding an absent one, changes nothing. A committed backup
    is never discarded (remove it with backup_prune).
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.repository
options:
  backup_id:
    description:
      - The staged backup.
    type: str
    required: true
  state:
    description:
      - V(committed) commits the backup; V(discarded) removes the staged backup (its chunks go at the next prune).
    type: str
    choices: [committed, discarded]
    default: committed
  warnings:
    description:
      - One-line warnings to record in the backup when it is committed.
    type: list
    elements: str
    default: []
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Commit the backup once every disk is stored
  vmcrypt.backup.backup_commit:
    repository: /backups/repo
    backup_id: "{{ metadata.backup_id }}"

- name: Discard it when the export failed
  vmcrypt.backup.backup_commit:
    repository: /backups/repo
    backup_id: "{{ metadata.backup_id }}"
    state: discarded
"""

RETURN = r"""
backup_id:
  description: The backup.
  returned: always
  type: str
state:
  description: V(committed) or V(discarded).
  returned: always
  type: str
backup:
  description: Summary of the committed backup (as backup_info shows it, nothing secret); null when discarded and in
    check mode.
  returned: always
  type: dict
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError), C(LockedError).
  returned: failure
  type: str
  sample: BackupNotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
    open_repository,
    pass_on_repository_warnings,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.staged_backup import (
    commit_backup,
    discard_backup,
)


def run(module):
    params = module.params
    repository = open_repository(params)
    pass_on_repository_warnings(module, repository)
    if params["state"] == "discarded":
        return discard_backup(repository, params["backup_id"], dry_run=module.check_mode)
    return commit_backup(repository, params["backup_id"], warnings=params["warnings"], dry_run=module.check_mode)


def main():
    run_module(run, groups=("repository",), options=dict(
        backup_id=dict(type="str", required=True),
        state=dict(type="str", choices=["committed", "discarded"], default="committed"),
        warnings=dict(type="list", elements="str", default=[]),
    ))


if __name__ == "__main__":
    main()
