# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one access decision: may this backup or restore run, over which transports, and why not.

It reads the VM and the proxy VM in one PropertyCollector call, applies the
guide's transport rules (``access_rules``) and the privileges held on every
entity the phase touches, and returns the allowed transports in the order
asked with a reason for each refusal.  privilege_check reports it;
disk_export and disk_import (and the backup and restore workflows) refuse to
start when nothing is allowed, before any snapshot or write exists.
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

VM_PATHS = ("name", "parent", "resourcePool", "datastore", "config.keyId", "config.hardware.device")


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


class AccessCheck:
    """Gathers the entities a phase touches, asks who holds what there, and decides."""

    def __init__(self, client, finder, principal=None, principal_groups=()):
        self.client = client
        self.finder = finder
        self.principal = principal
        self.holder = PrincipalPrivileges(client, principal, principal_groups) if principal else SessionPrivileges(client)

    def _vms(self, vm, proxy_vm):
        """(VM properties, proxy properties), either None when not given, in one round trip."""
        wanted = [item for item in (vm, proxy_vm) if item is not None]
        found = {}
        if wanted:
            items = retrieve(self.client, vim.VirtualMachine, VM_PATHS, objects=wanted)
            found = dict((item.moid, item) for item in items)
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

    def _backup_entities(self, vm_props, proxy):
        entities = {"vm": [vm_props.obj], "datastore": list(vm_props.get("datastore") or []),
                    "root": [self.client.content.rootFolder]}
        if proxy is not None:
            entities["proxy_vm"] = [proxy]
        return entities

    def _restore_entities(self, vm_props, proxy, target):
        folder = resource_pool = None
        datastores = []
        if target.folder:
            folder = self.finder.folder(target.folder, target.datacenter)
        elif vm_props is not None:
            folder = vm_props.get("parent")
        elif target.datacenter:
            folder = retrieve(self.client, vim.Datacenter, ["vmFolder"],
                              objects=[self.finder.datacenter(target.datacenter)])[0].get("vmFolder")
        if target.cluster:
            cluster = self.finder.cluster(target.cluster, target.datacenter)
            resource_pool = retrieve(self.client, type(cluster), ["resourcePool"], objects=[cluster])[0].get("resourcePool")
        elif vm_props is not None:
            resource_pool = vm_props.get("resourcePool")
        if target.datastores:
            wanted = set(target.datastores)
            datastores = [item.obj for item in retrieve(self.client, vim.Datastore, ["name"]) if item.get("name") in wanted]
            found = set(item for item in target.datastores if item in self._names(datastores).values())
            if wanted - found:
                raise InvalidArgumentError("no datastore named %s" % ", ".join(sorted(wanted - found)))
        elif vm_props is not None:
            datastores = list(vm_props.get("datastore") or [])
        if folder is None:
            raise InvalidArgumentError("a restore check needs the source VM, or datacenter (and folder) of the target")
        entities = {"folder": [folder], "root": [self.client.content.rootFolder]}
        if resource_pool is not None:
            entities["resource_pool"] = [resource_pool]
        if datastores:
            entities["datastore"] = datastores
        if proxy is not None:
            entities["proxy_vm"] = [proxy]
        return entities

    def run(self, phase, transports, vm=None, proxy_vm=None, restore_target=None):
        """(privilege_check's result dict, the TransportDecision)."""
        catalog.validate(phase, transports)
        if phase == "backup" and vm is None:
            raise InvalidArgumentError("a backup check needs the VM (name, uuid or moid)")
        vm_props, proxy_props = self._vms(vm, proxy_vm)
        target = restore_target or RestoreTarget()
        if phase == "restore" and target.encrypted is not None:
            encrypted = target.encrypted
        else:
            encrypted = _encrypted(vm_props) if vm_props is not None else False
        proxy_encrypted = _encrypted(proxy_props) if proxy_props is not None else None
        if phase == "backup":
            entities = self._backup_entities(vm_props, proxy_vm)
        else:
            entities = self._restore_entities(vm_props, proxy_vm, target)

        needed = {}
        for requirements in [catalog.base_requirements(phase, encrypted)] + [
                catalog.transport_requirements(phase, transport, encrypted) for transport in transports]:
            for role, privileges in requirements.items():
                needed[role] = needed.get(role, frozenset()) | privileges
        names = self._names([entity for group in entities.values() for entity in group])
        granted = {}
        for role, group in entities.items():
            held_everywhere = None
            for entity in group:
                held = self.holder.held(entity, needed.get(role, frozenset()))
                held_everywhere = held if held_everywhere is None else held_everywhere & held
            granted[role] = held_everywhere or frozenset()
        entity_names = dict((role, ", ".join("%s (%s)" % (names.get(e._moId, e._moId), e._moId) for e in group))
                            for role, group in entities.items())
        decision = decide(phase, transports, encrypted, proxy_encrypted, granted, entity_names)
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
            "vm_encrypted": encrypted,
            "proxy_encrypted": proxy_encrypted,
            "requested_transports": list(transports),
            "allowed_transports": decision.allowed_transports,
            "refused_transports": decision.refused,
            "missing_privileges": missing,
            "reasons": decision.reasons,
            "unchecked_roles": decision.unchecked_roles,
        }, decision
