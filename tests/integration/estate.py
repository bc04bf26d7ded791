"""Build an encrypted vSphere estate in the simulator with raw pyVmomi.

`build_estate(si)` creates a key provider, encrypted and plain VMs, a UEFI
VM, HotAdd proxies, two backup roles and their principals, and returns a
plain dict of exactly what it built, so tests assert values rather than
re-discovering them. It deliberately avoids the collection's module_utils:
the estate is the yardstick those utilities are measured against.
"""
import base64
import contextlib
import os
import time

from pyVmomi import vim, vmodl

KEY_PROVIDER_ID = "vmcrypt-kms"
KMIP_SERVER = {"name": "kms-01", "address": "127.0.0.1", "port": 5696}
# The key provider of "another" key server, registered when the estate's is lost (another cluster name).
DR_PROVIDER = "vmcrypt-kms-dr"

# pbm/simulator ships this sample policy (DefaultEncryptionProfileID there).
ENCRYPTION_POLICY_ID = "4d5f673c-536f-11e6-beb8-9e71128cae77"
ENCRYPTION_POLICY_NAME = "VM Encryption Policy"

GUEST_ID = "otherGuest64"
DISK_SIZES_KB = (16 * 1024, 8 * 1024)  # boot disk, data disk: tiny on purpose
SCSI_CONTROLLER_KEY = 1000
FIRST_DISK_KEY = 2000
VTPM_KEY = 11000

# What a VADP backup product needs without touching encrypted disks
# (after the "Virtual Disk Development Kit Programming Guide" privilege list).
VADP_PRIVILEGES = [
    "Datastore.Browse",
    "Datastore.FileManagement",
    "Datastore.AllocateSpace",
    "Global.DisableMethods",
    "Global.EnableMethods",
    "Global.Licenses",
    "Network.Assign",
    "Resource.AssignVMToPool",
    "StorageProfile.View",
    "VirtualMachine.Config.AddExistingDisk",
    "VirtualMachine.Config.AddNewDisk",
    "VirtualMachine.Config.AddRemoveDevice",
    "VirtualMachine.Config.AdvancedConfig",
    "VirtualMachine.Config.ChangeTracking",
    "VirtualMachine.Config.DiskLease",
    "VirtualMachine.Config.EditDevice",
    "VirtualMachine.Config.RemoveDisk",
    "VirtualMachine.Config.Resource",
    "VirtualMachine.Config.Settings",
    "VirtualMachine.Interact.PowerOff",
    "VirtualMachine.Interact.PowerOn",
    "VirtualMachine.Inventory.Create",
    "VirtualMachine.Inventory.Delete",
    "VirtualMachine.Inventory.Register",
    "VirtualMachine.Inventory.Unregister",
    "VirtualMachine.Provisioning.DiskRandomAccess",
    "VirtualMachine.Provisioning.DiskRandomRead",
    "VirtualMachine.Provisioning.GetVmFiles",
    "VirtualMachine.Provisioning.PutVmFiles",
    "VirtualMachine.State.CreateSnapshot",
    "VirtualMachine.State.RemoveSnapshot",
    "VirtualMachine.State.RevertToSnapshot",
]
# The guide: NBDSSL and HotAdd need Cryptographer.Access, HotAdd also AddDisk;
# restoring encrypted VMs needs the encrypt/register family.
CRYPTO_PRIVILEGES = [
    "Cryptographer.Access",
    "Cryptographer.AddDisk",
    "Cryptographer.Encrypt",
    "Cryptographer.EncryptNew",
    "Cryptographer.RegisterVM",
    "Cryptographer.RegisterHost",
    "Cryptographer.ReadKeyServersInfo",
]
NOCRYPTO_ROLE = "vmcrypt-backup-nocrypto"
FULL_ROLE = "vmcrypt-backup-full"

