# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explicit property paths for many objects in one PropertyCollector call.

Reading attributes of managed objects one by one costs a round trip each;
RetrievePropertiesEx returns the named paths of every object at once, in
pages joined by ContinueRetrievePropertiesEx.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError, VmcryptError

PAGE_SIZE = 500


class ObjectProperties:
    """The retrieved paths of one managed object.

    ``props`` holds the paths that have a value (unset paths are absent);
    ``missing`` maps paths the server could not read to their fault.
    """

    def __init__(self, obj, props, missing):
        self.obj = obj
        self.props = props
        self.missing = missing

    @property
    def moid(self):
        return self.obj._moId

    def get(self, path, default=None):
        return self.props.get(path, default)

    def __repr__(self):
        return "ObjectProperties(%s, %r)" % (self.moid, sorted(self.props))


def retrieve(client, obj_type, paths, objects=None, container=None, recursive=True):
    """Return ObjectProperties for ``paths`` of objects of ``obj_type``.

    Either ``objects`` (a list of managed object references) or every object
    of that type below ``container`` (the root folder by default).
    """
    collector = client.content.propertyCollector
    property_spec = vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=list(paths), all=False)
    view = None
    if objects is not None:
        if not objects:
            return []
        object_specs = [vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in objects]
    else:
        view = client.content.viewManager.CreateContainerView(
            container or client.content.rootFolder, [obj_type], recursive)
        traverse_view = vmodl.query.PropertyCollector.TraversalSpec(
            name="traverseView", type=vim.view.ContainerView, path="view", skip=False)
        object_specs = [vmodl.query.PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse_view])]
    filter_spec = vmodl.query.PropertyCollector.FilterSpec(objectSet=object_specs, propSet=[property_spec])
    try:
        return list(_pages(collector, filter_spec))
    except vmodl.fault.ManagedObjectNotFound as fault:
        raise NotFoundError("managed object %s no longer exists" % fault.obj._moId)
    except vmodl.MethodFault as fault:
        raise VmcryptError("PropertyCollector refused paths %s: %s" % (", ".join(paths), fault.msg or type(fault).__name__))
    finally:
        if view is not None:
            view.Destroy()


def _pages(collector, filter_spec):
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE_SIZE)
    result = collector.RetrievePropertiesEx([filter_spec], options)
    while result is not None:
        for content in result.objects or []:
            props = dict((prop.name, prop.val) for prop in content.propSet or [])
            missing = dict((item.path, item.fault) for item in content.missingSet or [])
            yield ObjectProperties(content.obj, props, missing)
        if not result.token:
            return
        result = collector.ContinueRetrievePropertiesEx(result.token)


def retrieve_one(client, obj, paths):
    """The paths of a single object, or NotFoundError when it is gone."""
    found = retrieve(client, type(obj), paths, objects=[obj])
    if not found:
        raise NotFoundError("managed object %s does not exist" % obj._moId)
    return found[0]
