"""The launcher keeps the storage policies ConfigSpecs ask for and PBM reports them.

Stock vcsim drops `vmProfile` and disk `profile` specs and PBM answers every
association query with nothing; tests/vcsim/pbm_associations.go fixes that.
Policies are read back only through PBM over the vCenter session, the way
the product reads them.
"""
import ssl

import pytest
from pyVmomi import SoapStubAdapter, VmomiSupport, pbm, vim

from estate import ENCRYPTION_POLICY_ID, GUEST_ID, wait_for_task
from vcsim import Vcsim

VSAN_DEFAULT_POLICY_ID = "aa6d5a82-1c88-45da-85d3-3d74b91a5bad"  # another pbm/simulator built-in
CONTROLLER_KEY = 1000


@pytest.fixture(scope="module")
def own_vcsim():
    """A pristine simulator, so these VMs do not disturb the session estate."""
    with Vcsim() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def own_si(own_vcsim):
    with own_vcsim.session() as si:
        yield si


def _profile_manager(simulator, si):
    """PBM's profile manager on /pbm/sdk, authenticated by the vCenter session cookie."""
    cookie = si._stub.cookie.split(";")[0].split("=", 1)[1].strip('"')
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    version = VmomiSupport.newestVersions.GetName("pbm") or "pbm.version.v8_0_3_0"
    stub = SoapStubAdapter(host=simulator.host, port=simulator.port, path="/pbm/sdk", version=version,
                           sslContext=context, requestContext={"vcSessionCookie": cookie})
    return pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent().profileManager


def _home(vm):
    return pbm.ServerObjectRef(objectType="virtualMachine", key=vm._moId)


def _disk(vm, key):
    return pbm.ServerObjectRef(objectType="virtualDiskId", key="%s:%d" % (vm._moId, key))


def _associations(profile_manager, entities):
    """{entity key: [profile ids]} for every entity asked about, in order."""
    results = profile_manager.PbmQueryAssociatedProfiles(entities=entities)
    assert [(r.object.objectType, r.object.key) for r in results] == [(e.objectType, e.key) for e in entities]
    return dict((r.object.key, [p.uniqueId for p in r.profileId]) for r in results)


def _profile(profile_id):
    return [vim.vm.DefinedProfileSpec(profileId=profile_id)]


def _disk_spec(key, unit, operation="add", profile=None, device=None):
    if device is None:
        device = vim.vm.device.VirtualDisk(
            key=key, controllerKey=CONTROLLER_KEY, unitNumber=unit, capacityInKB=1024,
            backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                fileName="", diskMode="persistent", thinProvisioned=True))
    spec = vim.vm.device.VirtualDeviceSpec(operation=operation, device=device, profile=profile)
    if operation == "add":
        spec.fileOperation = "create"
    elif operation == "remove":
        spec.fileOperation = "destroy"
    return spec


class Inventory(object):
    def __init__(self, si):
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ClusterComputeResource], True)
        try:
            self.cluster = sorted(view.view, key=lambda c: c.name)[0]
        finally:
            view.Destroy()
        self.datacenter = self.cluster.parent.parent
        self.folder = self.datacenter.vmFolder
        self.pool = self.cluster.resourcePool
        self.host = self.cluster.host[0]
        self.datastore = self.datacenter.datastore[0]
        self.search = content.searchIndex

    def create(self, name, vm_profile, disks):
        devices = [vim.vm.device.VirtualDeviceSpec(
            operation="add",
            device=vim.vm.device.ParaVirtualSCSIController(key=CONTROLLER_KEY, busNumber=0, sharedBus="noSharing"))]
        devices += disks
        spec = vim.vm.ConfigSpec(name=name, guestId=GUEST_ID, numCPUs=1, memoryMB=128,
                                 files=vim.vm.FileInfo(vmPathName="[%s]" % self.datastore.name),
                                 vmProfile=vm_profile, deviceChange=devices)
        wait_for_task(self.folder.CreateVM_Task(config=spec, pool=self.pool, host=self.host))
        return self.search.FindChild(self.folder, name)


def _disk_keys(vm):
    return sorted(d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))


def _disk_by_key(vm, key):
    return next(d for d in vm.config.hardware.device if d.key == key)


