# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory paths ("/DC0/vm/prod/app01") for many objects from one call.

Folders and datacenters are few; their names and parents come back in one
PropertyCollector call, and any object's path is then its parent's path
plus its own name.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve


def _unescape(name):
    # vSphere escapes '/', '\\' and '%' inside inventory names.
    return name.replace("%2f", "/").replace("%2F", "/").replace("%5c", "\\").replace("%5C", "\\").replace("%25", "%")


class InventoryTree:
    """Names and parents of every folder and datacenter, to build paths."""

    def __init__(self, nodes, root_moid):
        self._nodes = nodes  # moid -> (name, parent moid or None, kind, managed object)
        self._root_moid = root_moid
        self._paths = {}

    @classmethod
    def load(cls, client):
        nodes = {}
        for kind in (vim.Folder, vim.Datacenter, vim.ComputeResource):
            for item in retrieve(client, kind, ["name", "parent"]):
                parent = item.get("parent")
                # the reference carries its real type (ClusterComputeResource, ...)
                nodes[item.moid] = (_unescape(item.get("name", "")), parent._moId if parent is not None else None,
                                    type(item.obj).__name__.split(".")[-1], item.obj)
        return cls(nodes, client.content.rootFolder._moId)

    def path_of(self, moid):
        """Inventory path of a folder or datacenter; the root folder is ''."""
        if moid == self._root_moid or moid not in self._nodes:
            return ""
        if moid not in self._paths:
            name, parent = self._nodes[moid][:2]
            self._paths[moid] = self.path_of(parent) + "/" + name
        return self._paths[moid]

    def child_path(self, parent_moid, name):
        return self.path_of(parent_moid) + "/" + _unescape(name)

    def _datacenter_moid(self, moid):
        while moid in self._nodes:
            parent, kind = self._nodes[moid][1:3]
            if kind == "Datacenter":
                return moid
            moid = parent
        return None

    def datacenter_of(self, moid):
        """Name of the datacenter that holds a folder, or None."""
        found = self._datacenter_moid(moid)
        return self._nodes[found][0] if found else None

    def datacenter_path_of(self, moid):
        """Inventory path of the datacenter that holds a folder ("DC0", "nested/DC1"), as dcPath takes it."""
        found = self._datacenter_moid(moid)
        return self.path_of(found).lstrip("/") if found else None

    def find(self, path, kind=None):
        """The managed object at an inventory path, or None."""
        wanted = "/" + path.strip("/")
        for moid, node in self._nodes.items():
            if self.path_of(moid) == wanted and (kind is None or node[2] == kind):
                return node[3]
        return None

    def named(self, name, kind):
        """Every managed object of ``kind`` with this name, by moid."""
        return [node[3] for moid, node in sorted(self._nodes.items())
                if node[0] == name and node[2] == kind]
