"""The launcher emulates changed block tracking (tests/vcsim/cbt.go).

Stock vcsim never sets a disk's changeId and has no QueryChangedDiskAreas.
The launcher fingerprints each disk's flat extent when a snapshot of a
CBT-enabled VM is taken and answers from those fingerprints, so these tests
play the guest by writing into the flat files and check the answers byte
for byte. Areas are in 64 KiB blocks; one answer covers at most 2 GiB of the
disk or 512 areas.
"""
import os
import re
from types import SimpleNamespace

import pytest
from pyVmomi import vim, vmodl

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.cbt import ChangeTrackingError, changed_areas
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import DiskExportJob

from estate import GUEST_ID, wait_for_task
from vcsim import Vcsim

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
BLOCK = 64 * KIB
PAGE_BYTES = 2 * GIB
PAGE_AREAS = 512
CONTROLLER_KEY = 1000
DISK_KEY = 2000
CHANGE_ID = re.compile(r"^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}/([0-9]+)$")


@pytest.fixture(scope="module")
def own_vcsim():
    """A pristine simulator: these VMs and their disk files stay out of the session estate."""
    with Vcsim(vms_per_pool=0) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def own_si(own_vcsim):
    with own_vcsim.session() as si:
        yield si


@pytest.fixture(scope="module")
def place(own_si):
    content = own_si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.ClusterComputeResource], True)
    try:
        cluster = sorted(view.view, key=lambda c: c.name)[0]
    finally:
        view.Destroy()
    datacenter = cluster.parent.parent
    return {"folder": datacenter.vmFolder, "pool": cluster.resourcePool, "host": cluster.host[0],
            "datastore": datacenter.datastore[0], "search": content.searchIndex}


def create_vm(place, name, capacity):
    disk = vim.vm.device.VirtualDisk(
        key=DISK_KEY, controllerKey=CONTROLLER_KEY, unitNumber=0, capacityInKB=capacity // KIB,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName="", diskMode="persistent",
                                                              thinProvisioned=True))
    spec = vim.vm.ConfigSpec(
        name=name, guestId=GUEST_ID, numCPUs=1, memoryMB=128,
        files=vim.vm.FileInfo(vmPathName="[%s]" % place["datastore"].name),
        deviceChange=[
            vim.vm.device.VirtualDeviceSpec(operation="add", device=vim.vm.device.ParaVirtualSCSIController(
                key=CONTROLLER_KEY, busNumber=0, sharedBus="noSharing")),
            vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk),
        ])
    wait_for_task(place["folder"].CreateVM_Task(config=spec, pool=place["pool"], host=place["host"]))
    vm = place["search"].FindChild(place["folder"], name)
    return vm


def set_cbt(vm, enabled):
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=enabled)))
    assert vm.config.changeTrackingEnabled is enabled


def take_snapshot(vm, name):
    return wait_for_task(vm.CreateSnapshot_Task(name=name, memory=False, quiesce=False))


def disk_of(config):
    return next(d for d in config.hardware.device if d.key == DISK_KEY)


def change_id(owner):
    """The disk's changeId in a VM's or a snapshot's config (pyVmomi reads both via `config`)."""
    return disk_of(owner.config).backing.changeId


def flat_file(simulator, vm):
    """The local -flat.vmdk behind the VM's disk, found through the datastore folder."""
    match = re.match(r"^\[([^\]]+)\] (.+)$", disk_of(vm.config).backing.fileName)
    datastore, relative = match.groups()
    path = os.path.join(simulator.datastores[datastore], relative)
    assert path.endswith(".vmdk")
    return path[:-len(".vmdk")] + "-flat.vmdk"


def write(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def query_pages(vm, snapshot, change, capacity):
    """Every DiskChangeInfo of the client's loop, from 0 to the capacity."""
    pages = []
    start = 0
    while start < capacity:
        info = vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=DISK_KEY, startOffset=start, changeId=change)
        assert info.startOffset == start and info.length > 0
        pages.append(info)
        start = info.startOffset + info.length
    assert start == capacity
    for info in pages:
        for area in info.changedArea:
            assert info.startOffset <= area.start and area.start + area.length <= info.startOffset + info.length
    return pages


def areas(pages):
    """(start, length) of all pages, merged where a page boundary split an area."""
    merged = []
    for info in pages:
        for area in info.changedArea:
            if merged and merged[-1][0] + merged[-1][1] == area.start:
                merged[-1] = (merged[-1][0], merged[-1][1] + area.length)
            else:
                merged.append((area.start, area.length))
    return merged


def changed(vm, snapshot, change, capacity):
    return areas(query_pages(vm, snapshot, change, capacity))