def test_create_vm_records_home_and_disk_policies(own_vcsim, own_si):
    inventory = Inventory(own_si)
    vm = inventory.create("pbm-create", _profile(ENCRYPTION_POLICY_ID), [
        _disk_spec(2000, 0, profile=_profile(ENCRYPTION_POLICY_ID)),   # positive key: kept
        _disk_spec(-7, 1, profile=_profile(VSAN_DEFAULT_POLICY_ID)),  # negative key: renumbered
        _disk_spec(-8, 2),                                            # no profile
    ])
    keys = _disk_keys(vm)
    assert 2000 in keys and len(keys) == 3 and all(k > 0 for k in keys)
    renumbered = next(d.key for d in vm.config.hardware.device
                      if isinstance(d, vim.vm.device.VirtualDisk) and d.unitNumber == 1)
    plain = next(d.key for d in vm.config.hardware.device
                 if isinstance(d, vim.vm.device.VirtualDisk) and d.unitNumber == 2)

    manager = _profile_manager(own_vcsim, own_si)
    found = _associations(manager, [_home(vm), _disk(vm, 2000), _disk(vm, renumbered), _disk(vm, plain)])
    assert found == {
        vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:2000" % vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:%d" % (vm._moId, renumbered): [VSAN_DEFAULT_POLICY_ID],
        "%s:%d" % (vm._moId, plain): [],
    }
    # The single-entity call agrees.
    assert [p.uniqueId for p in manager.PbmQueryAssociatedProfile(entity=_disk(vm, renumbered))] == \
        [VSAN_DEFAULT_POLICY_ID]
    assert [p.uniqueId for p in manager.PbmQueryAssociatedProfile(entity=_home(vm))] == [ENCRYPTION_POLICY_ID]
    assert list(manager.PbmQueryAssociatedProfile(entity=_disk(vm, plain))) == []


def test_reconfigure_sets_edits_clears_and_removes(own_vcsim, own_si):
    inventory = Inventory(own_si)
    vm = inventory.create("pbm-reconfig", None, [_disk_spec(2000, 0), _disk_spec(2001, 1)])
    manager = _profile_manager(own_vcsim, own_si)
    entities = [_home(vm), _disk(vm, 2000), _disk(vm, 2001)]
    assert set(map(tuple, _associations(manager, entities).values())) == {()}

    # Home and disk 2000 get the encryption policy, disk 2001 another one.
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(vmProfile=_profile(ENCRYPTION_POLICY_ID), deviceChange=[
        _disk_spec(2000, 0, "edit", _profile(ENCRYPTION_POLICY_ID), _disk_by_key(vm, 2000)),
        _disk_spec(2001, 1, "edit", _profile(VSAN_DEFAULT_POLICY_ID), _disk_by_key(vm, 2001)),
    ])))
    assert _associations(manager, entities) == {
        vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:2000" % vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:2001" % vm._moId: [VSAN_DEFAULT_POLICY_ID],
    }

    # A reconfigure without profile specs changes nothing; one that fails records nothing.
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation="no policy change")))
    bogus = vim.vm.device.VirtualDisk(key=4242, controllerKey=CONTROLLER_KEY, unitNumber=9, capacityInKB=1024)
    with pytest.raises(vim.fault.InvalidDeviceSpec):
        wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(
            vmProfile=[vim.vm.EmptyProfileSpec()],
            deviceChange=[_disk_spec(4242, 9, "edit", [vim.vm.EmptyProfileSpec()], bogus)])))
    assert _associations(manager, entities)[vm._moId] == [ENCRYPTION_POLICY_ID]

    # EmptyProfileSpec clears the home and disk 2000; a new disk brings its own policy;
    # removing disk 2001 drops its association.
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(vmProfile=[vim.vm.EmptyProfileSpec()], deviceChange=[
        _disk_spec(2000, 0, "edit", [vim.vm.EmptyProfileSpec()], _disk_by_key(vm, 2000)),
        _disk_spec(2001, 1, "remove", device=_disk_by_key(vm, 2001)),
        _disk_spec(-1, 2, profile=_profile(ENCRYPTION_POLICY_ID)),
    ])))
    keys = _disk_keys(vm)
    assert 2001 not in keys and len(keys) == 2
    added = [k for k in keys if k != 2000][0]
    assert _associations(manager, entities + [_disk(vm, added)]) == {
        vm._moId: [],
        "%s:2000" % vm._moId: [],
        "%s:2001" % vm._moId: [],
        "%s:%d" % (vm._moId, added): [ENCRYPTION_POLICY_ID],
    }


