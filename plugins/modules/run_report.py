#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run_report
short_description: Report a backup or restore run - per VM and per disk - as Markdown, an HTML page and JSON
version_added: 0.1.0
description:
  - Turns the record of a backup or restore run (what C(playbooks/backup.yml) collects from each VM) into a report a
    person would rather look at than read through job logs - per VM and per disk the bytes read, stored, skipped as
    holes and deduplicated (for a restore written, zeroed and skipped), the duration and throughput, the transport,
    the key mode, the warnings and why a VM failed.
  - Returns the report as Markdown (RV(markdown)) for the console and the job log.
  - With O(dest), also writes C(<kind>-report-<run_id>.md), C(<kind>-report-<run_id>.html) - one self-contained page
    with inline CSS and SVG charts of where the time and the bytes went, no script and no fetch of anything - and
    C(<kind>-report-<run_id>.json), the normalised record.
  - Every field of a VM's entry may be missing or null (a VM that failed early); the report says C(n/a) for it.
    Fields the record schema does not list are left out of all three files, so the report holds nothing else (see
    O(run)). The backup role's entries never hold a secret - no C(encryption.bundle), no password.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
options:
  run:
    description:
      - The run record. C(kind) - C(backup) or C(restore); C(run_id) - letters, digits, C(.), C(_) and C(-), it names
        the files; C(started) and C(finished) - optional ISO 8601 times; C(vms) - one entry per VM (a null entry is
        a VM that reported nothing).
      - 'A backup entry, as the C(vmcrypt.backup.backup) role records it: C(vm), C(status) (C(ok) or C(failed)),
        C(failure), C(backup_id), C(verified), C(key_mode) (C(encrypted) or C(plain)), C(duration_seconds),
        C(transports), C(bytes_read), C(bytes_stored), C(bytes_skipped), C(bytes_deduplicated), C(encryption)
        (C(key_id) with C(key_id) and C(provider_id), C(encryption_bundle_saved), C(nvram_saved)), C(warnings) and
        C(disks), each with C(key), C(label), C(encrypted), C(incremental), C(transport), C(capacity_bytes),
        C(bytes_read), C(bytes_stored), C(bytes_skipped), C(bytes_deduplicated), C(new_chunks),
        C(deduplicated_chunks), C(duration_seconds) and C(throughput_mib_s).'
      - 'A restore entry: C(vm) (the restored VM), C(source_vm), C(backup_id), C(status) (C(ok), C(planned) in a
        check-mode run, or C(failed)), C(failure), C(key_mode) (C(original), C(new) or C(none)) and
        C(key_mode_reason), C(moid), C(removed_half_made_vm), C(kept_failed_vm), C(power_on) (C(predicted),
        C(reason), C(powered_on)), C(duration_seconds), C(transports), C(bytes_written), C(bytes_zeroed),
        C(bytes_skipped), C(nvram) (C(action), C(uploaded), C(consequences)),
        C(sentences) (the plan in words), C(warnings) and C(disks), each with C(key), C(capacity_bytes),
        C(bytes_written), C(bytes_zeroed), C(bytes_skipped), C(transport), C(duration_seconds) and
        C(throughput_mib_s).'
      - A VM's byte totals missing from its entry are the sums of its disks'.
    type: dict
    required: true
  dest:
    description:
      - Folder to write the report's three files into, created (mode C(0700)) when missing. Each file gets mode
        C(0600) and is rewritten only when its content or mode differs.
      - Without it, nothing is written and RV(files) is empty.
    type: path
notes:
  - Supports check mode - it renders the report and returns the paths it would write, writing nothing.
  - The files are written where the module runs; in a playbook run it on the controller (C(localhost)).
attributes:
  check_mode:
    description: Can run in check mode and return the report and whether the files would change, without writing.
    support: full
seealso:
  - module: vmcrypt.backup.backup_info
"""

EXAMPLES = r"""
- name: Report the run on the console and into the report folder
  vmcrypt.backup.run_report:
    run:
      kind: backup
      run_id: "{{ vmcrypt_run_id }}"
      vms: "{{ groups['vmcrypt_backup_targets'] | map('extract', hostvars, 'backup_report') | list }}"
    dest: /var/log/vmcrypt
  register: report

- name: Show it
  ansible.builtin.debug:
    msg: "{{ report.markdown.splitlines() }}"

- name: Fail when any VM failed
  ansible.builtin.assert:
    that: report.summary.failed == 0
"""

RETURN = r"""
markdown:
  description: The report as Markdown; every value from the record is escaped.
  returned: always
  type: str
  sample: |
    # vmcrypt.backup backup run 20261130T120000Z

    **2 of 2 VMs backed up, 0 failed**
files:
  description:
    - Paths of the files written, by extension (C(md), C(html), C(json)); in check mode the paths that would be
      written. Empty without O(dest).
  returned: always
  type: dict
  contains:
    md:
      description: The Markdown report.
      returned: when O(dest) is given
      type: str
      sample: /var/log/vmcrypt/backup-report-20261130T120000Z.md
    html:
      description: The HTML page.
      returned: when O(dest) is given
      type: str
      sample: /var/log/vmcrypt/backup-report-20261130T120000Z.html
    json:
      description: The normalised run record.
      returned: when O(dest) is given
      type: str
      sample: /var/log/vmcrypt/backup-report-20261130T120000Z.json
summary:
  description: How many VMs the run had, and how many succeeded, were only planned and failed.
  returned: always
  type: dict
  contains:
    vms:
      description: Entries in the run record.
      type: int
    ok:
      description: Entries with status C(ok).
      type: int
    planned:
      description: Entries with status C(planned) (the plans of a check-mode restore run).
      type: int
    failed:
      description: The other entries, including null ones.
      type: int
error_type:
  description:
    - On failure, the name of the error's class, for example C(InvalidArgumentError) for a record without a valid
      C(kind) or C(run_id), C(ReportFileError) when the files cannot be written.
  returned: failure
  type: str
  sample: InvalidArgumentError
"""


from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.run_report import run_report


def run(module):
    return run_report(module.params["run"], dest=module.params["dest"], dry_run=module.check_mode)


def main():
    run_module(run, options=dict(
        run=dict(type="dict", required=True),
        dest=dict(type="path"),
    ))


if __name__ == "__main__":
    main()
