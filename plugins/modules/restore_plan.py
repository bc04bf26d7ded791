#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: restore_plan
short_description: Say what restoring a backup of an encrypted VM will do on this vCenter, before anything is created
version_added: 0.1.0
description:
  - Reads one committed backup's manifest and the target vCenter, and decides - for the VM home and each disk - the
    key mode, the storage policy, what happens to the NVRAM and whether the VM will power on, following the VDDK
    guide's section on encrypted VMs (see C(docs/restore.md)).
  - B(Key mode.) C(original) gives the saved C(ConfigInfo.keyId) and C(encryption.bundle) back in the new
    ConfigSpec, so the VM home and its NVRAM stay under the original key. It needs both saved and the key available
    on this vCenter - vCenter's C(QueryCryptoKeyStatus) says so; a key provider with the same cluster name (a
    replicated key server) counts. C(new) encrypts with new keys from the key server through the encryption storage
    policy. C(none) restores unencrypted. C(auto) picks C(original), else C(new), and says why; a VM the backup
    records as never encrypted stays unencrypted.
  - B(Storage policy.) The saved policy if it still exists (by id, then by name), else O(storage_policy), else the
    sample C(VM Encryption Policy), with a warning. Under the original key each encrypted disk keeps its saved keyId
    when that key is available; otherwise vCenter gets it a new key.
  - B(NVRAM.) Restored from the backup only under the original key - it is encrypted with the key in the
    C(encryption.bundle). Otherwise a generic NVRAM is used and the consequences are stated - a UEFI VM may need
    Secure Boot reconfigured or its boot disk reselected, and a vTPM's contents are lost.
  - B(Power-on.) Without access to the original key the VM will not power on after a restore under that key. The
    lost-key path (C(new)) removes the C(encryption.bundle), gives only an encryption storage policy and loses the
    NVRAM's data.
  - Read-only. Never returns the C(encryption.bundle), only whether it was saved and whether it would be restored.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.repository
