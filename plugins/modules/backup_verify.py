#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_verify
short_description: Read back and authenticate the chunks of one backup or of all backups
version_added: 0.1.0
description:
  - Decrypts every backup manifest asked for, then reads, decrypts and authenticates every chunk those backups
    reference (each shared chunk once), and reports each missing or corrupt chunk by backup, disk and offset.
  - In sampled mode every chunk is checked for presence and only a random fraction is read and authenticated,
    for large repositories.
  - Fails the task when a problem is found, unless O(fail_on_error=false).
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.repository
options:
  backup_id:
    description:
      - Verify this backup only. Without it every committed backup is verified.
    type: str
  sample:
    description:
      - Fraction of the referenced chunks to read and authenticate, above 0 and at most 1.
      - Without it every chunk is read.
    type: float
  threads:
    description: Number of chunks read at once, from 1 to 64.
    type: int
    default: 4
  fail_on_error:
    description: Whether a missing or corrupt chunk or an unreadable manifest fails the task.
    type: bool
    default: true
notes:
  - Supports check mode; it changes nothing. It takes a shared lock, so it does not run beside a prune.
attributes:
  check_mode:
    description: Can run in check mode and return the same report, since it changes nothing (it only writes and removes its own lock file).
    support: full
"""

EXAMPLES = r"""
- name: Verify the backup just taken
  vmcrypt.backup.backup_verify:
    repository: /backups/repo
    backup_id: "{{ backup.backup_id }}"

- name: Weekly spot check of a large repository
  vmcrypt.backup.backup_verify:
    repository: /backups/repo
    sample: 0.05
"""

RETURN = r"""
ok:
  description: Whether everything checked is present and authentic.
  returned: always
  type: bool
backups_checked:
  description: Number of backups whose manifest was read.
  returned: always
  type: int
backups_failed:
  description: Ids of the backups with a problem.
  returned: always
  type: list
  elements: str
chunks_referenced:
  description: Distinct chunks the checked backups reference.
  returned: always
  type: int
chunks_authenticated:
  description: Chunks read, decrypted and authenticated.
  returned: always
  type: int
sampled:
  description: Whether only a sample was authenticated.
  returned: always
  type: bool
missing_count:
  description: References to missing chunks.
  returned: always
  type: int
corrupt_count:
  description: References to corrupt chunks.
  returned: always
  type: int
missing:
  description: Up to 1000 missing references.
  returned: always
  type: list
  elements: dict
  contains: &reference
    backup_id:
      description: The backup that references the chunk.
      type: str
    disk:
      description: Key of the disk (or C(nvram)) that references the chunk.
      type: str
    offset:
      description: Offset of the chunk in the disk.
      type: int
    chunk:
      description: Id of the chunk.
      type: str
    error:
      description: What is wrong with it.
      type: str
corrupt:
  description: Up to 1000 corrupt references.
  returned: always
  type: list
  elements: dict
  contains: *reference
chain_errors:
  description: Breaks in the chain of backups (a backup removed, replaced or altered behind the repository's back).
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The backup whose chain is broken; null for a problem of the chain itself (an unreadable head record).
      type: str
    vm:
      description: Name of the backup's VM; null with RV(chain_errors[].backup_id).
      type: str
    error:
      description: What is wrong.
      type: str
quarantined:
  description: Ids of up to 1000 corrupt chunks set aside in quarantine by this run.
  returned: always
  type: list
  elements: str
quarantined_count:
  description: Number of corrupt chunks set aside in quarantine by this run.
  returned: always
  type: int
manifest_errors:
  description: Backups whose manifest could not be read or authenticated.
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
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError), C(IntegrityError) (the report's
      keys are then returned too).
  returned: failure
  type: str
  sample: IntegrityError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
    open_repository,
    pass_on_repository_warnings,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError


def run(module):
    params = module.params
    repo = open_repository(params)
    backup_ids = [params["backup_id"]] if params["backup_id"] else None
    if backup_ids:
        repo.read_manifest(params["backup_id"])  # an unknown id is an error, not an empty report
    report = repo.verify(backup_ids, sample=params["sample"], threads=params["threads"],
                         quarantine=not module.check_mode)
    report["changed"] = report["quarantined_count"] > 0
    pass_on_repository_warnings(module, repo)
    if not report["ok"] and params["fail_on_error"]:
        raise IntegrityError("verify found %d missing and %d corrupt chunk references, %d unreadable manifests and %d "
                             "broken chains" % (report["missing_count"], report["corrupt_count"],
                                                len(report["manifest_errors"]), len(report["chain_errors"])),
                             details=report)
    return report


def main():
    run_module(run, groups=("repository",), options=dict(
        backup_id=dict(type="str"),
        sample=dict(type="float"),
        threads=dict(type="int", default=4),
        fail_on_error=dict(type="bool", default=True),
    ))


if __name__ == "__main__":
    main()
