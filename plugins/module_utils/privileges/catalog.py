# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which privileges a backup or restore needs, on which entity, and where each comes from.

Three phases, each with its own lists:

- ``backup``: read a VM's disks through a snapshot (disk_export, metadata capture);
- ``restore``: write the disks of an existing VM (disk_import);
- ``restore_vm``: create the VM a restore writes into (vm_restore).

Entities are named by the part they play ("vm", "proxy_vm", "host", "root",
...), so one table serves the session user and any principal.  Sources, cited
by each list:

- [VDDK-PRIV] VDDK Programming Guide, "Credentials and Privileges for VMDK Access".
- [VDDK-ENC]  VDDK Programming Guide, "Encrypted VM Backup and Restore" (the seed text).
- [VDDK-RESTORE] VDDK Programming Guide, "Restore" phase, "Summary of restore snapshot requirements".
- [SEC-PROV]  vSphere Security, "Virtual Machine Provisioning Privileges" ("Required On" column).
- [SEC-CRYPTO] vSphere Security, "Cryptographic Operations Privileges" ("Required On" column) and
  "Prerequisites and Required Privileges for Encryption Tasks" (host encryption mode).
- [SEC-TASKS] vSphere Security, "Required Privileges for Common Tasks", "Create a virtual machine".
- [SEC-INV]   vSphere Security, "Virtual Machine Inventory Privileges" (Remove: on the VM or its folder).
- [SEC-SPBM]  vSphere Security, "Profile-driven Storage Privileges".
- [SDK-HTTP]  vSphere Web Services SDK Programming Guide, "Privilege Requirements for HTTP Access"
  (the NVRAM moves through the /folder URL: dcPath and dsName need Browse and FileManagement).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import TRANSPORTS

PHASES = ("backup", "restore", "restore_vm")

CRYPTO_ACCESS = "Cryptographer.Access"
CRYPTO_ADD_DISK = "Cryptographer.AddDisk"

# -- backup: disk_export, metadata capture ------------------------------
# [VDDK-PRIV] "for all the virtual machines being backed up": toggle disk change
# tracking, allow read-only disk access, create and remove snapshot.  (Its "Allow VM
# download" is GetVmFiles, which [SEC-PROV] makes effective on the root: BACKUP_ROOT.)
BACKUP_VM = frozenset((
    "VirtualMachine.Config.ChangeTracking",
    "VirtualMachine.Provisioning.DiskRandomRead",
    "VirtualMachine.State.CreateSnapshot",
    "VirtualMachine.State.RemoveSnapshot",
))
# [VDDK-PRIV] Global > Disable methods and Enable methods "for vCenter Server";
# [SEC-PROV] Allow virtual machine download: "Root host or vCenter Server".
BACKUP_ROOT = frozenset((
    "Global.DisableMethods",
    "Global.EnableMethods",
    "VirtualMachine.Provisioning.GetVmFiles",
))
# [VDDK-PRIV] Disable/Enable methods "for ... all ESXi hosts involved in backup":
# the VM's host and, for HotAdd, the proxy's.  Restore's PrepareForAccess does the same.
TRANSFER_HOST = frozenset((
    "Global.DisableMethods",
    "Global.EnableMethods",
))
# [SDK-HTTP] the NVRAM download: Browse and FileManagement on the datacenter (dcPath)
# and on the datastore holding the VM's home (dsName).
NVRAM_HTTP = frozenset((
    "Datastore.Browse",
    "Datastore.FileManagement",
))
# [VDDK-PRIV] "On the backup appliance": add new disk and remove disk, change
# resource and settings.  Also the HotAdd proxy of a restore.
HOTADD_PROXY = frozenset((
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Config.RemoveDisk",
    "VirtualMachine.Config.Resource",
    "VirtualMachine.Config.Settings",
))
# [VDDK-PRIV] "On the backup appliance": Datastore > Allocate space (the proxy's datastores).
HOTADD_PROXY_DATASTORE = frozenset((
    "Datastore.AllocateSpace",
))

# -- restore into an existing VM: disk_import -----------------------------
# [SEC-PROV] Allow disk access: random read and write of a VM's disk, "Virtual machines".
RESTORE_VM = frozenset((
    "VirtualMachine.Provisioning.DiskRandomAccess",
))
# [VDDK-PRIV] PrepareForAccess disables methods on the VM being written, as for a backup.
RESTORE_ROOT = frozenset((
    "Global.DisableMethods",
    "Global.EnableMethods",
))
# [VDDK-RESTORE] A restore snapshot is required with SAN only ("optional" with NBDSSL and HotAdd);
# disk_import takes none, so a SAN restore is refused by the rules and no snapshot privilege is needed.

