#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vddk_access
short_description: Tell vCenter, through VDDK, that a VM's disks are being backed up (PrepareForAccess / EndAccess)
version_added: 0.1.0
description:
  - V(prepared) calls C(VixDiskLib_PrepareForAccess), which has vCenter disable the methods that would relocate the
    VM (Storage vMotion and the like) while its snapshot is read; V(ended) calls C(VixDiskLib_EndAccess), which
    enables them again.
  - The VDDK guide places PrepareForAccess before the backup snapshot is created and EndAccess after it is removed,
    also when the backup failed. The backup role does so; disk_export then runs with O(vmcrypt.backup.disk_export#module:manage_access=false).
  - A PrepareForAccess that vCenter refuses because the VM is being relocated is retried, as the guide's sample
    does, for up to ten minutes.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
  - vmcrypt.backup.vddk.LIBRARY
options:
  state:
    description:
      - V(prepared) before the backup snapshot, V(ended) after its removal.
    type: str
    choices: [prepared, ended]
    required: true
  identity:
    description:
      - The name vCenter shows as the reason the methods are disabled.
    type: str
    default: vmcrypt.backup
notes:
  - Supports check mode - nothing is sent to VDDK or vCenter.
  - Every V(prepared) needs its V(ended); put the latter in an C(always) block.
"""

EXAMPLES = r"""
- name: Keep vCenter from moving app01 while it is backed up
  vmcrypt.backup.vddk_access:
    name: app01
    state: prepared

- name: Let vCenter move it again (in an always block)
  vmcrypt.backup.vddk_access:
    name: app01
    state: ended
"""

RETURN = r"""
state:
  description: V(prepared) or V(ended).
  returned: always
  type: str
vm:
  description: The VM.
  returned: always
  type: dict
  contains:
    moid:
      description: Managed object id.
      type: str
identity:
  description: The identity given to VDDK.
  returned: always
  type: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(NotFoundError), C(VddkError), C(VddkNotInstalledError).
  returned: failure
  type: str
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import vm_session
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.vddk_process import ensure_vddk_library_path
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.vddk_access import STATES, set_vddk_access


def run(module):
    ensure_vddk_library_path(module)  # first: a respawn must not repeat a login
    params = module.params
    with vm_session(params) as (client, _finder, vm):
        return set_vddk_access(client, vm, params["state"], libdir=params["vddk_libdir"],
                               identity=params["identity"], dry_run=module.check_mode)


def main():
    run_module(run, groups=("vsphere", "one_vm", "vddk_library"), options=dict(
        state=dict(type="str", choices=list(STATES), required=True),
        identity=dict(type="str", default="vmcrypt.backup"),
    ))


if __name__ == "__main__":
    main()