def test_full_then_incremental(own_vcsim, own_si, place):
    capacity = 64 * MIB
    vm = create_vm(place, "cbt-incremental", capacity)
    set_cbt(vm, True)
    assert change_id(vm) is None  # no changeId before the first snapshot
    path = flat_file(own_vcsim, vm)
    write(path, 0, b"\xaa" * 4096)
    write(path, 1 * MIB + 100, b"0123456789")
    write(path, 3 * MIB - 10, b"b" * 20)  # straddles a block boundary

    first = take_snapshot(vm, "backup-1")
    first_id = change_id(first)
    match = CHANGE_ID.match(first_id or "")
    assert match, first_id
    assert change_id(vm) == first_id  # the VM's current backing carries it too

    # "*": the allocated areas, in 64 KiB blocks, as a first full backup reads them.
    assert changed(vm, first, "*", capacity) == [(0, BLOCK), (1 * MIB, BLOCK), (3 * MIB - BLOCK, 2 * BLOCK)]
    assert changed(vm, first, first_id, capacity) == []

    # The backup product removes its snapshot and keeps the changeId.
    wait_for_task(first.RemoveSnapshot_Task(removeChildren=False))
    write(path, 10, b"\x55")                   # block 0 changes
    write(path, 1 * MIB + 100, b"0123456789")  # same bytes again: content-based, so unchanged
    write(path, 5 * MIB + 1, b"new")           # a new block
    write(path, 3 * MIB + 70 * KIB, b"x")      # the block after the straddling pair

    second = take_snapshot(vm, "backup-2")
    second_id = change_id(second)
    assert second_id != first_id
    assert CHANGE_ID.match(second_id).group(3) == str(int(match.group(3)) + 1)
    assert second_id.split("/")[0] == first_id.split("/")[0]  # same disk, same CBT uuid
    assert change_id(vm) == second_id

    assert changed(vm, second, first_id, capacity) == [(0, BLOCK), (3 * MIB + BLOCK, BLOCK), (5 * MIB, BLOCK)]
    assert changed(vm, second, second_id, capacity) == []
    assert changed(vm, second, "*", capacity) == [
        (0, BLOCK), (1 * MIB, BLOCK), (3 * MIB - BLOCK, 3 * BLOCK), (5 * MIB, BLOCK)]

    # Without a snapshot the powered-off VM's current disk is asked about.
    write(path, 7 * MIB, b"live")
    assert changed(vm, None, second_id, capacity) == [(7 * MIB, BLOCK)]
    wait_for_task(second.RemoveSnapshot_Task(removeChildren=False))


def test_paging_on_a_disk_larger_than_a_page(own_vcsim, own_si, place):
    capacity = 5 * GIB
    vm = create_vm(place, "cbt-paging", capacity)
    set_cbt(vm, True)
    path = flat_file(own_vcsim, vm)
    write(path, 4096, b"start")
    spaced = [16 * MIB + i * 2 * BLOCK for i in range(600)]  # 600 separate areas: more than one answer holds
    for offset in spaced:
        write(path, offset, b"s")
    write(path, 2 * GIB - 10, b"across-2GiB")
    write(path, capacity - 100, b"end")
    snapshot = take_snapshot(vm, "paging")

    pages = query_pages(vm, snapshot, "*", capacity)
    assert all(info.length <= PAGE_BYTES and len(info.changedArea) <= PAGE_AREAS for info in pages)
    # The area cap ends the first answer right after its 512th area.
    first = pages[0]
    assert len(first.changedArea) == PAGE_AREAS
    last = first.changedArea[-1]
    assert first.length == last.start + last.length
    assert len(pages) == 4  # 512 areas, then 2 GiB, 2 GiB and the rest
    assert areas(pages) == ([(0, BLOCK)] + [(offset, BLOCK) for offset in spaced]
                            + [(2 * GIB - BLOCK, 2 * BLOCK), (capacity - BLOCK, BLOCK)])

    # An incremental answer pages the same way.
    write(path, capacity - 100, b"END")
    write(path, 8192, b"again")
    later = take_snapshot(vm, "paging-2")
    assert changed(vm, later, change_id(snapshot), capacity) == [(0, BLOCK), (capacity - BLOCK, BLOCK)]


