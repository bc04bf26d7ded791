# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which privileges a backup or restore needs, on which entity.

The VADP sets follow the VDDK programming guide's list of privileges for a
backup account; the Cryptographer ones come from its section on encrypted
VMs: NBDSSL and HotAdd of an encrypted disk need Cryptographer.Access, and
HotAdd needs Cryptographer.AddDisk too.  Entities are named by the part
they play ("vm", "proxy_vm", "datastore", "root", ...), so one table serves
the session user and any principal.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import TRANSPORTS

PHASES = ("backup", "restore")

# Every role grants these; a permission evaluation adds them like vCenter does.
IMPLICIT_PRIVILEGES = frozenset(("System.Anonymous", "System.View", "System.Read"))

CRYPTO_ACCESS = "Cryptographer.Access"
CRYPTO_ADD_DISK = "Cryptographer.AddDisk"

# -- backup ---------------------------------------------------------------
BACKUP_VM = frozenset((
    "VirtualMachine.State.CreateSnapshot",
    "VirtualMachine.State.RemoveSnapshot",
    "VirtualMachine.Provisioning.DiskRandomRead",
    "VirtualMachine.Provisioning.DiskRandomAccess",
    "VirtualMachine.Provisioning.GetVmFiles",
    "VirtualMachine.Config.ChangeTracking",
    "VirtualMachine.Config.DiskLease",
))
BACKUP_DATASTORE = frozenset((
    "Datastore.Browse",
    "Datastore.FileManagement",
))
# Disabling Storage vMotion and friends on a VM while it is backed up.
BACKUP_ROOT = frozenset((
    "Global.DisableMethods",
    "Global.EnableMethods",
    "Global.Licenses",
))
# The proxy VM gets the snapshot's disks attached and detached.
HOTADD_PROXY = frozenset((
    "VirtualMachine.Config.AddExistingDisk",
    "VirtualMachine.Config.AddRemoveDevice",
    "VirtualMachine.Config.RemoveDisk",
    "VirtualMachine.Config.Settings",
    "VirtualMachine.Config.Resource",
))

# -- restore --------------------------------------------------------------
RESTORE_FOLDER = frozenset((
    "VirtualMachine.Inventory.Create",
    "VirtualMachine.Inventory.Register",
    "VirtualMachine.Inventory.Delete",
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Config.AddExistingDisk",
    "VirtualMachine.Config.AddRemoveDevice",
    "VirtualMachine.Config.AdvancedConfig",
    "VirtualMachine.Config.EditDevice",
    "VirtualMachine.Config.Settings",
    "VirtualMachine.Config.Resource",
    "VirtualMachine.Config.DiskLease",
    "VirtualMachine.Provisioning.DiskRandomAccess",
    "VirtualMachine.Provisioning.PutVmFiles",
    "VirtualMachine.State.CreateSnapshot",
    "VirtualMachine.State.RemoveSnapshot",
))
RESTORE_RESOURCE_POOL = frozenset(("Resource.AssignVMToPool",))
RESTORE_DATASTORE = frozenset((
    "Datastore.AllocateSpace",
    "Datastore.Browse",
    "Datastore.FileManagement",
))
RESTORE_ROOT = frozenset((
    "Global.DisableMethods",
    "Global.EnableMethods",
    "StorageProfile.View",
))
# Creating an encrypted VM, registering it and adding encrypted disks to it.
RESTORE_ENCRYPTED_FOLDER = frozenset((
    CRYPTO_ACCESS,
    CRYPTO_ADD_DISK,
    "Cryptographer.EncryptNew",
    "Cryptographer.RegisterVM",
))


def validate(phase, transports):
    if phase not in PHASES:
        raise InvalidArgumentError("phase must be one of %s, not '%s'" % (", ".join(PHASES), phase))
    if not transports:
        raise InvalidArgumentError("transports must name at least one of %s" % ", ".join(TRANSPORTS))
    unknown = [transport for transport in transports if transport not in TRANSPORTS]
    if unknown:
        raise InvalidArgumentError("unknown transport %s: choose from %s"
                                   % (", ".join("'%s'" % name for name in unknown), ", ".join(TRANSPORTS)))


def base_requirements(phase, encrypted):
    """{entity role: privileges} every transport of ``phase`` needs."""
    if phase == "backup":
        return {"vm": BACKUP_VM, "datastore": BACKUP_DATASTORE, "root": BACKUP_ROOT}
    folder = RESTORE_FOLDER | (RESTORE_ENCRYPTED_FOLDER if encrypted else frozenset())
    return {"folder": folder, "resource_pool": RESTORE_RESOURCE_POOL, "datastore": RESTORE_DATASTORE,
            "root": RESTORE_ROOT}


def transport_requirements(phase, transport, encrypted):
    """{entity role: privileges} that ``transport`` adds to the base set."""
    # The disks' data are read (backup) or written (restore) on "vm" for a
    # backup and in the target "folder" for a restore.
    data_role = "vm" if phase == "backup" else "folder"
    needs = {}
    if encrypted and transport in ("nbdssl", "hotadd"):
        needs[data_role] = frozenset((CRYPTO_ACCESS,))
    if transport == "hotadd":
        needs["proxy_vm"] = HOTADD_PROXY | (frozenset((CRYPTO_ADD_DISK,)) if encrypted else frozenset())
    return needs
