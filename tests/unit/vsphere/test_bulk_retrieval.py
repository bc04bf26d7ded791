"""Many VMs' facts: chunked PropertyCollector reads and the device filter on the answer's XML."""
import io
import threading

import pytest
from pyVmomi import SoapAdapter, VmomiSupport, vim, vmodl

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import properties
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import (
    vm_crypto_facts,
    without_unread_items,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import ObjectProperties

from test_crypto_facts import encrypted_vm_props

PC = vmodl.query.PropertyCollector
ENVELOPE = (b'<?xml version="1.0" encoding="UTF-8"?>'
            b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            b'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            b'<soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25">%s</RetrievePropertiesExResponse>'
            b'</soapenv:Body></soapenv:Envelope>')


def vm_props():
    props = encrypted_vm_props()
    del props["snapshot"]  # a SnapshotTree needs fields these tests do not care about
    devices = props["config.hardware.device"] + [
        vim.vm.device.VirtualE1000(key=4000, deviceInfo=vim.Description(label="Network adapter 1", summary="VM Network")),
        vim.vm.device.ParaVirtualSCSIController(key=1000, busNumber=0, sharedBus="noSharing", device=[2000, 2001]),
    ]
    props["config.hardware.device"] = vim.vm.device.VirtualDevice.Array(devices[3:4] + devices[:3] + devices[4:])
    props["config.extraConfig"] = vim.option.OptionValue.Array(props["config.extraConfig"])
    props["layoutEx.file"] = vim.vm.FileLayoutEx.FileInfo.Array([
        vim.vm.FileLayoutEx.FileInfo(key=key, name="[ds1] app01/" + name, type=kind, size=0, accessible=True)
        for key, (name, kind) in enumerate([("app01.vmx", "config"), ("app01-home.nvram", "nvram"),
                                            ("app01.vmdk", "diskDescriptor"), ("vmware.log", "log")])])
    return props


def answer(props, moid="vm-42"):
    """A RetrievePropertiesEx answer as pyVmomi writes one (a vCenter writes the same shape)."""
    result = PC.RetrieveResult(objects=[PC.ObjectContent(
        obj=vim.VirtualMachine(moid), propSet=[vmodl.DynamicProperty(name=k, val=v) for k, v in props.items()])])
    info = VmomiSupport.Object(name="returnval", type=PC.RetrieveResult, version="vim.version.version1", flags=0)
    return ENVELOPE % SoapAdapter.Serialize(result, info, version=VmomiSupport.newestVersions.GetName("vim"))


def decoded_facts(body):
    result = SoapAdapter.SoapResponseDeserializer(None).Deserialize(io.BytesIO(body), PC.RetrieveResult)
    content = result.objects[0]
    item = ObjectProperties(content.obj, dict((prop.name, prop.val) for prop in content.propSet), {})
    return item, vm_crypto_facts(item, "/DC1/vm/app01", {("vm-42", 2000): ["policy-enc"]}, {"policy-enc": "Enc"})


@pytest.mark.parametrize("prefix", [b"xsi", b"_XMLSchema-instance"])  # vCenter's prefix, govmomi's
def test_the_filtered_answer_gives_the_same_facts(prefix):
    body = answer(vm_props()).replace(b"xsi:", prefix + b":").replace(b"xmlns:xsi=", b"xmlns:" + prefix + b"=")
    filtered = without_unread_items(body)
    assert len(filtered) < len(body)
    assert b"VirtualE1000" not in filtered and b"ParaVirtualSCSIController" not in filtered
    assert b"app01.vmx</name>" not in filtered and b"vmware.log" not in filtered
    full_item, full_facts = decoded_facts(body)
    item, facts = decoded_facts(filtered)
    assert facts == full_facts
    assert facts["vtpm_present"] is True and [disk["key"] for disk in facts["disks"]] == [2000, 2001]
    assert (facts["nvram_path"], facts["nvram_path_source"]) == ("[ds1] app01/app01-home.nvram", "layout")
    assert [item.type for item in item.get("layoutEx.file")] == ["nvram"]
    assert [device.key for device in item.get("config.hardware.device")] == [2000, 2001, 11000]
    assert len(full_item.get("config.hardware.device")) == 5


def test_devices_written_otherwise_are_left_as_they_are():
    untyped = b"<val><VirtualDevice><key>1</key></VirtualDevice></val>"
    assert without_unread_items(untyped) == untyped
    no_devices = answer({"name": "app01"})
    assert without_unread_items(no_devices) == no_devices
    empty = b'<val><VirtualDevice xsi:type="VirtualE1000"/><VirtualDevice xsi:type="VirtualTPM"/></val>'
    assert without_unread_items(empty) == b'<val><VirtualDevice xsi:type="VirtualTPM"/></val>'
    unclosed = b'<val><VirtualDevice xsi:type="VirtualE1000"><key>4000</key>'
    assert without_unread_items(unclosed) == unclosed
    files = (b"<val><VirtualMachineFileLayoutExFileInfoToo><type>log</type></VirtualMachineFileLayoutExFileInfoToo>"
             b"<VirtualMachineFileLayoutExFileInfo><type>log</type></VirtualMachineFileLayoutExFileInfo></val>")
    assert without_unread_items(files) == (b"<val><VirtualMachineFileLayoutExFileInfoToo><type>log</type>"
                                           b"</VirtualMachineFileLayoutExFileInfoToo></val>")


class FakeView:
    def __init__(self, members):
        self.members = members
        self.destroyed = False

    def Destroy(self):  # noqa: N802 (vSphere's name)
        self.destroyed = True


class FakeCollector:
    """Answers RetrievePropertiesEx for explicit ObjectSpecs from a dict, in pages of ``page``."""

    def __init__(self, objects, page=3, gone=()):
        self.objects = objects
        self.page = page
        self.gone = set(gone)
        self.requests = []
        self.pending = {}
        self.lock = threading.Lock()

    def _contents(self, refs):
        contents = []
        for ref in refs:
            if ref._moId in self.gone:
                contents.append(PC.ObjectContent(obj=ref, missingSet=[PC.MissingProperty(
                    path="name", fault=vmodl.fault.ManagedObjectNotFound(obj=ref))]))
            else:
                contents.append(PC.ObjectContent(obj=ref, propSet=[
                    vmodl.DynamicProperty(name="name", val=self.objects[ref._moId])]))
        return contents

    def _answer(self, contents):
        with self.lock:
            token = None
            if len(contents) > self.page:
                token = "t%d" % len(self.pending)
                self.pending[token] = contents[self.page:]
            return PC.RetrieveResult(objects=contents[:self.page], token=token)

    def RetrievePropertiesEx(self, specs, options):  # noqa: N802
        (spec,) = specs
        assert spec.reportMissingObjectsInResults
        refs = [object_spec.obj for object_spec in spec.objectSet]
        with self.lock:
            self.requests.append([ref._moId for ref in refs])
        return self._answer(self._contents(refs))

    def ContinueRetrievePropertiesEx(self, token):  # noqa: N802
        with self.lock:
            contents = self.pending.pop(token)
        return self._answer(contents)


class FakeClient:
    def __init__(self, collector, members):
        self.view = FakeView(members)
        self.content = self
        self.propertyCollector = collector
        self.viewManager = self
        self.rootFolder = vim.Folder("group-d1")

    def CreateContainerView(self, container, types, recursive):  # noqa: N802
        return self.view


def test_every_member_is_read_once_in_chunks_and_in_order(monkeypatch):
    names = dict(("vm-%d" % number, "app%02d" % number) for number in range(1, 24))
    members = [vim.VirtualMachine(moid) for moid in sorted(names, key=lambda moid: int(moid[3:]))]
    collector = FakeCollector(names, gone={"vm-7"})
    client = FakeClient(collector, members)
    monkeypatch.setattr(properties, "retrieve_one", lambda client_, obj, paths: ObjectProperties(obj, {"view": members}, {}))
    items = properties.retrieve_all(client, vim.VirtualMachine, ["name"], chunk_size=5)
    assert [item.moid for item in items] == [ref._moId for ref in members if ref._moId != "vm-7"]
    assert all(item.get("name") == names[item.moid] for item in items)
    assert sorted(len(chunk) for chunk in collector.requests) == [3, 5, 5, 5, 5]
    assert client.view.destroyed


def test_a_refusal_is_one_error_and_collection_is_back_on(monkeypatch):
    import gc

    class Refusing(FakeCollector):
        def RetrievePropertiesEx(self, specs, options):  # noqa: N802
            raise vmodl.fault.InvalidArgument(invalidProperty="pathSet", msg="bad path")

    members = [vim.VirtualMachine("vm-%d" % number) for number in range(10)]
    client = FakeClient(Refusing({}), members)
    monkeypatch.setattr(properties, "retrieve_one", lambda client_, obj, paths: ObjectProperties(obj, {"view": members}, {}))
    with pytest.raises(VmcryptError, match="PropertyCollector refused paths name: bad path"):
        properties.retrieve_all(client, vim.VirtualMachine, ["name"], chunk_size=2)
    assert gc.isenabled()
    assert client.view.destroyed


FAULT = (b'<?xml version="1.0" encoding="UTF-8"?>'
         b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
         b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault>'
         b'<faultcode>ServerFaultCode</faultcode><faultstring>no such path: config.nothing</faultstring>'
         b'<detail><InvalidPropertyFault xmlns="urn:vim25" xsi:type="InvalidProperty"><name>config.nothing</name>'
         b'</InvalidPropertyFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>')


class RecordedStub:
    """pyVmomi's SOAP stub as the filtered path uses it, answering every POST with one recorded answer."""

    path = "/sdk"
    cookie = 'vmware_soap_session="52b1"'
    versionId = '"urn:vim25/8.0.3.0"'
    version = VmomiSupport.newestVersions.GetName("vim")

    def __init__(self, status, body):
        self.status, self.body = status, body
        self.requests = []
        self.returned = 0

    def SerializeRequest(self, mo, info, args):  # noqa: N802 (pyVmomi's name)
        return ("%s(%d arguments)" % (info.wsdlName, len(args))).encode()

    def GetConnection(self):  # noqa: N802
        stub = self

        class Connection:
            def request(self, method, path, body, headers):
                stub.requests.append((method, path, body, headers["Cookie"], headers["SOAPAction"]))

            def getresponse(self):
                return type("Response", (), {"status": stub.status, "read": lambda self_: stub.body})()

        return Connection()

    def ReturnConnection(self, connection):  # noqa: N802
        self.returned += 1

    def DropConnections(self):  # noqa: N802
        raise AssertionError("no connection failed")


def recorded_collector(status, body):
    collector = vim.PropertyCollector("propertyCollector")
    collector._stub = RecordedStub(status, body)
    return collector


def test_the_filtered_path_sends_pyvmomis_request_and_decodes_the_filtered_answer():
    collector = recorded_collector(200, answer(vm_props()))
    invoke = properties._filtered_invoker(collector, without_unread_items)
    result = invoke("RetrievePropertiesEx", [[PC.FilterSpec()], PC.RetrieveOptions(maxObjects=500)])
    stub = collector._stub
    assert stub.requests == [("POST", "/sdk", b"RetrievePropertiesEx(2 arguments)", stub.cookie, stub.versionId)]
    assert stub.returned == 1
    devices = dict((prop.name, prop.val) for prop in result.objects[0].propSet)["config.hardware.device"]
    assert [type(device).__name__.split(".")[-1] for device in devices] == ["VirtualDisk", "VirtualDisk", "VirtualTPM"]


def test_a_fault_on_the_filtered_path_is_raised_as_pyvmomi_raises_it():
    invoke = properties._filtered_invoker(recorded_collector(500, FAULT), without_unread_items)
    with pytest.raises(vmodl.query.InvalidProperty) as raised:
        invoke("RetrievePropertiesEx", [[PC.FilterSpec()], PC.RetrieveOptions(maxObjects=500)])
    assert raised.value.name == "config.nothing"
    with pytest.raises(vmodl.fault.SystemError, match="HTTP 503"):
        properties._filtered_invoker(recorded_collector(503, b"busy"), without_unread_items)(
            "ContinueRetrievePropertiesEx", ["token"])


def test_a_stub_that_is_not_pyvmomis_soap_stub_gets_the_plain_calls():
    assert properties._filtered_invoker(FakeCollector({}), without_unread_items) is None