def test_errors_like_vsphere(own_vcsim, own_si, place):
    capacity = 16 * MIB
    vm = create_vm(place, "cbt-errors", capacity)
    other = create_vm(place, "cbt-errors-other", capacity)
    set_cbt(vm, True)
    set_cbt(other, True)
    write(flat_file(own_vcsim, vm), 0, b"data")
    snapshot = take_snapshot(vm, "errors")
    other_snapshot = take_snapshot(other, "other")
    good = change_id(snapshot)

    def query(**overrides):
        arguments = dict(snapshot=snapshot, deviceKey=DISK_KEY, startOffset=0, changeId=good)
        arguments.update(overrides)
        return vm.QueryChangedDiskAreas(**arguments)

    assert query().changedArea == []
    with pytest.raises(vmodl.fault.InvalidArgument, match="no virtual disk with key 2999"):
        query(deviceKey=2999)
    with pytest.raises(vmodl.fault.InvalidArgument):
        query(deviceKey=CONTROLLER_KEY)  # a device, but not a disk
    # NotFound "if the snapshot specified does not exist" (API reference): unknown, or another VM's.
    with pytest.raises(vim.fault.NotFound, match="does not exist"):
        query(snapshot=vim.vm.Snapshot("snapshot-99999", own_si._stub))
    with pytest.raises(vim.fault.NotFound, match="belongs to"):
        query(snapshot=other_snapshot)
    with pytest.raises(vmodl.fault.InvalidArgument, match="changeId"):
        query(changeId="not-a-change-id")
    with pytest.raises(vmodl.fault.InvalidArgument, match="startOffset"):
        query(startOffset=capacity)
    with pytest.raises(vim.fault.FileFault, match="unknown"):
        query(changeId=good.rsplit("/", 1)[0] + "/999")
    with pytest.raises(vim.fault.FileFault, match="unknown"):
        query(changeId=change_id(other_snapshot))  # another disk's changeId

    # Turning CBT off resets it: the changeId goes, old changeIds stop working.
    set_cbt(vm, False)
    assert change_id(vm) is None
    with pytest.raises(vim.fault.FileFault, match="not enabled"):
        query(changeId="*")
    set_cbt(vm, True)
    with pytest.raises(vim.fault.FileFault, match="reset"):
        query(changeId="*")
    fresh = take_snapshot(vm, "after-reset")
    fresh_id = change_id(fresh)
    assert fresh_id.split("/")[0] != good.split("/")[0]  # a new CBT identity
    with pytest.raises(vim.fault.FileFault, match="unknown"):
        query(snapshot=fresh, changeId=good)
    assert query(snapshot=fresh, changeId="*").changedArea[0].start == 0


def test_without_cbt_there_is_no_change_id(own_vcsim, own_si, place):
    capacity = 16 * MIB
    vm = create_vm(place, "cbt-off", capacity)
    assert not vm.config.changeTrackingEnabled
    write(flat_file(own_vcsim, vm), 0, b"data")
    snapshot = take_snapshot(vm, "no-cbt")
    assert change_id(snapshot) is None and change_id(vm) is None
    with pytest.raises(vim.fault.FileFault, match="not enabled"):
        vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=DISK_KEY, startOffset=0, changeId="*")

    # Enabling CBT later: the old snapshot still has no changeId to ask about.
    set_cbt(vm, True)
    with pytest.raises(vim.fault.FileFault, match="without change tracking"):
        vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=DISK_KEY, startOffset=0, changeId="*")


# --- what our export makes of the launcher's faults ------------------------------------------

CHUNK = 1024 * KIB


class Based:
    """The newest committed backup, as the export sees it: it recorded ``change`` for the disk."""

    backup_id = "base-backup"
    disk_keys = (str(DISK_KEY),)

    def __init__(self, change):
        self.change = change

    def change_id(self, key):
        assert key == str(DISK_KEY)
        return self.change


class AllocatedBlocks:
    """The first VDDK handle: QueryAllocatedBlocks, asked only when CBT has no answer at all."""

    def __init__(self, extents):
        self.extents = extents
        self.asked = 0

    def allocated_extents(self):
        self.asked += 1
        return self.extents


def plan(vm, snapshot, change, base_change, capacity, first_handle=None):
    """DiskExportJob._plan (the step that picks incremental, "*" or VDDK) against the launcher; plan, base, warnings."""
    warnings = []
    job = SimpleNamespace(vm=vm, repository=SimpleNamespace(chunk_size=CHUNK), warn=warnings.append)
    disk = SimpleNamespace(key=DISK_KEY, change_id=change, capacity=capacity)
    previous = Based(base_change) if base_change else None
    result, base = DiskExportJob._plan(job, disk, snapshot, previous, first_handle)  # pylint: disable=protected-access
    return result, base, warnings


