#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: privilege_check
short_description: Check VADP and Cryptographer privileges and the transport rules for encrypted VMs
version_added: 0.1.0
description:
  - Tells which of the requested VDDK transports a backup or restore of a VM may use, which privileges are
    missing on which entity, and why each refused transport was refused.
  - Applies the VDDK guide's rules for encrypted VMs - NBDSSL and HotAdd need C(Cryptographer.Access); HotAdd
    also needs C(Cryptographer.AddDisk) and a proxy VM that is itself encrypted; SAN is never allowed. Plain NBD
    is refused too, because it would carry the decrypted disk data over the network in clear.
  - Checks each privilege on the entity where vCenter checks it - the VM, its host, its home datastore and
    datacenter, the vCenter root folder, the proxy VM and its datastore, or for a new VM the folder, resource
    pool, datastores and hosts. The lists, with their sources, are in the collection's C(docs/privileges.md).
  - vCenter decides who holds what - C(HasPrivilegeOnEntities) for the session user, C(HasUserPrivilegeOnEntities)
    (vSphere 6.5 and later) for another account (O(principal)). Only when vCenter lacks that method are the
    account's permissions evaluated here; RV(evaluated_by) says which way was used.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
options:
  phase:
    description:
      - V(backup) checks backing up the VM (snapshot, disk reads, NVRAM download), as P(vmcrypt.backup.disk_export#module)
        does.
      - V(restore) checks writing the disks of the existing VM the options select, as
        P(vmcrypt.backup.disk_import#module) does.
      - V(restore_vm) checks creating the VM a restore writes into (folder, resource pool, datastores, encryption,
        NVRAM upload), at O(restore_folder), O(restore_cluster) and O(restore_datastores), or where the selected
        source VM is; writing its disks is then the V(restore) check.
    type: str
    choices: [backup, restore, restore_vm]
    default: backup
  transports:
    description:
      - VDDK transport modes to check, in order of preference.
    type: list
    elements: str
    choices: [nbdssl, hotadd, nbd, san]
    default: [hotadd, nbdssl]
  proxy_vm:
    description:
      - Name (or moid) of the backup proxy VM that would hot-add the disks. Required for V(hotadd).
    type: str
  principal:
    description:
      - Account to check instead of the session user, as C(DOMAIN\\user) or C(user@domain).
    type: str
  principal_groups:
    description:
      - Groups O(principal) belongs to, for the evaluation of its permissions here (vCenter older than 6.5, or
        O(principal_evaluation=permissions)). vCenter's own answer knows the membership and ignores this.
    type: list
    elements: str
    default: []
  principal_evaluation:
    description:
      - How O(principal)'s privileges are decided. V(auto) asks vCenter (C(HasUserPrivilegeOnEntities)) and
        evaluates the permissions here only when vCenter cannot answer; V(vcenter) fails instead;
        V(permissions) always evaluates them here (from C(RetrieveAllPermissions), both inheritance paths of a VM,
        O(principal_groups)).
    type: str
    choices: [auto, vcenter, permissions]
    default: auto
  restore_folder:
    description:
      - For O(phase=restore_vm), the VM folder the VM would be created in; defaults to the source VM's folder,
        or the O(datacenter)'s VM folder.
    type: str
  restore_cluster:
    description:
      - For O(phase=restore_vm), the cluster whose root resource pool would hold the VM; defaults to the source
        VM's resource pool.
    type: str
  restore_datastores:
    description:
      - For O(phase=restore_vm), names of the datastores the VM would be written to; default the source VM's.
    type: list
    elements: str
    default: []
  encrypted:
    description:
      - For O(phase=restore_vm), whether the restored VM is encrypted, when the source VM no longer exists to
        tell. Defaults to the source VM's state.
    type: bool
  fail_on_missing:
    description:
      - Fail the task when no requested transport is allowed, with the reasons as the message.
    type: bool
    default: false
notes:
  - The VM is identified by O(name), O(uuid) or O(moid); with O(folder), O(name) must be directly in that folder.
  - Supports check mode; it changes nothing.
  - vCenter does not expose group membership through its API; when it cannot evaluate O(principal) itself, give
    O(principal_groups) for permissions held through groups.
attributes:
  check_mode:
    description: Can run in check mode and return the same facts, since it changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: May the backup account back up app01 over NBDSSL or HotAdd from proxy01?
  vmcrypt.backup.privilege_check:
    name: app01
    phase: backup
    transports: [hotadd, nbdssl]
    proxy_vm: proxy01
    principal: VSPHERE.LOCAL\backup
  register: backup_rights

- name: Fail early when the session user may not back up app01 at all
  vmcrypt.backup.privilege_check:
    name: app01
    transports: [nbdssl]
    fail_on_missing: true

- name: May the restore account write the disks of the existing VM app01-restored?
  vmcrypt.backup.privilege_check:
    name: app01-restored
    phase: restore
    transports: [nbdssl]
    principal: restore@vsphere.local

- name: May we create an encrypted VM in DC1/vm/restored on cluster C1?
  vmcrypt.backup.privilege_check:
    phase: restore_vm
    datacenter: DC1
    restore_folder: restored
    restore_cluster: C1
    restore_datastores: [datastore1]
    encrypted: true
    transports: [nbdssl]
"""

RETURN = r"""
allowed_transports:
  description: The requested transports that are allowed, in the order requested.
  returned: always
  type: list
  elements: str
  sample: [nbdssl]
missing_privileges:
  description: Privileges missing for the requested transports, by the part an entity plays.
  returned: always
  type: list
  elements: dict
  contains:
    role:
      description: The part the entities play - V(vm), V(host), V(datastore), V(datacenter), V(root), V(proxy_vm),
        V(proxy_datastore), or for V(restore_vm) V(folder), V(resource_pool), V(unencrypted_host).
      type: str
    entities:
      description: The entities (C(moid), C(name)) in that role.
      type: list
      elements: dict
    privileges:
      description: Privilege ids missing there.
      type: list
      elements: str
  sample:
    - role: vm
      entities: [{moid: vm-42, name: app01}]
      privileges: [Cryptographer.Access]
refused_transports:
  description: The requested transports that are refused, in the order requested, each with its reason.
  returned: always
  type: list
  elements: dict
  contains:
    transport:
      description: The transport refused.
      type: str
      sample: hotadd
    reason:
      description: Why it is refused.
      type: str
      sample: "hotadd needs proxy_vm: the VM that would hot-add the disks"
reasons:
  description: One sentence for each refused transport (and for privileges every transport lacks).
  returned: always
  type: list
  elements: str
  sample: ["san refused: san is not supported for encrypted disks; use nbdssl or hotadd"]
evaluated_by:
  description: How the privileges were decided - by vCenter (C(HasPrivilegeOnEntities) for the session user,
    C(HasUserPrivilegeOnEntities) for O(principal)), or evaluated here from the permissions.
  returned: always
  type: str
  sample: "vcenter: HasUserPrivilegeOnEntities"
checked_entities:
  description: The entities checked, by the part they play, each with C(moid) and C(name).
  returned: always
  type: dict
  sample: {vm: [{moid: vm-42, name: app01}], root: [{moid: group-d1, name: Datacenters}]}
unchecked_roles:
  description: Entity roles that could not be checked because no entity was given (restore without a target datastore,
    say).
  returned: always
  type: list
  elements: str
vm_encrypted:
  description: Whether the VM (home or any disk) is encrypted, or O(encrypted) for O(phase=restore_vm).
  returned: always
  type: bool
proxy_encrypted:
  description: Whether the proxy VM is encrypted; null without O(proxy_vm).
  returned: always
  type: bool
phase:
  description: The phase checked.
  returned: always
  type: str
principal:
  description: The account checked, or C(session user).
  returned: always
  type: str
requested_transports:
  description: The transports asked about.
  returned: always
  type: list
  elements: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(PermissionDeniedError) with O(fail_on_missing),
      C(NotFoundError).
  returned: failure
  type: str
  sample: PermissionDeniedError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import PermissionDeniedError
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import client_from_params, selector_from_params
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.specs import DEFAULT_TRANSPORTS
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.catalog import PHASES
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.permissions import EVALUATIONS
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import TRANSPORTS
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.access import AccessCheck, RestoreTarget


def run(module):
    params = module.params
    selector = selector_from_params(params)
    target = RestoreTarget(datacenter=params["datacenter"], folder=params["restore_folder"],
                           cluster=params["restore_cluster"], datastores=params["restore_datastores"],
                           encrypted=params["encrypted"])
    with client_from_params(params) as client:
        finder = VmFinder(client)
        vm = finder.find_one(selector) if selector.identifies_one_vm else None
        proxy = finder.find_by_name_or_moid(params["proxy_vm"], params["datacenter"]) if params["proxy_vm"] else None
        checker = AccessCheck(client, finder, principal=params["principal"],
                              principal_groups=params["principal_groups"],
                              evaluation=params["principal_evaluation"])
        result, decision = checker.run(params["phase"], params["transports"], vm=vm, proxy_vm=proxy,
                                       restore_target=target)
    if params["fail_on_missing"] and decision.refused_all:
        raise PermissionDeniedError(decision.refusal_message())
    result["changed"] = False
    return result


def main():
    run_module(run, groups=("vsphere", "vm"), options=dict(
        phase=dict(type="str", choices=list(PHASES), default="backup"),
        transports=dict(type="list", elements="str", choices=list(TRANSPORTS), default=list(DEFAULT_TRANSPORTS)),
        proxy_vm=dict(type="str"),
        principal=dict(type="str"),
        principal_groups=dict(type="list", elements="str", default=[]),
        principal_evaluation=dict(type="str", choices=list(EVALUATIONS), default="auto"),
        restore_folder=dict(type="str"),
        restore_cluster=dict(type="str"),
        restore_datastores=dict(type="list", elements="str", default=[]),
        encrypted=dict(type="bool"),
        fail_on_missing=dict(type="bool", default=False),
    ))


if __name__ == "__main__":
    main()
