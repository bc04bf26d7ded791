# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one access decision: may this backup or restore run, over which transports, and why not.

It gathers every entity the phase touches (the VM, its host, its home
datastore and datacenter, the vCenter root, the proxy VM with its host and
datastore; for a new VM the folder, resource pool, datastores and the hosts
not yet in encryption mode) in a few PropertyCollector calls, asks vCenter
in one call what the account holds on all of them (``privileges.permissions``),
applies the guide's transport rules (``access_rules``) and returns the
allowed transports in the order asked with a reason for each refusal.
privilege_check reports it; disk_export and disk_import (and the backup and
restore workflows) refuse to start when nothing is allowed, before any
snapshot or write exists.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.permissions import (
    PrincipalPrivileges,
    SessionPrivileges,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import any_encrypted
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.access_rules import decide

VM_PATHS = ("name", "parent", "resourcePool", "datastore", "runtime.host", "config.files.vmPathName", "config.keyId",
            "config.hardware.device")
# HostSystem.runtime.cryptoState once vCenter has put the host in encryption mode.
HOST_ENCRYPTION_MODE = "safe"


class RestoreTarget:
    """Where a restore would create the VM (any part left None comes from the source VM)."""

    def __init__(self, datacenter=None, folder=None, cluster=None, datastores=(), encrypted=None):
        self.datacenter = datacenter
        self.folder = folder
        self.cluster = cluster
        self.datastores = list(datastores or ())
        self.encrypted = encrypted


def _encrypted(props):
    return any_encrypted(props.get("config.keyId"), props.get("config.hardware.device"))


def _datastore_name(datastore_path):
    # "[ds1] app01/app01.vmx" -> "ds1"
    if datastore_path and datastore_path.startswith("[") and "]" in datastore_path:
        return datastore_path[1:datastore_path.index("]")]
    return None


def _unique(entities):
    seen, unique = set(), []
    for entity in entities:
        if entity is not None and entity._moId not in seen:
            seen.add(entity._moId)
            unique.append(entity)
    return unique


class AccessCheck:
    """Gathers the entities a phase touches, asks who holds what there, and decides.

    ``evaluation`` (for a ``principal``): "auto" asks vCenter and evaluates the
    permissions here only when vCenter cannot answer; "vcenter" or
    "permissions" insist on one way.
    """

    def __init__(self, client, finder, principal=None, principal_groups=(), evaluation="auto"):
        self.client = client
        self.finder = finder
        self.principal = principal
        self.holder = (PrincipalPrivileges(client, principal, principal_groups, evaluation) if principal
                       else SessionPrivileges(client))

    def _vms(self, vm, proxy_vm):
        """(VM properties, proxy properties), either None when not given, in one round trip."""
        wanted = [item for item in (vm, proxy_vm) if item is not None]
        found = {}
        if wanted:
            found = dict((item.moid, item) for item in retrieve(self.client, vim.VirtualMachine, VM_PATHS, objects=wanted))
        return tuple(found.get(item._moId) if item is not None else None for item in (vm, proxy_vm))

    def _names(self, entities):
        by_kind = {}
        for entity in entities:
            by_kind.setdefault(type(entity), []).append(entity)
        names = {}
        for kind, group in by_kind.items():
            for item in retrieve(self.client, kind, ["name"], objects=group):
                names[item.moid] = item.get("name")
        return names

    def _datacenter_of_folder(self, folder):
        tree = self.finder.tree
        path = tree.datacenter_path_of(folder._moId) if folder is not None else None
        return tree.find("/" + path, kind="Datacenter") if path else None

    def _home_datastore(self, props):
        """The datastore holding a VM's home (its .vmx and NVRAM), among the VM's datastores."""
        datastores = list(props.get("datastore") or [])
        wanted = _datastore_name(props.get("config.files.vmPathName"))
        if wanted and len(datastores) > 1:
            for moid, name in self._names(datastores).items():
                if name == wanted:
                    return [item for item in datastores if item._moId == moid]
        return datastores[:1]

    def _proxy_entities(self, entities, proxy, proxy_props):
        if proxy is None:
            return
        entities["proxy_vm"] = [proxy]
        entities["proxy_datastore"] = self._home_datastore(proxy_props) if proxy_props is not None else []
        if proxy_props is not None and proxy_props.get("runtime.host") is not None:
            entities["host"] = _unique(entities.get("host", []) + [proxy_props.get("runtime.host")])

    def _vm_entities(self, phase, vm_props, proxy, proxy_props):
        """backup and restore: the VM, its host, the root; backup adds where its NVRAM is read."""
        entities = {"vm": [vm_props.obj], "root": [self.client.content.rootFolder],
                    "host": _unique([vm_props.get("runtime.host")])}
        if phase == "backup":
            entities["datastore"] = self._home_datastore(vm_props)
            entities["datacenter"] = _unique([self._datacenter_of_folder(vm_props.get("parent"))])
        self._proxy_entities(entities, proxy, proxy_props)
        return dict((role, group) for role, group in entities.items() if group)

    def _unencrypted_hosts(self, resource_pool):
        owner = retrieve(self.client, vim.ResourcePool, ["owner"], objects=[resource_pool])[0].get("owner")
        if owner is None:
            return []
        hosts = retrieve(self.client, type(owner), ["host"], objects=[owner])[0].get("host") or []
        return [item.obj for item in retrieve(self.client, vim.HostSystem, ["runtime.cryptoState"], objects=list(hosts))
                if item.get("runtime.cryptoState") != HOST_ENCRYPTION_MODE]

    def _new_vm_entities(self, vm_props, proxy, proxy_props, target, encrypted):
        """restore_vm: where the VM would be created."""
        folder = resource_pool = datacenter = None
        datastores = []
        if target.datacenter:
            datacenter = self.finder.datacenter(target.datacenter)
        if target.folder:
            folder = self.finder.folder(target.folder, target.datacenter)
        elif vm_props is not None:
            folder = vm_props.get("parent")
        elif datacenter is not None:
            folder = retrieve(self.client, vim.Datacenter, ["vmFolder"], objects=[datacenter])[0].get("vmFolder")
        if folder is None:
            raise InvalidArgumentError("a restore_vm check needs the source VM, or datacenter (and folder) of the target")
        if datacenter is None:
            datacenter = self._datacenter_of_folder(folder)
        if target.cluster:
            cluster = self.finder.cluster(target.cluster, target.datacenter)
            resource_pool = retrieve(self.client, type(cluster), ["resourcePool"], objects=[cluster])[0].get("resourcePool")
        elif vm_props is not None:
            resource_pool = vm_props.get("resourcePool")
        if target.datastores:
            wanted = set(target.datastores)
            datastores = [item.obj for item in retrieve(self.client, vim.Datastore, ["name"]) if item.get("name") in wanted]
            found = set(self._names(datastores).values())
            if wanted - found:
                raise InvalidArgumentError("no datastore named %s" % ", ".join(sorted(wanted - found)))
        elif vm_props is not None:
            datastores = list(vm_props.get("datastore") or [])
        entities = {"folder": [folder], "root": [self.client.content.rootFolder],
                    "datacenter": _unique([datacenter]), "datastore": datastores,
                    "resource_pool": _unique([resource_pool])}
        if encrypted and resource_pool is not None:
            entities["unencrypted_host"] = self._unencrypted_hosts(resource_pool)
        self._proxy_entities(entities, proxy, proxy_props)
        return dict((role, group) for role, group in entities.items() if group)

    def run(self, phase, transports, vm=None, proxy_vm=None, restore_target=None):
        """(privilege_check's result dict, the TransportDecision).

        ``backup``: may ``vm`` be backed up; ``restore``: may the disks of the
        existing ``vm`` be written; ``restore_vm``: may a VM be created at
        ``restore_target`` (``vm``, when given, is the source it defaults from).
        """
        catalog.validate(phase, transports)
        if phase == "backup" and vm is None:
            raise InvalidArgumentError("a backup check needs the VM (name, uuid or moid)")
        if phase == "restore" and vm is None:
            raise InvalidArgumentError("a restore check needs the existing VM whose disks are written (name, uuid or "
                                       "moid); phase restore_vm checks creating a new VM")
        vm_props, proxy_props = self._vms(vm, proxy_vm)
        target = restore_target or RestoreTarget()
        if phase == "restore_vm" and target.encrypted is not None:
            encrypted = target.encrypted
        else:
            encrypted = _encrypted(vm_props) if vm_props is not None else False
        proxy_encrypted = _encrypted(proxy_props) if proxy_props is not None else None
        if phase == "restore_vm":
            entities = self._new_vm_entities(vm_props, proxy_vm, proxy_props, target, encrypted)
        else:
            entities = self._vm_entities(phase, vm_props, proxy_vm, proxy_props)
        register_host = bool(entities.get("unencrypted_host"))

        needed = {}
        for requirements in [catalog.base_requirements(phase, encrypted, register_host)] + [
                catalog.transport_requirements(phase, transport, encrypted) for transport in transports]:
            for role, privileges in requirements.items():
                needed[role] = needed.get(role, frozenset()) | privileges
        every_entity = _unique([entity for group in entities.values() for entity in group])
        every_privilege = frozenset(privilege for privileges in needed.values() for privilege in privileges)
        held = self.holder.held_on(every_entity, every_privilege)
        granted = {}
        for role, group in entities.items():
            if role not in needed:
                continue
            held_everywhere = None
            for entity in group:
                here = held.get(entity._moId, frozenset()) & needed[role]
                held_everywhere = here if held_everywhere is None else held_everywhere & here
            granted[role] = held_everywhere or frozenset()
        names = self._names(every_entity)
        entity_names = dict((role, ", ".join("%s (%s)" % (names.get(e._moId, e._moId), e._moId) for e in group))
                            for role, group in entities.items())
        decision = decide(phase, transports, encrypted, proxy_encrypted, granted, entity_names,
                          register_host=register_host)
        if self.principal and not any(granted.values()):
            decision.reasons.insert(0, "%s holds none of the needed privileges on these entities: check the name "
                                       "(DOMAIN\\user or user@domain) and its permissions" % self.principal)
        missing = [{"role": role,
                    "entities": [{"moid": e._moId, "name": names.get(e._moId)} for e in entities.get(role, [])],
                    "privileges": privileges}
                   for role, privileges in sorted(decision.missing_privileges.items())]
        return {
            "phase": phase,
            "principal": self.principal or "session user",
            "evaluated_by": self.holder.evaluated_by,
            "vm_encrypted": encrypted,
            "proxy_encrypted": proxy_encrypted,
            "requested_transports": list(transports),
            "allowed_transports": decision.allowed_transports,
            "refused_transports": decision.refused,
            "missing_privileges": missing,
            "checked_entities": dict((role, [{"moid": e._moId, "name": names.get(e._moId)} for e in group])
                                     for role, group in sorted(entities.items()) if role in needed),
            "reasons": decision.reasons,
            "unchecked_roles": decision.unchecked_roles,
        }, decision