def test_a_snapshot_that_does_not_exist_is_not_found_and_the_disk_read_in_full(own_vcsim, own_si, place):
    capacity = 16 * MIB
    vm = create_vm(place, "cbt-not-found", capacity)
    set_cbt(vm, True)
    write(flat_file(own_vcsim, vm), 0, b"data")
    first = take_snapshot(vm, "backup-1")
    first_id = change_id(first)
    gone = take_snapshot(vm, "removed-by-someone-else")
    gone_id = change_id(gone)
    wait_for_task(gone.RemoveSnapshot_Task(removeChildren=False))

    # vCenter's answer ("if the snapshot specified does not exist"), and ours: a CBT refusal.
    with pytest.raises(vim.fault.NotFound):
        vm.QueryChangedDiskAreas(snapshot=gone, deviceKey=DISK_KEY, startOffset=0, changeId=first_id)
    with pytest.raises(ChangeTrackingError, match="NotFound"):
        changed_areas(vm, gone, DISK_KEY, capacity, first_id)

    # The export warns twice and asks VDDK for the allocated blocks instead of failing the disk.
    vddk = AllocatedBlocks([(0, 4)])
    result, base, warnings = plan(vm, gone, gone_id, first_id, capacity, vddk)
    assert base is None and result.incremental is False and result.chunk_numbers == [0] and vddk.asked == 1
    assert [w.split(": NotFound: ")[1] for w in warnings] == [
        "snapshot %s of %s does not exist (removed?); disk %d is read in full" % (gone._moId, vm._moId, DISK_KEY),
        "snapshot %s of %s does not exist (removed?); using VDDK's allocated blocks" % (gone._moId, vm._moId)]
    wait_for_task(first.RemoveSnapshot_Task(removeChildren=False))


def test_a_change_id_newer_than_the_snapshot_is_refused_and_the_disk_read_in_full(own_vcsim, own_si, place):
    capacity = 16 * MIB
    vm = create_vm(place, "cbt-newer-change-id", capacity)
    set_cbt(vm, True)
    write(flat_file(own_vcsim, vm), 3 * MIB, b"data")
    older = take_snapshot(vm, "older")
    newer = take_snapshot(vm, "newer")  # nothing written in between: both still hold the disk as it is
    older_id, newer_id = change_id(older), change_id(newer)
    assert changed(vm, newer, older_id, capacity) == []

    # A changeId names the point where the interval ends at the snapshot begins: not after it.
    with pytest.raises(vmodl.fault.InvalidArgument, match="handed out after snapshot") as raised:
        vm.QueryChangedDiskAreas(snapshot=older, deviceKey=DISK_KEY, startOffset=0, changeId=newer_id)
    assert raised.value.invalidProperty == "changeId"

    # Exporting the older snapshot when the last backup recorded the newer changeId: a full read, warned.
    result, base, warnings = plan(vm, older, older_id, newer_id, capacity)
    assert base is None and result.incremental is False and result.chunk_numbers == [3]  # CBT "*" answered
    assert len(warnings) == 1 and warnings[0].startswith(
        "CBT cannot tell what changed on disk %d since %s: InvalidArgument: " % (DISK_KEY, newer_id))
    assert warnings[0].endswith("; disk %d is read in full" % DISK_KEY)
    # The other way round is the ordinary incremental.
    result, base, warnings = plan(vm, newer, newer_id, older_id, capacity)
    assert (base, result.incremental, result.chunk_numbers, warnings) == ("base-backup", True, [], [])
    for snapshot in (older, newer):
        wait_for_task(snapshot.RemoveSnapshot_Task(removeChildren=False))


def test_a_write_after_the_snapshot_fails_the_export_instead_of_reading_live_data(own_vcsim, own_si, place):
    """vcsim's snapshots share the VM's flat file (no delta disk): the double would read the disk as it is now."""
    capacity = 16 * MIB
    vm = create_vm(place, "cbt-not-point-in-time", capacity)
    set_cbt(vm, True)
    path = flat_file(own_vcsim, vm)
    write(path, 0, b"before")
    first = take_snapshot(vm, "backup-1")
    first_id = change_id(first)
    wait_for_task(first.RemoveSnapshot_Task(removeChildren=False))
    write(path, MIB, b"between")
    snapshot = take_snapshot(vm, "backup-2")
    snapshot_id = change_id(snapshot)
    assert changed(vm, snapshot, first_id, capacity) == [(MIB, BLOCK)]
    write(path, MIB, b"between")  # the same bytes again: still the snapshot's content
    assert changed(vm, snapshot, first_id, capacity) == [(MIB, BLOCK)]

    write(path, 5 * MIB, b"after the snapshot")
    for change in (first_id, "*"):
        with pytest.raises(vmodl.fault.SystemError, match="written after snapshot"):
            vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=DISK_KEY, startOffset=0, changeId=change)
    # Not a CBT refusal: the export fails rather than fall back to a full read of live data.
    with pytest.raises(vmodl.fault.SystemError):
        plan(vm, snapshot, snapshot_id, first_id, capacity)
    # Without a snapshot the query is about the disk as it is now, which the double does read.
    wait_for_task(snapshot.RemoveSnapshot_Task(removeChildren=False))
    assert changed(vm, None, snapshot_id, capacity) == [(5 * MIB, BLOCK)]