# Principal as vCenter stores it in permissions, and the login that maps to it.
PRINCIPALS = {
    "nocrypto": {"principal": "VSPHERE.LOCAL\\nocrypto", "login": "nocrypto@vsphere.local",
                 "password": "NoCrypto-Passw0rd!", "role": NOCRYPTO_ROLE},
    "backupadmin": {"principal": "VSPHERE.LOCAL\\backupadmin", "login": "backupadmin@vsphere.local",
                    "password": "BackupAdmin-Passw0rd!", "role": FULL_ROLE},
}


# Roles built the way docs/privileges.md tells an administrator, split by
# where each part must take effect (VDDK guide, "Credentials and Privileges
# for VMDK Access"; vSphere Security's "Required On" columns): the VM part on
# the VMs (or a folder, resource pool or cluster above them), the proxy part
# on the HotAdd proxy VM, the infrastructure part on the root with
# propagation (vCenter, hosts, datacenter, datastores).
GUIDE_ROLES = {
    # the whole backup role: granted on a cluster it is also what the hosts
    # there hold (the nearer grant wins over the root's), so it carries Global.*
    "vmcrypt-guide-backup": [
        "Global.DisableMethods",
        "Global.EnableMethods",
        "VirtualMachine.Provisioning.GetVmFiles",
        "Datastore.Browse",
        "Datastore.FileManagement",
        "VirtualMachine.Config.ChangeTracking",
        "VirtualMachine.Provisioning.DiskRandomRead",
        "VirtualMachine.State.CreateSnapshot",
        "VirtualMachine.State.RemoveSnapshot",
        "Cryptographer.Access",
    ],
    "vmcrypt-guide-proxy": [
        "VirtualMachine.Config.AddNewDisk",
        "VirtualMachine.Config.RemoveDisk",
        "VirtualMachine.Config.Resource",
        "VirtualMachine.Config.Settings",
        "Cryptographer.AddDisk",
    ],
    "vmcrypt-guide-infrastructure": [
        "Global.DisableMethods",
        "Global.EnableMethods",
        "VirtualMachine.Provisioning.GetVmFiles",
        "VirtualMachine.Provisioning.PutVmFiles",
        "StorageProfile.View",
        "Datastore.AllocateSpace",
        "Datastore.Browse",
        "Datastore.FileManagement",
    ],
    "vmcrypt-guide-restore-existing": [
        "VirtualMachine.Provisioning.DiskRandomAccess",
        "VirtualMachine.State.CreateSnapshot",
        "VirtualMachine.State.RevertToSnapshot",
        "VirtualMachine.State.RemoveSnapshot",
        "Cryptographer.Access",
    ],
    "vmcrypt-guide-restore-new-vm": [
        "VirtualMachine.Inventory.Create",
        "VirtualMachine.Inventory.Delete",  # the restore role removes the VM it made when a later step fails
        "VirtualMachine.Config.AddNewDisk",
        "Cryptographer.EncryptNew",
        "Cryptographer.RegisterHost",
        "Resource.AssignVMToPool",
        "Datastore.AllocateSpace",
        "Datastore.Browse",
        "Datastore.FileManagement",
    ],
}
# vCenter's own roles the accounts use.
SYSTEM_ROLES = {"NoAccess": -5, "ReadOnly": -2}
INFRASTRUCTURE = ("root", "vmcrypt-guide-infrastructure", True)

# Directory groups (vCenter's SSO; the launcher's -group flags) and members.
GROUPS = {"VSPHERE.LOCAL\\vmcrypt-operators": ["operator@vsphere.local", "blocked@vsphere.local"]}

