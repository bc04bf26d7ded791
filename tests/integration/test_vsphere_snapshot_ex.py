"""Backup snapshots through CreateSnapshotEx_Task, asserted on what the simulator received.

The launcher (tests/vcsim/snapshot_ex.go) writes every snapshot request as a
JSON line in <simulator home>/snapshot-requests.jsonl, with the quiesce spec
as sent. These tests run on their own simulator: they snapshot, power on and
retype the model's stock VMs, which the session estate must not see.
"""
import json
import os
import re

import pytest
from pyVmomi import vim

from estate import wait_for_task
from vcsim import Vcsim

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import AmbiguousError, InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import snapshots
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve_one

CHANGE_ID = re.compile(r"^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}/[0-9]+$")
WINDOWS_GUEST = "windows2019srv_64Guest"
LINUX_GUEST = "rhel9_64Guest"


@pytest.fixture(scope="module")
def own_vcsim():
    with Vcsim(vms_per_pool=4) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def client(own_vcsim):
    with VsphereClient(own_vcsim.host, own_vcsim.username, own_vcsim.password, port=own_vcsim.port,
                       validate_certs=False) as session:
        yield session


@pytest.fixture(scope="module")
def stock_vms(client):
    """The model's VMs by name, as references on the client's session."""
    view = client.content.viewManager.CreateContainerView(client.content.rootFolder, [vim.VirtualMachine], True)
    try:
        vms = dict((vm.name, vm) for vm in view.view)
    finally:
        view.Destroy()
    assert len(vms) >= 4
    return [vms[name] for name in sorted(vms)]


def power_state(client, vm):
    # explicit path: pyVmomi cannot read the simulator's whole runtime
    return retrieve_one(client, vm, ["runtime.powerState"]).get("runtime.powerState")


def prepare(client, vm, guest_id, powered_on, cbt=False):
    spec = vim.vm.ConfigSpec(guestId=guest_id)
    if cbt:
        spec.changeTrackingEnabled = True
    wait_for_task(vm.ReconfigVM_Task(spec=spec))
    if powered_on and power_state(client, vm) != "poweredOn":
        wait_for_task(vm.PowerOnVM_Task())
    if not powered_on and power_state(client, vm) != "poweredOff":
        wait_for_task(vm.PowerOffVM_Task())
    assert power_state(client, vm) == ("poweredOn" if powered_on else "poweredOff")
    return vm


@pytest.fixture(scope="module")
def linux_vm(client, stock_vms):
    return prepare(client, stock_vms[0], LINUX_GUEST, powered_on=True, cbt=True)


@pytest.fixture(scope="module")
def windows_vm(client, stock_vms):
    return prepare(client, stock_vms[1], WINDOWS_GUEST, powered_on=True)


@pytest.fixture(scope="module")
def powered_off_vm(client, stock_vms):
    return prepare(client, stock_vms[2], LINUX_GUEST, powered_on=False)


def requests_of(simulator, vm, name):
    """The launcher's records of snapshot requests named `name` on `vm`."""
    path = os.path.join(simulator.home, "snapshot-requests.jsonl")
    with open(path) as f:
        records = [json.loads(line) for line in f]
    return [record for record in records if record["vm"] == vm._moId and record["name"] == name]


def tree_of(client, vm, snapshot):
    found = snapshots.find_snapshot_by_name(client, vm, snapshot_name(client, vm, snapshot))
    assert found.snapshot._moId == snapshot._moId
    return found


def snapshot_name(client, vm, snapshot):
    pending = list(vm.snapshot.rootSnapshotList)
    while pending:
        tree = pending.pop()
        if tree.snapshot._moId == snapshot._moId:
            return tree.name
        pending.extend(tree.childSnapshotList)
    raise AssertionError("snapshot %s not in the tree of %s" % (snapshot._moId, vm._moId))


def windows_of(vm):
    return snapshots.is_windows_guest(guest_id=vm.config.guestId)