def test_clone_keeps_source_policies_unless_told_and_destroy_forgets(own_vcsim, own_si):
    inventory = Inventory(own_si)
    source = inventory.create("pbm-clone-src", _profile(ENCRYPTION_POLICY_ID), [
        _disk_spec(2000, 0, profile=_profile(ENCRYPTION_POLICY_ID)),
        _disk_spec(2001, 1, profile=_profile(ENCRYPTION_POLICY_ID)),
    ])
    spec = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(
        pool=inventory.pool,
        disk=[vim.vm.RelocateSpec.DiskLocator(diskId=2001, datastore=inventory.datastore,
                                              profile=_profile(VSAN_DEFAULT_POLICY_ID))]))
    wait_for_task(source.CloneVM_Task(folder=inventory.folder, name="pbm-clone", spec=spec))
    clone = inventory.search.FindChild(inventory.folder, "pbm-clone")
    assert _disk_keys(clone) == [2000, 2001]
    manager = _profile_manager(own_vcsim, own_si)
    entities = [_home(clone), _disk(clone, 2000), _disk(clone, 2001)]
    assert _associations(manager, entities) == {
        clone._moId: [ENCRYPTION_POLICY_ID],
        "%s:2000" % clone._moId: [ENCRYPTION_POLICY_ID],
        "%s:2001" % clone._moId: [VSAN_DEFAULT_POLICY_ID],
    }
    # Relocating with a home profile changes only the home.
    wait_for_task(clone.RelocateVM_Task(spec=vim.vm.RelocateSpec(profile=_profile(VSAN_DEFAULT_POLICY_ID))))
    assert _associations(manager, entities)[clone._moId] == [VSAN_DEFAULT_POLICY_ID]

    wait_for_task(clone.Destroy_Task())
    assert _associations(manager, entities) == {
        clone._moId: [], "%s:2000" % clone._moId: [], "%s:2001" % clone._moId: []}
    # The source is untouched.
    assert _associations(manager, [_home(source), _disk(source, 2001)]) == {
        source._moId: [ENCRYPTION_POLICY_ID], "%s:2001" % source._moId: [ENCRYPTION_POLICY_ID]}


def test_unknown_entities_get_an_empty_answer(own_vcsim, own_si):
    manager = _profile_manager(own_vcsim, own_si)
    entities = [pbm.ServerObjectRef(objectType="virtualMachine", key="vm-99999"),
                pbm.ServerObjectRef(objectType="virtualDiskId", key="vm-99999:2000"),
                pbm.ServerObjectRef(objectType="virtualDiskId", key="not-a-disk-id"),
                pbm.ServerObjectRef(objectType="datastore", key="datastore-1")]
    assert set(map(tuple, _associations(manager, entities).values())) == {()}


def test_estate_policies_are_reported(vcsim, vcsim_si, estate):
    """build_estate() encrypts crypt-vm01's home and first disk through the encryption policy."""
    described = estate["vms"]["crypt-vm01"]
    vm = vim.VirtualMachine(described["moid"], vcsim_si._stub)
    manager = _profile_manager(vcsim, vcsim_si)
    found = _associations(manager, [_home(vm), _disk(vm, 2000), _disk(vm, 2001)])
    assert found == {
        vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:2000" % vm._moId: [ENCRYPTION_POLICY_ID],
        "%s:2001" % vm._moId: [],
    }
    # What estate.py claims agrees with what PBM now says.
    assert described["vm_policy_id"] == ENCRYPTION_POLICY_ID
    assert [(d["key"], d["policy_id"]) for d in described["disks"]] == \
        [(2000, ENCRYPTION_POLICY_ID), (2001, None)]
    plain = vim.VirtualMachine(estate["vms"]["plain-vm01"]["moid"], vcsim_si._stub)
    assert _associations(manager, [_home(plain), _disk(plain, 2000)]) == {
        plain._moId: [], "%s:2000" % plain._moId: []}