# Accounts granted the guide's roles at different places of the inventory:
# grants are (entity, role, propagate), entity one of root, datacenter,
# vm_folder, resource_pool, cluster or a VM name; group_grants are the same
# for the group named.
ACCOUNTS = {
    # the backup role on the VMs' resource pool, the proxy role on the proxy
    "pool": {"login": "pool-backup@vsphere.local", "password": "Pool-Passw0rd!",
             "grants": [INFRASTRUCTURE, ("resource_pool", "vmcrypt-guide-backup", True),
                        ("crypt-proxy01", "vmcrypt-guide-proxy", False)]},
    # the backup role on the cluster: a VM inherits it through its pool
    "cluster": {"login": "cluster-backup@vsphere.local", "password": "Cluster-Passw0rd!",
                "grants": [INFRASTRUCTURE, ("cluster", "vmcrypt-guide-backup", True)]},
    # the backup role on the VM folder, not propagating: the VMs never inherit it
    "folder_only": {"login": "folder-only@vsphere.local", "password": "FolderOnly-Passw0rd!",
                    "grants": [INFRASTRUCTURE, ("vm_folder", "vmcrypt-guide-backup", False)]},
    # members of vmcrypt-operators, which holds the backup role on the VM folder
    "operator": {"login": "operator@vsphere.local", "password": "Operator-Passw0rd!", "grants": [],
                 "groups": ["VSPHERE.LOCAL\\vmcrypt-operators"]},
    # ... but its own NoAccess on the same folder overrides the group's grant
    "blocked": {"login": "blocked@vsphere.local", "password": "Blocked-Passw0rd!",
                "grants": [("vm_folder", "NoAccess", True)], "groups": ["VSPHERE.LOCAL\\vmcrypt-operators"]},
    # writes the disks of crypt-vm01 (disk_import), granted on that VM only
    "restorer": {"login": "restorer@vsphere.local", "password": "Restorer-Passw0rd!",
                 "grants": [INFRASTRUCTURE, ("crypt-vm01", "vmcrypt-guide-restore-existing", False),
                            ("plain-vm01", "vmcrypt-guide-restore-existing", False)]},
    # creates VMs in the datacenter (vm_restore)
    "creator": {"login": "creator@vsphere.local", "password": "Creator-Passw0rd!",
                "grants": [INFRASTRUCTURE, ("datacenter", "vmcrypt-guide-restore-new-vm", True)]},
}
GROUP_GRANTS = {"VSPHERE.LOCAL\\vmcrypt-operators": [INFRASTRUCTURE, ("vm_folder", "vmcrypt-guide-backup", True)]}


def principal_of(login):
    """'user@vsphere.local' -> 'VSPHERE.LOCAL\\user', the form permissions use."""
    user, domain = login.rsplit("@", 1)
    return "%s\\%s" % (domain.upper(), user)


def estate_logins():
    """Extra simulator logins the estate's principals and accounts use (for Vcsim(logins=...))."""
    logins = dict((p["login"], p["password"]) for p in PRINCIPALS.values())
    logins.update((a["login"], a["password"]) for a in ACCOUNTS.values())
    return logins


def estate_groups():
    """Directory groups and their members' logins (for Vcsim(groups=...))."""
    return dict((group, list(members)) for group, members in GROUPS.items())


def fake_bundle(key_id):
    """A value shaped like a real `encryption.bundle` (key locator list).

    The locked data is random: the simulator never decrypts it, and tests
    only need a distinctive secret to look for in repository and job output.
    """
    locked = base64.b64encode(os.urandom(96)).decode("ascii")
    return ("vmware:key/list/(pair/(fqid/<VMWARE-EMPTYSTRING>/%s/%s,HMAC-SHA-256,%s))"
            % (key_id["provider_id"], key_id["key_id"], locked))


def wait_for_task(task, timeout=60.0):
    """Poll a task to completion.

    Not pyVim.task.WaitForTask: while a simulator task is running, its
    info.name is a method pyVmomi cannot resolve and WaitForTask crashes.
    """
    deadline = time.monotonic() + timeout
    while True:
        info = task.info
        if info.state == "success":
            return info.result
        if info.state == "error":
            raise info.error
        if time.monotonic() > deadline:
            raise RuntimeError("task %s still %s after %.0fs" % (task._moId, info.state, timeout))
        time.sleep(0.05)


