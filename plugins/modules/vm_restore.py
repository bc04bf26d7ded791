#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: vm_restore
short_description: Create the VM of a backup of an encrypted VM, under its original key or new keys, with blank disks
version_added: 0.1.0
description:
  - Plans the restore as M(vmcrypt.backup.restore_plan) does, then creates the VM from the configuration the backup
    recorded (never a VMX file) - name, guest, CPUs, memory, firmware and boot options, extraConfig, storage
    controllers, disks, network adapters and vTPM - at the placement given.
  - B(Disks) are created blank at their original capacity, device keys and controller positions; write their data
    with M(vmcrypt.backup.disk_import) afterwards.
  - B(Key mode C(original).) The saved C(ConfigInfo.keyId) goes into the ConfigSpec as
    C(crypto=CryptoSpecEncrypt(cryptoKeyId=keyId)) and the saved C(encryption.bundle) into C(extraConfig), as the
    VDDK guide asks; the planned encryption policy is the C(vmProfile). Each disk planned under its own saved key
    gets C(CryptoSpecEncrypt) with that key. The saved NVRAM is then uploaded over the datastore's HTTPS interface.
  - B(Key mode C(new)) (also the lost-key path). Only the encryption storage policy, for the VM home and each
    disk; no key and no C(encryption.bundle) are sent. vSphere gets new keys and makes a generic NVRAM (nothing is
    uploaded).
  - B(Key mode C(none).) Unencrypted; the O(storage_policy) (if given) as policy; no vTPM.
  - Network adapters are connected to the network of the same name, or the one O(networks) maps it to; an adapter
    whose network does not exist here is left disconnected, with a warning.
  - A VM of that name in the datacenter is an error unless O(overwrite=true). With O(overwrite=true) the old VM is
    renamed out of the way, the new one created, and only then the old one removed (powered off first).
  - When any step fails after the VM was created, the VM is removed again (and a replaced VM gets its name back),
    so nothing half-made is left behind.
  - The C(encryption.bundle) never appears in a result; the returned ConfigSpec shows it masked.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.repository
