# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find one VM (by name, uuid or moid) or a set of VMs (folder, cluster, datacenter)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AmbiguousError,
    InvalidArgumentError,
    NotFoundError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.inventory import InventoryTree
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve, retrieve_one


class VmSelector:
    """What the user asked for, as plain values (module options map onto it)."""

    def __init__(self, name=None, uuid=None, moid=None, use_instance_uuid=None, datacenter=None,
                 folder=None, cluster=None):
        self.name = name
        self.uuid = uuid
        self.moid = moid
        self.use_instance_uuid = use_instance_uuid
        self.datacenter = datacenter
        self.folder = folder
        self.cluster = cluster

    @property
    def identifies_one_vm(self):
        return any((self.name, self.uuid, self.moid))

    def validate(self):
        given = [option for option in ("name", "uuid", "moid") if getattr(self, option)]
        if len(given) > 1:
            raise InvalidArgumentError("give only one of name, uuid or moid (got %s)" % " and ".join(given))
        if self.folder and self.cluster:
            raise InvalidArgumentError("give folder or cluster to select VMs, not both")


class VmFinder:
    """Resolves a VmSelector to managed object references."""

    def __init__(self, client):
        self.client = client
        self._tree = None

    @property
    def tree(self):
        if self._tree is None:
            self._tree = InventoryTree.load(self.client)
        return self._tree

    def datacenter_path(self, vm):
        """Inventory path of the datacenter that holds ``vm`` (the dcPath of its datastore files)."""
        parent = retrieve_one(self.client, vm, ["parent"]).get("parent")
        path = self.tree.datacenter_path_of(parent._moId) if parent is not None else None
        if not path:
            raise NotFoundError("VM %s is in no datacenter" % vm._moId)
        return path

    def vm_path(self, name, parent):
        return self.tree.child_path(parent._moId if parent is not None else None, name)

    # -- one VM ---------------------------------------------------------
    def find_one(self, selector):
        selector.validate()
        if selector.moid:
            return self._by_moid(selector.moid)
        if selector.uuid:
            return self._by_uuid(selector.uuid, selector.use_instance_uuid, selector.datacenter)
        if selector.name:
            return self._by_name(selector.name, selector.datacenter, selector.folder)
        raise InvalidArgumentError("name, uuid or moid is required to identify a VM")

    def find_by_name_or_moid(self, value, datacenter=None):
        """A VM named ``value``, or else with moid ``value`` (vm-N): how proxy_vm options are given."""
        try:
            return self.find_one(VmSelector(name=value, datacenter=datacenter))
        except NotFoundError:
            if re.match(r"^vm-\d+$", value):
                return self.find_one(VmSelector(moid=value))
            raise

    def _by_moid(self, moid):
        vm = vim.VirtualMachine(moid, self.client.stub)
        try:
            retrieve_one(self.client, vm, ["name"])
        except NotFoundError:
            raise NotFoundError("no VM with moid '%s'" % moid)
        return vm

    def _by_uuid(self, uuid, use_instance_uuid, datacenter_name):
        datacenter = self.datacenter(datacenter_name) if datacenter_name else None
        kinds = [True, False] if use_instance_uuid is None else [bool(use_instance_uuid)]
        for instance_uuid in kinds:
            found = self.client.content.searchIndex.FindAllByUuid(
                datacenter=datacenter, uuid=uuid, vmSearch=True, instanceUuid=instance_uuid) or []
            if len(found) > 1:
                raise AmbiguousError("uuid '%s' matches %d VMs: %s"
                                     % (uuid, len(found), ", ".join(self._describe(found))))
            if found:
                return found[0]
        raise NotFoundError("no VM with %s uuid '%s'%s" % (
            {None: "instance or BIOS", True: "instance", False: "BIOS"}[use_instance_uuid], uuid,
            " in datacenter '%s'" % datacenter_name if datacenter_name else ""))

    def _by_name(self, name, datacenter_name, folder):
        container = self.datacenter(datacenter_name) if datacenter_name else None
        candidates = [item for item in retrieve(self.client, vim.VirtualMachine, ["name", "parent"], container=container)
                      if item.get("name") == name]
        if folder:
            folder_path = self.folder_path(folder, datacenter_name)
            candidates = [item for item in candidates
                          if item.get("parent") is not None and self.tree.path_of(item.get("parent")._moId) == folder_path]
        where = (" in folder '%s'" % folder if folder else "") + (
            " in datacenter '%s'" % datacenter_name if datacenter_name else "")
        if not candidates:
            raise NotFoundError("no VM named '%s'%s" % (name, where))
        if len(candidates) > 1:
            paths = sorted(self.vm_path(item.get("name"), item.get("parent")) for item in candidates)
            raise AmbiguousError("VM name '%s' is ambiguous%s: %s; give datacenter, folder, uuid or moid"
                                 % (name, where, ", ".join(paths)))
        return candidates[0].obj

    def _describe(self, vms):
        return ["%s (%s)" % (self.vm_path(item.get("name"), item.get("parent")), item.moid)
                for item in retrieve(self.client, vim.VirtualMachine, ["name", "parent"], objects=list(vms))]

    # -- containers -----------------------------------------------------
    def datacenter(self, name):
        found = self.tree.named(name, "Datacenter")
        if not found:
            raise NotFoundError("no datacenter named '%s'" % name)
        if len(found) > 1:
            raise AmbiguousError("datacenter name '%s' is ambiguous: %s"
                                 % (name, ", ".join(self.tree.path_of(dc._moId) for dc in found)))
        return found[0]

    def folder_path(self, folder, datacenter_name):
        """Absolute path of a VM folder given absolutely or relative to a datacenter."""
        if folder.startswith("/"):
            return "/" + folder.strip("/")
        if not datacenter_name:
            raise InvalidArgumentError("folder '%s' is relative: start it with '/' or give datacenter" % folder)
        relative = folder.strip("/")
        if relative != "vm" and not relative.startswith("vm/"):
            relative = "vm/" + relative
        return self.tree.path_of(self.datacenter(datacenter_name)._moId) + "/" + relative

    def folder(self, folder, datacenter_name):
        path = self.folder_path(folder, datacenter_name)
        found = self.tree.find(path, kind="Folder")
        if found is None:
            raise NotFoundError("no folder '%s'" % path)
        return found

    def cluster(self, name, datacenter_name):
        found = self.tree.named(name, "ClusterComputeResource")
        if datacenter_name:
            found = [cluster for cluster in found if self.tree.datacenter_of(cluster._moId) == datacenter_name]
        if not found:
            raise NotFoundError("no cluster named '%s'%s" % (
                name, " in datacenter '%s'" % datacenter_name if datacenter_name else ""))
        if len(found) > 1:
            raise AmbiguousError("cluster name '%s' is ambiguous: %s; give datacenter"
                                 % (name, ", ".join(self.tree.path_of(cluster._moId) for cluster in found)))
        return found[0]

    def container(self, selector):
        """The object whose VMs a many-VM selection covers (None: all VMs)."""
        selector.validate()
        if selector.folder:
            return self.folder(selector.folder, selector.datacenter)
        if selector.cluster:
            return self.cluster(selector.cluster, selector.datacenter)
        if selector.datacenter:
            return self.datacenter(selector.datacenter)
        return None