def vms_named(si, name):
    """Every VM of the inventory named ``name``."""
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return [vm for vm in view.view if vm.name == name]
    finally:
        view.Destroy()


def power_state(si, vm):
    """runtime.powerState through the PropertyCollector (this pyVmomi's VirtualMachine stub lacks ``runtime``)."""
    collector = si.RetrieveContent().propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vm)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=["runtime.powerState"])])
    [found] = collector.RetrieveContents([spec])
    return found.propSet[0].val


def remove_vm(si, vm):
    """Power a VM off when it runs, then destroy it (its files go with it)."""
    if power_state(si, vm) != "poweredOff":
        wait_for_task(vm.PowerOffVM_Task())
    wait_for_task(vm.Destroy_Task())


def _key_dict(crypto_key_id):
    if crypto_key_id is None:
        return None
    provider = crypto_key_id.providerId
    return {"key_id": crypto_key_id.keyId, "provider_id": provider.id if provider else None}


def _crypto_key(key):
    return vim.encryption.CryptoKeyId(keyId=key["key_id"],
                                      providerId=vim.encryption.KeyProviderId(id=key["provider_id"]))


def _encryption_profile():
    return [vim.vm.DefinedProfileSpec(profileId=ENCRYPTION_POLICY_ID)]


class EstateBuilder(object):
    def __init__(self, si):
        self.si = si
        # si.content can be stale in pyVmomi 9.1 (cryptoManager None); ask afresh.
        self.content = si.RetrieveContent()
        self.datacenter = self._first(vim.Datacenter)
        self.cluster = self._first(vim.ClusterComputeResource)
        self.host = self.cluster.host[0]
        self.datastore = self.datacenter.datastore[0]
        self.vm_folder = self.datacenter.vmFolder
        self.resource_pool = self.cluster.resourcePool

    def _first(self, vim_type):
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [vim_type], True)
        try:
            return sorted(view.view, key=lambda obj: obj.name)[0]
        finally:
            view.Destroy()

    # --- key provider -------------------------------------------------
    def register_key_provider(self):
        crypto = self.content.cryptoManager
        server = vim.encryption.KmipServerSpec(
            clusterId=vim.encryption.KeyProviderId(id=KEY_PROVIDER_ID),
            info=vim.encryption.KmipServerInfo(name=KMIP_SERVER["name"], address=KMIP_SERVER["address"],
                                               port=KMIP_SERVER["port"]))
        # A first server implicitly creates the (standard, vCenter-managed) provider.
        crypto.RegisterKmipServer(server=server)
        crypto.MarkDefault(clusterId=vim.encryption.KeyProviderId(id=KEY_PROVIDER_ID))
        clusters = [c for c in crypto.ListKmipServers() if c.clusterId.id == KEY_PROVIDER_ID]
        cluster = clusters[0]
        return {
            "id": KEY_PROVIDER_ID,
            "management_type": cluster.managementType,
            "default": bool(cluster.useAsDefault),
            "servers": [{"name": s.name, "address": s.address, "port": s.port} for s in cluster.servers],
        }

    def generate_key(self):
        result = self.content.cryptoManager.GenerateKey(
            keyProvider=vim.encryption.KeyProviderId(id=KEY_PROVIDER_ID))
        if not result.success:
            raise RuntimeError("GenerateKey failed: %s" % result.reason)
        return _key_dict(result.keyId)

    # --- virtual machines ---------------------------------------------
    def create_vm(self, name, firmware="bios", secure_boot=False, vtpm=False):
        # Keys as real vCenter numbers them (SCSI 0 = 1000, disks 2000+, vTPM 11000);
        # the simulator keeps positive keys and renumbers only negative ones.
        controller_key = SCSI_CONTROLLER_KEY
        devices = [vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.ParaVirtualSCSIController(key=controller_key, busNumber=0, sharedBus="noSharing"))]
        for unit, size_kb in enumerate(DISK_SIZES_KB):
            disk = vim.vm.device.VirtualDisk(
                key=FIRST_DISK_KEY + unit, controllerKey=controller_key, unitNumber=unit, capacityInKB=size_kb,
                backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                    fileName="", diskMode="persistent", thinProvisioned=True))
            devices.append(vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk))
        if vtpm:
            devices.append(vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.VirtualTPM(key=VTPM_KEY)))
        spec = vim.vm.ConfigSpec(
            name=name, guestId=GUEST_ID, numCPUs=1, memoryMB=256, firmware=firmware,
            files=vim.vm.FileInfo(vmPathName="[%s]" % self.datastore.name),
            deviceChange=devices)
        if secure_boot:
            spec.bootOptions = vim.vm.BootOptions(efiSecureBootEnabled=True)
        wait_for_task(self.vm_folder.CreateVM_Task(config=spec, pool=self.resource_pool, host=self.host))
        return self.content.searchIndex.FindChild(self.vm_folder, name)

    def encrypt_vm(self, vm, home_key, disk_key, bundle, disks_to_encrypt=1):
        """Encrypt VM home and the first `disks_to_encrypt` disks in one reconfigure,
        the way vSphere applies "VM Encryption Policy" to an existing VM."""
        disks = [d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        disks.sort(key=lambda d: d.key)
        device_changes = []
        for disk in disks[:disks_to_encrypt]:
            device_changes.append(vim.vm.device.VirtualDeviceSpec(
                operation="edit", device=disk, profile=_encryption_profile(),
                backing=vim.vm.device.VirtualDeviceSpec.BackingSpec(
                    crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=_crypto_key(disk_key)))))
        spec = vim.vm.ConfigSpec(
            crypto=vim.encryption.CryptoSpecEncrypt(cryptoKeyId=_crypto_key(home_key)),
            vmProfile=_encryption_profile(),
            extraConfig=[vim.option.OptionValue(key="encryption.bundle", value=bundle)],
            deviceChange=device_changes)
        wait_for_task(vm.ReconfigVM_Task(spec=spec))

    def describe_vm(self, vm, bundle=None, policy_disk_keys=(), vm_policy=None):
        """What the estate claims about one VM, read back once it is built."""
        config = vm.config
        nvram = [f.name for f in vm.layoutEx.file if f.type == "nvram"]
        disks = []
        for device in sorted(config.hardware.device, key=lambda d: d.key):
            if not isinstance(device, vim.vm.device.VirtualDisk):
                continue
            key_id = _key_dict(device.backing.keyId)
            disks.append({
                "key": device.key,
                "label": device.deviceInfo.label if device.deviceInfo else None,
                "file": device.backing.fileName,
                "capacity_kb": device.capacityInKB,
                "encrypted": key_id is not None,
                "key_id": key_id,
                "policy_id": ENCRYPTION_POLICY_ID if device.key in policy_disk_keys else None,
            })
        return {
            "name": vm.name,
            "moid": vm._moId,
            "uuid": config.uuid,
            "instance_uuid": config.instanceUuid,
            "vmx_path": config.files.vmPathName,
            "nvram_path": nvram[0] if nvram else None,
            "encrypted": config.keyId is not None,
            "key_id": _key_dict(config.keyId),
            "bundle": bundle,
            "firmware": config.firmware,
            "secure_boot": bool(config.bootOptions and config.bootOptions.efiSecureBootEnabled),
            "vtpm": any(isinstance(d, vim.vm.device.VirtualTPM) for d in config.hardware.device),
            "vm_policy_id": vm_policy,
            "disks": disks,
        }

    def build_vm(self, name, encrypt, firmware="bios", secure_boot=False, vtpm=False, disks_to_encrypt=1):
        vm = self.create_vm(name, firmware=firmware, secure_boot=secure_boot, vtpm=vtpm)
        if not encrypt:
            return self.describe_vm(vm)
        home_key, disk_key = self.generate_key(), self.generate_key()
        bundle = fake_bundle(home_key)
        self.encrypt_vm(vm, home_key, disk_key, bundle, disks_to_encrypt=disks_to_encrypt)
        disk_keys = sorted(d.key for d in vm.config.hardware.device
                           if isinstance(d, vim.vm.device.VirtualDisk))[:disks_to_encrypt]
        described = self.describe_vm(vm, bundle=bundle, policy_disk_keys=disk_keys,
                                     vm_policy=ENCRYPTION_POLICY_ID)
        if described["key_id"] != home_key:
            raise RuntimeError("simulator kept %r as keyId of %s, expected %r"
                               % (described["key_id"], name, home_key))
        return described

    # --- roles and permissions ----------------------------------------
    def build_roles(self):
        auth = self.content.authorizationManager
        known = set(next(r for r in auth.roleList if r.name == "Admin").privilege)
        wanted = {NOCRYPTO_ROLE: VADP_PRIVILEGES, FULL_ROLE: VADP_PRIVILEGES + CRYPTO_PRIVILEGES}
        roles = {}
        for name, privileges in sorted(wanted.items()):
            unknown = sorted(set(privileges) - known)
            if unknown:
                raise RuntimeError("simulator does not know privileges %s" % unknown)
            role_id = auth.AddAuthorizationRole(name=name, privIds=privileges)
            role = next(r for r in auth.roleList if r.name == name)
            if role.roleId != role_id:
                raise RuntimeError("AddAuthorizationRole returned %r, role list has %r" % (role_id, role.roleId))
            roles[name] = {"id": role.roleId, "privileges": sorted(role.privilege)}
        # On the root folder, as for a real backup account: the Global.*
        # privileges count only there. SetEntityPermissions replaces the
        # entity's list in the simulator, so the administrator's Admin
        # permission is kept and the principals are added in one call.
        root = self.content.rootFolder
        kept = [p for p in auth.RetrieveEntityPermissions(entity=root, inherited=False)
                if p.principal not in set(q["principal"] for q in PRINCIPALS.values())]
        permissions = kept + [vim.AuthorizationManager.Permission(
            entity=root, principal=p["principal"], group=False, roleId=roles[p["role"]]["id"], propagate=True)
            for p in sorted(PRINCIPALS.values(), key=lambda entry: entry["principal"])]
        auth.SetEntityPermissions(entity=root, permission=permissions)
        principals = {}
        for short_name, p in PRINCIPALS.items():
            principals[short_name] = dict(p, role_id=roles[p["role"]]["id"], entity=root._moId, propagate=True)
        return roles, principals

    def build_accounts(self, vms):
        """The guide's roles, granted to ACCOUNTS and GROUPS where each says; returns (roles, accounts)."""
        auth = self.content.authorizationManager
        roles = {}
        for name, privileges in sorted(GUIDE_ROLES.items()):
            role_id = auth.AddAuthorizationRole(name=name, privIds=privileges)
            roles[name] = {"id": role_id, "privileges": sorted(next(r for r in auth.roleList if r.roleId == role_id).privilege)}
        role_ids = dict((name, role["id"]) for name, role in roles.items())
        role_ids.update(SYSTEM_ROLES)
        entities = {"root": self.content.rootFolder, "datacenter": self.datacenter, "vm_folder": self.vm_folder,
                    "resource_pool": self.resource_pool, "cluster": self.cluster}
        for name, vm in vms.items():
            entities[name] = vim.VirtualMachine(vm["moid"], self.si._stub)
        grants = [(principal_of(a["login"]), False, grant) for a in ACCOUNTS.values() for grant in a["grants"]]
        grants += [(group, True, grant) for group, group_grants in GROUP_GRANTS.items() for grant in group_grants]
        # SetEntityPermissions adds to (or updates) the entity's permissions, principal by principal.
        for principal, group, (entity, role, propagate) in grants:
            auth.SetEntityPermissions(entity=entities[entity], permission=[vim.AuthorizationManager.Permission(
                entity=entities[entity], principal=principal, group=group, roleId=role_ids[role], propagate=propagate)])
        accounts = {}
        for short_name, account in ACCOUNTS.items():
            accounts[short_name] = dict(account, principal=principal_of(account["login"]),
                                        grants=[{"entity": entities[e]._moId, "role": r, "propagate": p}
                                                for e, r, p in account["grants"]])
        return roles, accounts