options:
  backup_id:
    description:
      - Id of the committed backup to restore (see M(vmcrypt.backup.backup_info)). It must hold the VM's metadata
        (see M(vmcrypt.backup.metadata_capture)).
    type: str
    required: true
  name:
    description:
      - Name of the new VM.
    type: str
    required: true
  datacenter:
    description:
      - Datacenter to create the VM in. Needed when vCenter has more than one.
    type: str
  folder:
    description:
      - VM folder, absolute (C(/DC0/vm/restored)) or relative to O(datacenter). Default the datacenter's VM folder.
    type: str
  cluster:
    description:
      - Cluster whose root resource pool gets the VM. Mutually exclusive with O(resource_pool).
    type: str
  resource_pool:
    description:
      - Resource pool (by name, in the datacenter) that gets the VM.
    type: str
  host:
    description:
      - Host to run the VM on. Without O(cluster) and O(resource_pool), the pool of this host's cluster.
      - Without O(cluster), O(resource_pool) and O(host), the datacenter must have one cluster or host.
    type: str
  datastore:
    description:
      - Datastore for the VM home and its disks. Default the datastore of the original VM's configuration file.
    type: str
  networks:
    description:
      - Maps the name of a network of the original VM to the network to connect its adapters to here.
    type: dict
    default: {}
  key_mode:
    description:
      - C(auto), C(original), C(new) or C(none), as in M(vmcrypt.backup.restore_plan). A plan that is not feasible
        is an error.
    type: str
    choices: [auto, original, new, none]
    default: auto
  storage_policy:
    description:
      - Id or name of the storage policy for an encrypted VM home or disk whose saved policy no longer exists (see
        M(vmcrypt.backup.restore_plan)); with O(key_mode=none), the policy of the VM home and every disk.
    type: str
  overwrite:
    description:
      - Replace a VM of the same name in the datacenter. It is renamed out of the way, then powered off and removed
        once the new VM is complete (with O(keep_replaced=true), once O(state=finished) says the restore succeeded).
    type: bool
    default: false
  keep_replaced:
    description:
      - With O(overwrite=true), keep the replaced VM, renamed C(<name> (replaced by restore <backup_id>\)), until
        the disks are imported - O(state=finished) removes it, O(state=absent) gives it its name back. The restore
        role uses this, so a restore whose disk import fails loses nothing.
    type: bool
    default: false
  state:
    description:
      - V(present) creates the VM.
      - V(finished) ends a restore whose disks were imported - removes the VM that O(overwrite) and
        O(keep_replaced) kept, and powers the new VM on when O(power_on=true).
      - V(absent) undoes a restore that failed - removes the VM O(name) if, and only if, the restore of O(backup_id)
        made it (vm_restore marks the VMs it makes with the C(vmcrypt.restoredFrom) extraConfig option), and gives a
        VM it replaced its name back. Nothing to undo is no change.
    type: str
    choices: [present, finished, absent]
    default: present
  power_on:
    description:
      - With O(state=finished), power the restored VM on. Ask for it only when M(vmcrypt.backup.restore_plan) predicts
        a power-on (RV(vmcrypt.backup.restore_plan#module:power_on.predicted)); without the key server the power-on
        fails.
    type: bool
    default: false
notes:
  - Supports check mode - it plans, resolves the placement, checks the name and returns the ConfigSpec it would send
    (the C(encryption.bundle) masked), creating nothing.
  - Needs what M(vmcrypt.backup.privilege_check) checks for phase C(restore_vm) - C(VirtualMachine.Inventory.Create),
    C(VirtualMachine.Config.AddNewDisk), C(Resource.AssignVMToPool), C(Datastore.AllocateSpace), C(Datastore.Browse)
    and C(Datastore.FileManagement) (NVRAM upload), C(VirtualMachine.Provisioning.PutVmFiles), C(StorageProfile.View)
    and, for an encrypted VM, C(Cryptographer.EncryptNew) and C(Cryptographer.RegisterHost). O(overwrite) also needs
    C(VirtualMachine.Config.Rename), C(VirtualMachine.Interact.PowerOff) and C(VirtualMachine.Inventory.Delete),
    O(state=absent) C(VirtualMachine.Inventory.Delete), and O(power_on) C(VirtualMachine.Interact.PowerOn).
  - Devices other than storage controllers, disks, network adapters and the vTPM (CD-ROM, floppy, USB, serial) are not
    recreated; each is named in a warning.
seealso:
  - module: vmcrypt.backup.restore_plan
  - module: vmcrypt.backup.disk_import
"""

EXAMPLES = r"""
- name: Restore the VM of a backup under a new name, under its original key when possible
  vmcrypt.backup.vm_restore:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
    name: db01-restored
    datacenter: DC0
    cluster: Cluster01
    datastore: ssd-01
    networks:
      VM Network: Restore Network
  register: restored

- name: The key server is gone - new keys under the administrator's policy, replacing an earlier attempt
  vmcrypt.backup.vm_restore:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
    name: db01-restored
    key_mode: new
    storage_policy: Gold encrypted
    overwrite: true
    keep_replaced: true

- name: The disks are in - remove the VM the restore replaced, and power on the restored VM
  vmcrypt.backup.vm_restore:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
    name: db01-restored
    state: finished
    power_on: true

- name: The disk import failed - remove the half-made VM and give the replaced one its name back
  vmcrypt.backup.vm_restore:
    backup_id: "{{ backup_id }}"
    repository: /backups/repo
    name: db01-restored
    state: absent
"""

RETURN = r"""
backup_id:
  description: The backup restored.
  returned: always
  type: str
  sample: 20260101T020000Z-1a2b3c4d
key_mode:
  description: The key mode of the VM home, C(original), C(new) or C(none) (the plan's choice).
  returned: when O(state=present)
  type: str
  sample: original
vm:
  description: The VM created.
  returned: when O(state=present)
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    moid:
      description: Its managed object id; null in check mode.
      type: str
    vmx_path:
      description: Datastore path of its configuration file; null in check mode.
      type: str
    encrypted:
      description: Whether vCenter reports a keyId for its home; null in check mode.
      type: bool
    disks:
      description: Its disks as created (empty in check mode).
      type: list
      elements: dict
      contains:
        key:
          description: Device key.
          type: str
        controller_key:
          description: Key of its controller.
          type: int
        unit_number:
          description: Unit number on the controller.
          type: int
        capacity_bytes:
          description: Capacity.
          type: int
        file_name:
          description: Datastore path of its descriptor.
          type: str
        encrypted:
          description: Whether the disk backing has a keyId.
          type: bool
placement:
  description: Where the VM goes.
  returned: when O(state=present)
  type: dict
  contains:
    datacenter:
      description: Datacenter path.
      type: str
    folder:
      description: Moid of the VM folder.
      type: str
    resource_pool:
      description: Moid of the resource pool.
      type: str
    host:
      description: Moid of the host; null when vCenter chooses.
      type: str
    datastore:
      description: Datastore name.
      type: str
config_spec:
  description:
    - The VirtualMachineConfigSpec sent to C(CreateVM_Task) (in check mode, the one it would send), as vSphere's field
      names; a value of a polymorphic type carries C(_type), a managed object C(_moref) and C(value). The
      C(encryption.bundle) value is masked.
  returned: when O(state=present)
  type: dict
  sample:
    name: db01-restored
    crypto:
      _type: CryptoSpecEncrypt
      cryptoKeyId: {keyId: 6f1c..., providerId: {id: kms}}
    extraConfig: [{key: encryption.bundle, value: "********"}]
replaced_vm:
  description: Moid of the VM of that name that was (in check mode, would be) replaced; null when none was.
  returned: when O(state=present)
  type: str
nvram:
  description: What happened to the NVRAM.
  returned: when O(state=present)
  type: dict
  contains:
    action:
      description: C(restore) (the saved NVRAM is uploaded) or C(generic) (vSphere makes a new one).
      type: str
    uploaded:
      description: Whether the saved NVRAM was uploaded (false in check mode).
      type: bool
    size:
      description: Bytes uploaded (in check mode, to upload); null with a generic NVRAM.
      type: int
    datastore_path:
      description: Where it was uploaded; null when nothing was uploaded.
      type: str
    sha256:
      description: SHA-256 of what was uploaded; null when nothing was uploaded.
      type: str
extra_config_skipped:
  description: extraConfig keys of the original VM that a host writes for itself (paths, statistics, identities) and
    that are not carried to the new VM.
  returned: when O(state=present)
  type: list
  elements: str
sentences:
  description: The restore plan in plain sentences (see M(vmcrypt.backup.restore_plan)).
  returned: when O(state=present)
  type: list
  elements: str
removed_vm:
  description:
    - With O(state=absent), the moid of the VM of the failed restore that was (in check mode, would be) removed; with
      O(state=finished), the moid of the replaced VM removed. Null when there was none.
  returned: when O(state) is V(absent) or V(finished)
  type: str
renamed_back_vm:
  description: With O(state=absent), the moid of the replaced VM that got its name back; null when there was none.
  returned: when O(state) is V(absent) or V(finished)
  type: str
powered_on:
  description: Whether the restored VM is (in check mode, would be) powered on.
  returned: when O(state) is V(absent) or V(finished)
  type: bool
error_type:
  description:
    - On failure, the name of the error's class, for example C(VmExistsError), C(NotFoundError).
  returned: failure
  type: str
  sample: VmExistsError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_client
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import pass_on_repository_warnings
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import ENCRYPTION_BUNDLE_KEY
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import KEY_MODES
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.vm_restore import (
    finish_restore,
    restore_vm,
    undo_restore,
)


def run(module):
    params = module.params
    if params["state"] != "present":
        return run_end_of_restore(module)
    # the key is derived during the login; a wrong password is still reported before anything changes in vSphere
    with repository_and_client(params) as (repository, client):
        bundle = repository.read_manifest(params["backup_id"]).secrets.get(ENCRYPTION_BUNDLE_KEY)
        if bundle:  # never in any output, whatever fails
            module.no_log_values.add(bundle)
        result, warnings = restore_vm(
            client, repository, params["backup_id"], params["name"], datacenter=params["datacenter"],
            folder=params["folder"], cluster=params["cluster"], resource_pool=params["resource_pool"],
            host=params["host"], datastore=params["datastore"], networks=params["networks"],
            key_mode=params["key_mode"], storage_policy=params["storage_policy"], overwrite=params["overwrite"],
            keep_replaced=params["keep_replaced"], plan_only=module.check_mode)
    for warning in warnings:
        module.warn(warning)
    pass_on_repository_warnings(module, repository)
    return result


def run_end_of_restore(module):
    params = module.params
    with repository_and_client(params) as (repository, client):
        repository.read_manifest(params["backup_id"])  # the backup exists and the key opens it
        if params["state"] == "absent":
            result = undo_restore(client, params["backup_id"], params["name"], datacenter=params["datacenter"],
                                  plan_only=module.check_mode)
        else:
            result = finish_restore(client, params["backup_id"], params["name"], datacenter=params["datacenter"],
                                    power_on=params["power_on"], plan_only=module.check_mode)
    return dict(result, backup_id=params["backup_id"])


def main():
    run_module(run, groups=("vsphere", "repository"), options=dict(
        backup_id=dict(type="str", required=True),
        name=dict(type="str", required=True),
        datacenter=dict(type="str"),
        folder=dict(type="str"),
        cluster=dict(type="str"),
        resource_pool=dict(type="str"),
        host=dict(type="str"),
        datastore=dict(type="str"),
        networks=dict(type="dict", default={}),
        key_mode=dict(type="str", choices=list(KEY_MODES), default="auto"),
        storage_policy=dict(type="str"),
        overwrite=dict(type="bool", default=False),
        keep_replaced=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "finished", "absent"], default="present"),
        power_on=dict(type="bool", default=False),
    ), rules=dict(mutually_exclusive=[("cluster", "resource_pool")]))


if __name__ == "__main__":
    main()
