#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: backup_keys_check
short_description: Whether backups of encrypted VMs can still be restored under their original keys on a vCenter
version_added: 0.1.0
description:
  - For each committed backup chosen, answers whether it can still be restored under its original key on this
    vCenter - the C(ConfigInfo.keyId) and C(encryption.bundle) were saved, a key provider with the saved cluster name
    is registered, and vCenter reports the key available (C(QueryCryptoKeyStatus)). Also names each disk whose saved
    key is no longer available.
  - Meant to run on a schedule (for example weekly from AWX), so that a vanished key provider or key is found before
    the day a restore is needed. A flagged backup can still be restored, with new keys - its NVRAM and any vTPM
    contents are then lost (see M(vmcrypt.backup.restore_plan)).
  - Read-only. Asks vCenter once for the key providers and once for the status of every saved key.
  - A separate module rather than an option of M(vmcrypt.backup.backup_info), which reads the repository alone and
    needs neither vCenter nor pyVmomi; this one needs both.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.repository
options:
  backup_ids:
    description:
      - Ids of the backups to check. Without them, every committed backup (of O(vm), the newest per VM with
        O(latest)).
    type: list
    elements: str
  vm:
    description:
      - Only backups of this VM, matched against the name, BIOS uuid or instance uuid recorded at backup time.
    type: str
  latest:
    description:
      - Only the newest backup of each VM.
    type: bool
    default: false
notes:
  - Supports check mode - the module is read-only and does the same in check mode.
  - Asking vCenter about key status needs C(Cryptographer.ManageKeys), listing key providers
    C(Cryptographer.ManageKeyServers). Without them a backup's key is C(unverified) (or judged by its provider alone).
seealso:
  - module: vmcrypt.backup.restore_plan
  - module: vmcrypt.backup.backup_info
"""

EXAMPLES = r"""
- name: Weekly - can the newest backup of each VM still be restored under its original key?
  vmcrypt.backup.backup_keys_check:
    repository: /backups/repo
    latest: true
  register: keys
  failed_when: keys.flagged | length > 0

- name: One VM's backups
  vmcrypt.backup.backup_keys_check:
    repository: /backups/repo
    vm: app01
  register: keys
"""

RETURN = r"""
backups:
  description: One entry per backup checked, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    backup_id:
      description: Backup id.
      type: str
    vm:
      description: The VM as the backup records it.
      type: dict
    status:
      description:
        - C(available) - the original key can be used here.
        - C(key_unavailable) - keyId and bundle were saved, but vCenter cannot use the key (provider gone, key
          missing in the key server, ...).
        - C(not_saved) - the VM was (or may have been) encrypted but keyId or bundle was not saved, or no metadata
          was saved at all.
        - C(unverified) - saved, but vCenter could not be asked.
        - C(not_encrypted) - the VM was not encrypted.
      type: str
    restorable_with_original_key:
      description: True for C(available), false for C(key_unavailable) and C(not_saved); null for C(unverified) and
        C(not_encrypted).
      type: bool
    flagged:
      description: Whether an administrator must act (C(key_unavailable) or C(not_saved)).
      type: bool
    detail:
      description: One sentence saying why.
      type: str
    key_id:
      description: The VM home's saved keyId; null when none was saved.
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider id; null when the key names none.
          type: str
    provider_registered:
      description: Whether a key provider of the saved cluster name is registered; null when no key was saved or the
        providers could not be listed.
      type: bool
    key_available:
      description: Whether vCenter can use the key; null when no key was saved or it could not be verified.
      type: bool
    verified_by:
      description: C(QueryCryptoKeyStatus) or C(ListKmipServers); null when nothing was verified.
      type: str
    disks_with_unavailable_keys:
      description: Disks whose saved key vCenter cannot use (they would get new keys).
      type: list
      elements: dict
      contains:
        key:
          description: Device key.
          type: str
        key_id:
          description: The disk's saved key.
          type: dict
        reason:
          description: Why it is not available.
          type: str
flagged:
  description: Ids of the backups RV(backups[].flagged) marks.
  returned: always
  type: list
  elements: str
check_warnings:
  description: What could not be asked of vCenter (also shown as task warnings).
  returned: always
  type: list
  elements: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError).
  returned: failure
  type: str
  sample: BackupNotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_client
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import pass_on_repository_warnings
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import check_backup_keys


def run(module):
    params = module.params
    with repository_and_client(params) as (repository, client):  # the key derived during the login
        entries, warnings = check_backup_keys(client, repository, backup_ids=params["backup_ids"], vm=params["vm"],
                                              latest=params["latest"])
    for warning in warnings:
        module.warn(warning)
    pass_on_repository_warnings(module, repository)
    return {"changed": False, "backups": entries, "check_warnings": warnings,
            "flagged": [entry["backup_id"] for entry in entries if entry["flagged"]]}


def main():
    run_module(run, groups=("vsphere", "repository"), options=dict(
        backup_ids=dict(type="list", elements="str"),
        vm=dict(type="str"),
        latest=dict(type="bool", default=False),
    ))


if __name__ == "__main__":
    main()