def build_estate(si):
    builder = EstateBuilder(si)
    key_provider = builder.register_key_provider()
    vms = {
        "crypt-vm01": builder.build_vm("crypt-vm01", encrypt=True),
        "plain-vm01": builder.build_vm("plain-vm01", encrypt=False),
        "uefi-vm01": builder.build_vm("uefi-vm01", encrypt=True, firmware="efi", secure_boot=True, vtpm=True),
        "crypt-proxy01": builder.build_vm("crypt-proxy01", encrypt=True),
        "plain-proxy01": builder.build_vm("plain-proxy01", encrypt=False),
    }
    roles, principals = builder.build_roles()
    guide_roles, accounts = builder.build_accounts(vms)
    roles.update(guide_roles)
    return {
        "datacenter": {"name": builder.datacenter.name, "moid": builder.datacenter._moId},
        "cluster": {"name": builder.cluster.name, "moid": builder.cluster._moId},
        "host": {"name": builder.host.name, "moid": builder.host._moId},
        "resource_pool": builder.resource_pool._moId,
        "vm_folder": builder.vm_folder._moId,
        "datastore": {"name": builder.datastore.name, "moid": builder.datastore._moId},
        "key_provider": key_provider,
        "encryption_policy": {"id": ENCRYPTION_POLICY_ID, "name": ENCRYPTION_POLICY_NAME},
        "vms": vms,
        "proxies": {"encrypted": "crypt-proxy01", "plain": "plain-proxy01"},
        "roles": roles,
        "principals": principals,
        "accounts": accounts,
        "groups": estate_groups(),
    }


