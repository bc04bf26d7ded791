#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vm_crypto_info
short_description: Encryption facts of one vSphere VM or many
version_added: 0.1.0
description:
  - Reads what a backup of an encrypted VM has to carry, for one VM or for all VMs of a folder, a cluster or
    a datacenter, in one PropertyCollector call and one storage policy call.
  - Reports the VM's C(ConfigInfo.keyId) and key provider, each disk's key, the storage policies of the VM
    home and of each disk, firmware, secure boot, vTPM, the NVRAM path, CBT and snapshots.
  - Reports only B(whether) C(encryption.bundle) is present in C(extraConfig), never its value.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
options:
  cluster:
    description:
      - Report every VM of this cluster.
      - Mutually exclusive with O(folder) when no O(name), O(uuid) or O(moid) is given.
    type: str
  storage_policies:
    description:
      - Whether to read the storage policies of VM homes and disks from the storage policy service.
    type: bool
    default: true
notes:
  - Without O(name), O(uuid) or O(moid), every VM below O(folder), O(cluster) or O(datacenter) is reported;
    with none of them, every VM of the vCenter.
  - Supports check mode; it changes nothing.
attributes:
  check_mode:
    description: Can run in check mode and return the same facts, since it changes nothing.
    support: full
"""

EXAMPLES = r"""
- name: Encryption facts of one VM
  vmcrypt.backup.vm_crypto_info:
    hostname: vcenter.example.com
    username: backup@vsphere.local
    password: "{{ vcenter_password }}"
    name: app01
    datacenter: DC1
  register: app01_facts

- name: Every VM of a folder
  vmcrypt.backup.vm_crypto_info:
    folder: /DC1/vm/production
  register: production

- name: Names of the encrypted ones (json_query works too, jmespath is a requirement)
  ansible.builtin.debug:
    msg: "{{ production.vms | selectattr('encrypted') | map(attribute='name') | list }}"
"""

RETURN = r"""
vms:
  description: One entry per VM, sorted by inventory path.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: VM name.
      type: str
      sample: app01
    moid:
      description: Managed object id.
      type: str
      sample: vm-42
    path:
      description: Inventory path of the VM.
      type: str
      sample: /DC1/vm/production/app01
    instance_uuid:
      description: vCenter instance UUID.
      type: str
    bios_uuid:
      description: BIOS UUID (C(config.uuid)).
      type: str
    template:
      description: Whether the VM is a template.
      type: bool
    guest_id:
      description: The configured guest OS (C(config.guestId)); a Windows guest gets VSS quiescing.
      type: str
      sample: rhel9_64Guest
    power_state:
      description: C(poweredOn), C(poweredOff) or C(suspended).
      type: str
    encrypted:
      description: Whether the VM home is encrypted (C(config.keyId) is set).
      type: bool
    key_id:
      description: C(ConfigInfo.keyId) of the VM home, or null for an unencrypted VM.
      type: dict
      contains:
        key_id:
          description: Key identifier on the key server.
          type: str
        provider_id:
          description: Key provider (KMS cluster) name.
          type: str
    encryption_bundle_present:
      description: Whether C(encryption.bundle) is present in C(extraConfig). Its value is never returned.
      type: bool
    has_encrypted_disks:
      description: Whether any disk is encrypted.
      type: bool
    vm_home_storage_policy:
      description: Storage policy of the VM home (C(id), C(name)), or null.
      type: dict
    firmware:
      description: C(bios) or C(efi).
      type: str
    secure_boot:
      description: Whether UEFI secure boot is enabled.
      type: bool
    vtpm_present:
      description: Whether the VM has a virtual TPM.
      type: bool
    vmx_path:
      description: Datastore path of the VMX file.
      type: str
      sample: "[datastore1] app01/app01.vmx"
    nvram_path:
      description: Datastore path of the NVRAM file.
      type: str
      sample: "[datastore1] app01/app01.nvram"
    nvram_path_source:
      description: >-
        Where RV(vms[].nvram_path) came from - C(layout) (the VM's file layout), C(extra_config) (the VMX
        C(nvram) option) or C(default_name) (ESXi's default file name).
      type: str
    cbt_enabled:
      description: Whether changed block tracking is enabled.
      type: bool
    snapshot_count:
      description: Number of snapshots of the VM.
      type: int
    disks:
      description: Virtual disks.
      type: list
      elements: dict
      contains:
        key:
          description: Device key.
          type: int
          sample: 2000
        label:
          description: Device label.
          type: str
        file:
          description: Datastore path of the disk descriptor.
          type: str
        capacity_bytes:
          description: Capacity in bytes.
          type: int
        controller_key:
          description: Key of the controller the disk is attached to.
          type: int
        unit_number:
          description: Unit number on the controller.
          type: int
        backing_type:
          description: pyVmomi backing class name.
          type: str
        encrypted:
          description: Whether the disk is encrypted.
          type: bool
        key_id:
          description: The disk's key (C(key_id), C(provider_id)), or null.
          type: dict
        storage_policy:
          description: The disk's storage policy (C(id), C(name)), or null.
          type: dict
error_type:
  description:
    - On failure, the name of the error's class, for example C(NotFoundError), C(AmbiguousError),
      C(VsphereConnectionError).
  returned: failure
  type: str
  sample: NotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import client_from_params, selector_from_params
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import collect_vm_crypto_facts
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder


def run(module):
    params = module.params
    selector = selector_from_params(params)
    with client_from_params(params) as client:
        finder = VmFinder(client)
        if selector.identifies_one_vm:
            vms, container = [finder.find_one(selector)], None
        else:
            vms, container = None, finder.container(selector)
        facts, warnings = collect_vm_crypto_facts(client, finder, vms=vms, container=container,
                                                  storage_policies=params["storage_policies"])
    for warning in warnings:
        module.warn(warning)
    return dict(changed=False, vms=facts)


def main():
    run_module(run, groups=("vsphere", "vm"),
               options=dict(cluster=dict(type="str"), storage_policies=dict(type="bool", default=True)),
               rules=dict(mutually_exclusive=[("folder", "cluster")]))


if __name__ == "__main__":
    main()