def test_filesystem_quiescing_of_a_linux_guest_sends_a_guest_quiesce_spec(own_vcsim, client, linux_vm):
    assert windows_of(linux_vm) is False
    snapshot = snapshots.create_backup_snapshot(client, linux_vm, "fs-linux", quiesce="filesystem",
                                                windows=windows_of(linux_vm), description="nightly backup")
    try:
        [record] = requests_of(own_vcsim, linux_vm, "fs-linux")
        assert record["method"] == "CreateSnapshotEx_Task"
        assert record["description"] == "nightly backup"
        assert record["memory"] is False
        assert record["power_state"] == "poweredOn"
        assert record["quiesce_spec"] == {"type": "VirtualMachineGuestQuiesceSpec", "timeout": 0}
        tree = tree_of(client, linux_vm, snapshot)
        assert tree.quiesced is True
        assert tree.state == "poweredOff"  # no memory: the snapshot's power state is off
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_filesystem_quiescing_of_a_windows_guest_asks_vss_for_no_application_writers(own_vcsim, client, windows_vm):
    assert windows_of(windows_vm) is True
    snapshot = snapshots.create_backup_snapshot(client, windows_vm, "fs-windows", quiesce="filesystem",
                                                windows=True, quiesce_timeout=15)
    try:
        [record] = requests_of(own_vcsim, windows_vm, "fs-windows")
        assert record["quiesce_spec"] == {
            "type": "VirtualMachineWindowsQuiesceSpec", "timeout": 15, "vssBackupType": 5,
            "vssBackupContext": "ctx_file_share_backup",
            "vssBootableSystemState": False, "vssPartialFileSupport": False,
        }
        assert record["description"] == snapshots.DEFAULT_DESCRIPTION
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_application_quiescing_of_a_windows_guest_uses_the_backup_context(own_vcsim, client, windows_vm):
    snapshot = snapshots.create_backup_snapshot(client, windows_vm, "app-windows", quiesce="application",
                                                windows=True)
    try:
        [record] = requests_of(own_vcsim, windows_vm, "app-windows")
        assert record["quiesce_spec"]["type"] == "VirtualMachineWindowsQuiesceSpec"
        assert record["quiesce_spec"]["vssBackupContext"] == "ctx_backup"
        assert record["quiesce_spec"]["vssBackupType"] == 5
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_no_quiescing_sends_no_spec_and_the_snapshot_is_not_quiesced(own_vcsim, client, windows_vm):
    snapshot = snapshots.create_backup_snapshot(client, windows_vm, "crash", quiesce="none", windows=True)
    try:
        [record] = requests_of(own_vcsim, windows_vm, "crash")
        assert record["method"] == "CreateSnapshotEx_Task"
        assert record["quiesce_spec"] is None
        assert tree_of(client, windows_vm, snapshot).quiesced is False
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_a_powered_off_vm_is_snapshotted_and_the_ignored_spec_leaves_it_unquiesced(own_vcsim, client, powered_off_vm):
    # API reference: "If the virtual machine is powered off or VMware Tools are
    # not available, the quiesce spec is ignored." No fault.
    snapshot = snapshots.create_backup_snapshot(client, powered_off_vm, "fs-off", quiesce="filesystem")
    try:
        [record] = requests_of(own_vcsim, powered_off_vm, "fs-off")
        assert record["power_state"] == "poweredOff"
        assert record["quiesce_spec"]["type"] == "VirtualMachineGuestQuiesceSpec"
        assert tree_of(client, powered_off_vm, snapshot).quiesced is False
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_the_ex_snapshot_carries_each_disks_change_id_for_the_next_incremental(client, linux_vm):
    snapshot = snapshots.create_backup_snapshot(client, linux_vm, "cbt", quiesce="filesystem")
    try:
        change_ids = snapshots.snapshot_change_ids(client, snapshot)
        disks = [d for d in linux_vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk)]
        assert sorted(change_ids) == sorted(d.key for d in disks)
        for key, change_id in change_ids.items():
            assert CHANGE_ID.match(change_id), (key, change_id)
            # the VM's current disk got the same changeId (cbt.go's hook ran on the Ex path)
            assert next(d for d in disks if d.key == key).backing.changeId == change_id
        assert [disk.change_id for disk in snapshots.snapshot_disks(client, snapshot)] == \
            [change_ids[key] for key in sorted(change_ids)]
    finally:
        snapshots.remove_snapshot(client, snapshot)


def test_find_by_name_serves_idempotence_and_refuses_ambiguity(client, windows_vm):
    assert snapshots.find_snapshot_by_name(client, windows_vm, "idem") is None
    first = snapshots.create_backup_snapshot(client, windows_vm, "idem")
    second = None
    try:
        found = snapshots.find_snapshot_by_name(client, windows_vm, "idem")
        assert found.snapshot._moId == first._moId and found.name == "idem"
        second = snapshots.create_backup_snapshot(client, windows_vm, "idem")
        with pytest.raises(AmbiguousError) as raised:
            snapshots.find_snapshot_by_name(client, windows_vm, "idem")
        assert str(raised.value) == "VM %s has 2 snapshots named 'idem': %s, %s" % (
            windows_vm._moId, first._moId, second._moId)
    finally:
        for snapshot in (second, first):
            if snapshot is not None:
                snapshots.remove_snapshot(client, snapshot)
    assert snapshots.find_snapshot_by_name(client, windows_vm, "idem") is None


def test_an_unknown_mode_or_timeout_is_refused_before_any_request(own_vcsim, client, windows_vm):
    with pytest.raises(InvalidArgumentError):
        snapshots.create_backup_snapshot(client, windows_vm, "bad-mode", quiesce="vss")
    with pytest.raises(InvalidArgumentError):
        snapshots.create_backup_snapshot(client, windows_vm, "bad-timeout", quiesce="filesystem", quiesce_timeout=1)
    assert requests_of(own_vcsim, windows_vm, "bad-mode") == []
    assert requests_of(own_vcsim, windows_vm, "bad-timeout") == []