# --- the guide's fourth situation: the key server lost ----------------------
def _key_provider_state(si):
    crypto = si.RetrieveContent().cryptoManager
    return sorted((c.clusterId.id, c.managementType, bool(c.useAsDefault), tuple(s.name for s in c.servers or []))
                  for c in crypto.ListKmipServers() or [])


def _register(crypto, provider, server):
    crypto.RegisterKmipServer(server=vim.encryption.KmipServerSpec(
        clusterId=vim.encryption.KeyProviderId(id=provider),
        info=vim.encryption.KmipServerInfo(name=server, address=KMIP_SERVER["address"], port=KMIP_SERVER["port"])))
    crypto.MarkDefault(clusterId=vim.encryption.KeyProviderId(id=provider))


def _unregister(crypto, provider):
    for cluster in crypto.ListKmipServers() or []:
        if cluster.clusterId.id == provider:
            for server in cluster.servers or []:
                crypto.RemoveKmipServer(clusterId=cluster.clusterId, serverName=server.name)
            crypto.UnregisterKmsCluster(clusterId=cluster.clusterId)


@contextlib.contextmanager
def key_server_lost(si):
    """The estate's key provider unregistered and another one (another cluster name) registered; put back after."""
    crypto = si.RetrieveContent().cryptoManager
    before = _key_provider_state(si)
    try:
        _unregister(crypto, KEY_PROVIDER_ID)
        _register(crypto, DR_PROVIDER, "kms-dr-01")
        yield crypto
    finally:
        _unregister(crypto, DR_PROVIDER)
        _register(crypto, KEY_PROVIDER_ID, KMIP_SERVER["name"])
        assert _key_provider_state(si) == before
