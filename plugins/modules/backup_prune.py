#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_prune
short_description: Apply a retention policy to an encrypted backup repository and collect garbage
version_added: 0.1.0
description:
  - Keeps, for each VM, the backups selected by O(keep_last), O(keep_daily), O(keep_weekly) and O(keep_monthly)
    (a backup selected by any rule is kept), and deletes the manifests of the others.
  - With no keep rule every backup is kept and only garbage is collected.
  - Deletes staged backups abandoned for longer than O(abandoned_after_hours), then every chunk that no remaining
    backup or staged backup references, and temporary files of interrupted writers.
  - Takes the repository's exclusive lock and refuses to run while a backup, a verify or another prune runs.
    Locks of dead processes are detected and removed.
  - In check mode nothing is deleted and no lock is taken; the result says what would be deleted.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.repository
options:
  keep_last:
    description: Keep the N newest backups of each VM.
    type: int
    default: 0
  keep_daily:
    description: Keep the newest backup of each of the N newest days (UTC) that have a backup, per VM.
    type: int
    default: 0
  keep_weekly:
    description: Keep the newest backup of each of the N newest ISO weeks that have a backup, per VM.
    type: int
    default: 0
  keep_monthly:
    description: Keep the newest backup of each of the N newest months that have a backup, per VM.
    type: int
    default: 0
  abandoned_after_hours:
    description:
      - A staged backup that no live process works on and that has not changed for this many hours is
        abandoned and deleted.
    type: float
    default: 24
notes:
  - Supports check mode (dry run).
  - Retention is applied per VM, keyed by instance uuid, else BIOS uuid, else name.
attributes:
  check_mode:
    description: In check mode nothing is deleted and no lock is taken; the result is the plan a real run would carry out.
    support: full
"""

EXAMPLES = r"""
- name: What would go (dry run)
  vmcrypt.backup.backup_prune:
    repository: /backups/repo
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12
  check_mode: true
  register: plan

- name: Prune
  vmcrypt.backup.backup_prune:
    repository: /backups/repo
    keep_last: 3
    keep_daily: 7
    keep_weekly: 4
    keep_monthly: 12
"""

RETURN = r"""
dry_run:
  description: Whether this was a dry run (check mode).
  returned: always
  type: bool
kept_backups:
  description: Backups kept, and the rules that kept each one.
  returned: always
  type: list
  elements: dict
  contains:
    backup_id: &backup_id
      description: The backup.
      type: str
    vm: &vm
      description: Identity of the VM as recorded at backup time (C(name), C(uuid), ...).
      type: dict
    reasons:
      description: The rules that kept it.
      type: list
      elements: str
      sample: [last 1, daily 2026-11-30]
removed_backups:
  description: Backups deleted (or that would be).
  returned: always
  type: list
  elements: dict
  contains:
    backup_id: *backup_id
    vm: *vm
abandoned_staged_backups:
  description: Staged backups deleted (or that would be).
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: The staged backup.
      type: str
    vm:
      description: Identity of the VM as recorded when the backup started; null when that part is unreadable.
      type: dict
chunks_removed:
  description: Chunks deleted (or that would be).
  returned: always
  type: int
bytes_freed:
  description: Bytes freed (or that would be).
  returned: always
  type: int
temp_files_removed:
  description: Temporary files of interrupted writers deleted (or that would be).
  returned: always
  type: int
chunks_kept_in_grace:
  description: Unreferenced chunks kept because they are too young to be garbage (a writer may still reference them).
  returned: always
  type: int
used_reserve:
  description: Whether the file system was full and prune freed the repository's reserved space to take its lock.
  returned: always
  type: bool
stale_locks_removed:
  description: Locks of dead processes removed.
  returned: always
  type: int
error_type:
  description:
    - On failure, the name of the error's class, for example C(InvalidArgumentError), C(LockedError).
  returned: failure
  type: str
  sample: InvalidArgumentError
"""

import math

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
    open_repository,
    pass_on_repository_warnings,
)

RULES = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")


def run(module):
    params = module.params
    for rule in RULES:
        if params[rule] < 0:
            raise InvalidArgumentError("%s must not be negative" % rule)
    if not math.isfinite(params["abandoned_after_hours"]) or params["abandoned_after_hours"] < 0:
        raise InvalidArgumentError("abandoned_after_hours must be a finite number of hours, at least 0")
    repo = open_repository(params)
    report = repo.prune(dry_run=module.check_mode, abandoned_after=params["abandoned_after_hours"] * 3600.0,
                        **dict((rule, params[rule]) for rule in RULES))
    removed = ("removed_backups", "abandoned_staged_backups", "chunks_removed", "temp_files_removed",
               "stale_locks_removed")
    report["changed"] = any(report[name] for name in removed)
    pass_on_repository_warnings(module, repo)
    return report


def main():
    run_module(run, groups=("repository",), options=dict(
        keep_last=dict(type="int", default=0),
        keep_daily=dict(type="int", default=0),
        keep_weekly=dict(type="int", default=0),
        keep_monthly=dict(type="int", default=0),
        abandoned_after_hours=dict(type="float", default=24.0),
    ))


if __name__ == "__main__":
    main()