options:
  backup_id:
    description:
      - Id of the committed backup to plan the restore of (see M(vmcrypt.backup.backup_info)).
    type: str
    required: true
  key_mode:
    description:
      - C(auto) - the original key when it can be used here, else new keys; a VM that was not encrypted stays so.
      - C(original) - the saved keyId and C(encryption.bundle). The plan is not feasible when they were not saved;
        when the key is not available here the plan predicts that the VM will not power on.
      - C(new) - new keys from the key server (also the lost-key path).
      - C(none) - unencrypted, only when you ask for it.
    type: str
    choices: [auto, original, new, none]
    default: auto
  storage_policy:
    description:
      - Id or name of the storage policy for an encrypted VM home or disk whose saved policy no longer exists (or was
        not saved). Without it, the sample C(VM Encryption Policy) is used, with a warning.
      - With O(key_mode=none), the policy of the VM home and every disk (without it, the datastore's default).
    type: str
notes:
  - Supports check mode - the module is read-only and does the same in check mode.
  - Asking vCenter about key status needs C(Cryptographer.ManageKeys), listing key providers
    C(Cryptographer.ManageKeyServers). Without them the plan says the key could not be verified.
seealso:
  - module: vmcrypt.backup.backup_keys_check
  - module: vmcrypt.backup.backup_info
"""

EXAMPLES = r"""
- name: What would restoring this backup do here?
  vmcrypt.backup.restore_plan:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
  register: plan

- name: Show the plan to the operator
  ansible.builtin.debug:
    msg: "{{ plan.sentences }}"

- name: Stop unless the VM will power on
  ansible.builtin.assert:
    that:
      - plan.feasible
      - plan.power_on.predicted
    fail_msg: "{{ plan.sentences | join(' ') }}"

- name: The key server is gone - plan the lost-key path with the administrator's policy
  vmcrypt.backup.restore_plan:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
    key_mode: new
    storage_policy: Gold encrypted
"""

RETURN = r"""
backup_id:
  description: The backup planned.
  returned: always
  type: str
  sample: 20260101T020000Z-1a2b3c4d
vm:
  description: The VM as the backup records it (name, uuid, instance_uuid, moid as far as they were recorded).
  returned: always
  type: dict
metadata_saved:
  description: Whether the backup holds the VM's metadata (configuration, keyId, policies). A backup of disks alone
    does not.
  returned: always
  type: bool
encrypted_at_backup:
  description: Whether the VM home or a disk was encrypted when backed up; null when no metadata was saved.
  returned: always
  type: bool
key_mode:
  description: The key mode asked for and the one chosen, with the reason.
  returned: always
  type: dict
  contains:
    requested:
      description: O(key_mode).
      type: str
      sample: auto
    chosen:
      description: C(original), C(new) or C(none).
      type: str
      sample: original
    reason:
      description: Why, in one sentence.
      type: str
original_key:
  description: The VM home's saved key and whether this vCenter can use it.
  returned: always
  type: dict
  contains:
    key_id:
      description: The saved keyId and its key provider; null when none was saved (no metadata, or a VM home that
        was not encrypted).
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider (cluster) id; null when the key names none.
          type: str
    encryption_bundle_saved:
      description: Whether the C(encryption.bundle) was saved (its value is never returned).
      type: bool
    provider_registered:
      description: Whether a key provider with the saved cluster name is registered here; null when no key was
        saved or the providers could not be listed.
      type: bool
    available:
      description: Whether vCenter can use the key; null when no key was saved or it could not be verified.
      type: bool
    reason:
      description: Why the key is not available, or why it could not be verified; null when it is available or
        no key was saved.
      type: str
    verified_by:
      description: C(QueryCryptoKeyStatus), or C(ListKmipServers) when the key status could not be asked; null when
        nothing could be verified or no key was saved.
      type: str
feasible:
  description: Whether the restore can be done as planned (see RV(problems)).
  returned: always
  type: bool
problems:
  description: What makes the plan infeasible (empty when it is feasible).
  returned: always
  type: list
  elements: str
vm_home:
  description: The decision for the VM home (configuration files and NVRAM).
  returned: always
  type: dict
  contains:
    key_mode:
      description: C(original), C(new) or C(none).
      type: str
    key_id:
      description: The key given in the ConfigSpec; null unless the original key is used.
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider id; null when the key names none.
          type: str
    encryption_bundle:
      description: C(restored) into extraConfig, C(removed) (saved but not used) or C(not_saved).
      type: str
    storage_policy:
      description: The policy given as vmProfile; null for none (the datastore's default).
      type: dict
      contains:
        id:
          description: Policy id.
          type: str
        name:
          description: Policy name.
          type: str
        source:
          description: C(saved), C(saved_by_name) (the saved id is gone, a policy of that name exists),
            C(administrator) (O(storage_policy)) or C(sample) (the sample encryption policy).
          type: str
disks:
  description: The decision for each disk of the backup (and each disk the VM had whose data is not in it).
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Device key.
      type: str
      sample: "2000"
    label:
      description: Device label; null when no metadata was saved.
      type: str
    capacity_bytes:
      description: Capacity recorded in the metadata; null when no metadata was saved.
      type: int
    in_backup:
      description: Whether the backup holds this disk's data (else it is created blank).
      type: bool
    encrypted_at_backup:
      description: Whether the disk was encrypted; null when no metadata was saved.
      type: bool
    saved_key_id:
      description: The disk's saved keyId; null when it was not encrypted or no metadata was saved.
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider id; null when the key names none.
          type: str
    key_mode:
      description: C(original) (its saved key), C(new) (a new key from the key server) or C(none).
      type: str
    key_id:
      description: The key given for the disk; null unless its original key is used.
      type: dict
      contains:
        key_id:
          description: Key id.
          type: str
        provider_id:
          description: Key provider id; null when the key names none.
          type: str
    storage_policy:
      description: The policy given as the disk's profile; null for none (the datastore's default).
      type: dict
      contains:
        id:
          description: Policy id.
          type: str
        name:
          description: Policy name.
          type: str
        source:
          description: C(saved), C(saved_by_name) (the saved id is gone, a policy of that name exists),
            C(administrator) (O(storage_policy)) or C(sample) (the sample encryption policy).
          type: str
nvram:
  description: What happens to the NVRAM.
  returned: always
  type: dict
  contains:
    saved:
      description: Whether the backup holds the NVRAM.
      type: bool
    size:
      description: Bytes saved; null when none was saved.
      type: int
    action:
      description: C(restore) (the saved NVRAM is uploaded) or C(generic) (vSphere creates a new one).
      type: str
    reason:
      description: Why.
      type: str
    consequences:
      description: What a generic NVRAM means for this VM (UEFI Secure Boot and boot disk, vTPM contents).
      type: list
      elements: str
power_on:
  description: Whether the restored VM will power on here.
  returned: always
  type: dict
  contains:
    predicted:
      description: True or false; null when it could not be verified whether vCenter can use the key.
      type: bool
    reason:
      description: Why.
      type: str
key_providers:
  description: The key providers registered on this vCenter; null when they could not be listed.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Key provider (cluster) id.
      type: str
    management_type:
      description: How vCenter manages it (C(vCenter) for a standard KMIP provider, C(nativeProvider), ...); null
        when vCenter does not say.
      type: str
    default:
      description: Whether it is the default key provider.
      type: bool
    servers:
      description: Names of its key servers.
      type: list
      elements: str
sentences:
  description: The plan in plain sentences, for the operator and the restore report.
  returned: always
  type: list
  elements: str
plan_warnings:
  description: What an administrator must read before restoring (also shown as task warnings).
  returned: always
  type: list
  elements: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(BackupNotFoundError), C(NotFoundError).
  returned: failure
  type: str
  sample: NotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_client
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import pass_on_repository_warnings
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import KEY_MODES, plan_restore


def run(module):
    params = module.params
    # the key is derived during the login; a wrong password is still reported first, and nothing is changed
    with repository_and_client(params) as (repository, client):
        plan, sentences, warnings = plan_restore(client, repository, params["backup_id"], key_mode=params["key_mode"],
                                                 storage_policy=params["storage_policy"])
    for warning in warnings:
        module.warn(warning)
    pass_on_repository_warnings(module, repository)
    return dict(plan, changed=False, sentences=sentences, plan_warnings=warnings)


def main():
    run_module(run, groups=("vsphere", "repository"), options=dict(
        backup_id=dict(type="str", required=True),
        key_mode=dict(type="str", choices=list(KEY_MODES), default="auto"),
        storage_policy=dict(type="str"),
    ))


if __name__ == "__main__":
    main()