# -- create the VM a restore writes into: vm_restore ----------------------
# [SEC-TASKS] "Create a virtual machine", on the destination folder: create new and
# add new disk. [SEC-INV] Remove (on the VM, inherited from its folder): the restore role
# removes the VM it made when a later step fails - without it a failed restore leaves a
# half-made VM behind.
RESTORE_VM_FOLDER = frozenset((
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Inventory.Create",
    "VirtualMachine.Inventory.Delete",
))
# [SEC-CRYPTO] Encrypt new: "Virtual machine folder".
RESTORE_VM_ENCRYPTED_FOLDER = frozenset((
    "Cryptographer.EncryptNew",
))
# [SEC-CRYPTO] Register host: creating an encrypted VM enables host encryption mode on a
# host of the target that is not yet in it ("safe"); checked on each such host (a grant
# on their cluster reaches them when it propagates).
RESTORE_VM_HOST_ENCRYPTION = frozenset((
    "Cryptographer.RegisterHost",
))
# [SEC-TASKS] on the destination host, cluster or resource pool.
RESTORE_VM_RESOURCE_POOL = frozenset((
    "Resource.AssignVMToPool",
))
# [SEC-TASKS] Allocate space on the destination datastore; [SDK-HTTP] the NVRAM upload.
RESTORE_VM_DATASTORE = frozenset((
    "Datastore.AllocateSpace",
    "Datastore.Browse",
    "Datastore.FileManagement",
))
# [SEC-PROV] Allow virtual machine files upload: "Root host or vCenter Server";
# [SEC-SPBM] Profile-driven storage view (the encryption storage policy): root vCenter Server.
RESTORE_VM_ROOT = frozenset((
    "StorageProfile.View",
    "VirtualMachine.Provisioning.PutVmFiles",
))

# The roles docs/privileges.md tells an administrator to create (union of the lists above).
ROLE_LISTS = {
    "backup": (BACKUP_VM, BACKUP_ROOT, TRANSFER_HOST, NVRAM_HTTP, frozenset((CRYPTO_ACCESS,))),
    "hotadd_proxy": (HOTADD_PROXY, HOTADD_PROXY_DATASTORE, frozenset((CRYPTO_ADD_DISK,))),
    "restore_existing": (RESTORE_VM, RESTORE_ROOT, frozenset((CRYPTO_ACCESS,))),
    "restore_new_vm": (RESTORE_VM_FOLDER, RESTORE_VM_ENCRYPTED_FOLDER, RESTORE_VM_HOST_ENCRYPTION,
                       RESTORE_VM_RESOURCE_POOL, RESTORE_VM_DATASTORE, RESTORE_VM_ROOT, NVRAM_HTTP),
}


def role_privileges(name):
    """The sorted privileges of one documented role."""
    held = set()
    for privileges in ROLE_LISTS[name]:
        held |= privileges
    return sorted(held)


def validate(phase, transports):
    if phase not in PHASES:
        raise InvalidArgumentError("phase must be one of %s, not '%s'" % (", ".join(PHASES), phase))
    if not transports:
        raise InvalidArgumentError("transports must name at least one of %s" % ", ".join(TRANSPORTS))
    unknown = [transport for transport in transports if transport not in TRANSPORTS]
    if unknown:
        raise InvalidArgumentError("unknown transport %s: choose from %s"
                                   % (", ".join("'%s'" % name for name in unknown), ", ".join(TRANSPORTS)))


def base_requirements(phase, encrypted, register_host=False):
    """{entity role: privileges} every transport of ``phase`` needs.

    ``register_host``: for ``restore_vm`` of an encrypted VM, some host of the
    target is not in encryption mode, so creating the VM must enable it.
    """
    if phase == "backup":
        return {"vm": BACKUP_VM, "root": BACKUP_ROOT, "host": TRANSFER_HOST, "datacenter": NVRAM_HTTP,
                "datastore": NVRAM_HTTP}
    if phase == "restore":
        return {"vm": RESTORE_VM, "root": RESTORE_ROOT, "host": TRANSFER_HOST}
    needs = {"folder": RESTORE_VM_FOLDER | (RESTORE_VM_ENCRYPTED_FOLDER if encrypted else frozenset()),
             "resource_pool": RESTORE_VM_RESOURCE_POOL, "datastore": RESTORE_VM_DATASTORE,
             "datacenter": NVRAM_HTTP, "root": RESTORE_VM_ROOT}
    if encrypted and register_host:
        needs["unencrypted_host"] = RESTORE_VM_HOST_ENCRYPTION
    return needs


def transport_requirements(phase, transport, encrypted):
    """{entity role: privileges} that ``transport`` adds to the base set.

    Creating a VM (``restore_vm``) moves no disk data: its transports only meet
    the encryption rules; writing the disks is the ``restore`` check on the new VM.
    """
    needs = {}
    if phase == "restore_vm":
        return needs
    # [VDDK-ENC] NBDSSL and HotAdd of an encrypted disk need Cryptographer.Access
    # ([SEC-CRYPTO]: on the virtual machine), HotAdd needs Cryptographer.AddDisk too
    # ([SEC-CRYPTO]: on the virtual machine the disk is added to, the proxy).
    if encrypted and transport in ("nbdssl", "hotadd"):
        needs["vm"] = frozenset((CRYPTO_ACCESS,))
    if transport == "hotadd":
        needs["proxy_vm"] = HOTADD_PROXY | (frozenset((CRYPTO_ADD_DISK,)) if encrypted else frozenset())
        needs["proxy_datastore"] = HOTADD_PROXY_DATASTORE
    return needs
