# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Explicit property paths for many objects in one PropertyCollector call (in chunks for thousands).

Reading attributes of managed objects one by one costs a round trip each;
RetrievePropertiesEx returns the named paths of every object at once, in
pages joined by ContinueRetrievePropertiesEx.

For thousands of objects, ``retrieve_all`` asks in chunks of explicit
references, two requests in flight: a server builds a whole answer before it
sends the first page, so one big request leaves the client idle while the
server works and the server idle while the client decodes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import gc
import io

try:
    from pyVmomi import vim, vmodl
    from pyVmomi.SoapAdapter import SoapResponseDeserializer
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.at_once import each_at_once
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError, VmcryptError

PAGE_SIZE = 500
CHUNK_SIZE = 500  # objects per request of retrieve_all
REQUESTS_IN_FLIGHT = 2  # one decoded by the client while the server builds the next


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


def retrieve_all(client, obj_type, paths, container=None, recursive=True, chunk_size=CHUNK_SIZE,
                 in_flight=REQUESTS_IN_FLIGHT, answer_filter=None):
    """What ``retrieve(client, obj_type, paths, container=container)`` returns, asked in chunks.

    The container's members are listed first (one call), then their paths
    are read ``chunk_size`` objects per RetrievePropertiesEx, ``in_flight``
    requests at a time, so the server builds one chunk while the client
    decodes another.  Objects removed between the listing and their chunk are
    left out, as the one-call traversal would not have seen them.

    ``answer_filter``, when given, takes each answer's SOAP body (bytes) and
    returns it with parts the caller will not read taken out, before pyVmomi
    decodes it (decoding is most of the client's time); it must leave a
    well-formed answer.
    """
    collector = client.content.propertyCollector
    view = client.content.viewManager.CreateContainerView(
        container or client.content.rootFolder, [obj_type], recursive)
    try:
        members = list(retrieve_one(client, view, ["view"]).get("view") or [])
    finally:
        view.Destroy()
    property_spec = vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=list(paths), all=False)

    invoke = _filtered_invoker(collector, answer_filter) if answer_filter is not None else None

    def read_chunk(chunk):
        filter_spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in chunk],
            propSet=[property_spec], reportMissingObjectsInResults=True)
        return [item for item in _pages(collector, filter_spec, invoke) if not _vanished(item)]

    chunks = [members[start:start + chunk_size] for start in range(0, len(members), chunk_size)]
    try:
        with without_cycle_collection():
            answers = each_at_once(read_chunk, chunks, in_flight)
    except vmodl.MethodFault as fault:
        raise VmcryptError("PropertyCollector refused paths %s: %s" % (", ".join(paths), fault.msg or type(fault).__name__))
    return [item for answer in answers for item in answer]


@contextlib.contextmanager
def without_cycle_collection():
    """The garbage collector's cycle search paused for the block (as it was after it).

    Decoding creates hundreds of thousands of data objects that live on and
    form no cycles; each full collection walks all those made so far, a cost
    that grows with the square of their number (a fifth of the client's time
    for 10,000 VMs).  Memory freed by reference counting is freed as before.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _vanished(item):
    return not item.props and any(isinstance(fault, vmodl.fault.ManagedObjectNotFound)
                                  for fault in item.missing.values())


def _filtered_invoker(collector, answer_filter):
    """invoke(method name, arguments): the collector's method with its answer passed through answer_filter.

    The request is pyVmomi's own and so is the decoding; only the answer's
    bytes pass through the filter in between.  None when the stub is not
    pyVmomi's SOAP stub (the plain calls are used then).
    """
    stub = getattr(collector, "_stub", None)
    used = ("SerializeRequest", "GetConnection", "ReturnConnection", "DropConnections", "path", "cookie", "version",
            "versionId")
    if not all(hasattr(stub, name) for name in used):
        return None

    def invoke(method, args):
        info = type(collector)._GetMethodInfo(method)
        body = stub.SerializeRequest(collector, info, args)
        for modifier in getattr(stub, "requestModifierList", None) or []:
            body = modifier(body)
        headers = {"Cookie": stub.cookie, "SOAPAction": stub.versionId, "Content-Type": "text/xml; charset=UTF-8"}
        headers.update(getattr(stub, "_customHeaders", None) or {})
        connection = stub.GetConnection()
        try:
            connection.request("POST", stub.path, body, headers)
            response = connection.getresponse()
            status, answer = response.status, response.read()
        except Exception:
            connection.close()
            stub.DropConnections()
            raise
        stub.ReturnConnection(connection)
        if status == 200:
            answer = answer_filter(answer)
        elif status != 500:  # 500 carries a SOAP fault, which pyVmomi decodes below
            raise vmodl.fault.SystemError(msg="%s answered HTTP %d" % (method, status), reason=str(status))
        result = SoapResponseDeserializer(stub).Deserialize(io.BytesIO(answer), info.result)
        if status == 500:
            raise result if isinstance(result, Exception) else vmodl.fault.SystemError(
                msg="%s failed without a fault" % method, reason="500")
        return result
    return invoke


def _pages(collector, filter_spec, invoke=None):
    if invoke is None:
        def invoke(method, args):
            return getattr(collector, method)(*args)
    options = vmodl.query.PropertyCollector.RetrieveOptions(maxObjects=PAGE_SIZE)
    result = invoke("RetrievePropertiesEx", [[filter_spec], options])
    while result is not None:
        for content in result.objects or []:
            props = dict((prop.name, prop.val) for prop in content.propSet or [])
            missing = dict((item.path, item.fault) for item in content.missingSet or [])
            yield ObjectProperties(content.obj, props, missing)
        if not result.token:
            return
        result = invoke("ContinueRetrievePropertiesEx", [result.token])


def retrieve_one(client, obj, paths):
    """The paths of a single object, or NotFoundError when it is gone."""
    found = retrieve(client, type(obj), paths, objects=[obj])
    if not found:
        raise NotFoundError("managed object %s does not exist" % obj._moId)
    return found[0]
