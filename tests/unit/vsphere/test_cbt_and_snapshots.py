"""CBT paging and snapshot lookup against recorded vSphere answers (pyVmomi data objects)."""
from types import SimpleNamespace

import pytest
from pyVmomi import vim, vmodl

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import AmbiguousError, NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import snapshots
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.cbt import ALL_ALLOCATED, ChangeTrackingError, changed_areas
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import fault_message
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import DiskExportJob
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import ObjectProperties

GIB = 1024 ** 3
CHUNK = 1024 * 1024


class RecordedVm:
    """Answers QueryChangedDiskAreas from a list of pages, and records the calls."""

    def __init__(self, pages=None, fault=None):
        self.pages = list(pages or [])
        self.fault = fault
        self.calls = []

    def QueryChangedDiskAreas(self, snapshot, deviceKey, startOffset, changeId):  # noqa: N802 (vSphere's name)
        self.calls.append(startOffset)
        if self.fault:
            raise self.fault
        start, length, areas = self.pages.pop(0)
        assert start == startOffset
        return vim.VirtualMachine.DiskChangeInfo(
            startOffset=start, length=length,
            changedArea=[vim.VirtualMachine.DiskChangeInfo.DiskChangeExtent(start=a, length=b) for a, b in areas])


def test_pages_are_followed_to_the_capacity():
    vm = RecordedVm([(0, 2 * GIB, [(0, 65536), (GIB, 131072)]), (2 * GIB, 2 * GIB, []),
                     (4 * GIB, GIB, [(5 * GIB - 65536, 65536)])])
    areas = changed_areas(vm, None, 2000, 5 * GIB, "52 aa/3")
    assert areas == [(0, 65536), (GIB, 131072), (5 * GIB - 65536, 65536)]
    assert vm.calls == [0, 2 * GIB, 4 * GIB]


def test_a_page_that_stops_short_is_continued_from_its_end():
    vm = RecordedVm([(0, 1000 * 65536, [(0, 65536)]), (1000 * 65536, GIB - 1000 * 65536, [])])
    assert changed_areas(vm, None, 2000, GIB, "*") == [(0, 65536)]
    assert vm.calls == [0, 1000 * 65536]


# The faults the vSphere API reference lists for QueryChangedDiskAreas, as vCenter words them.
NOT_FOUND = vim.fault.NotFound(msg="The object or item referred to could not be found.")
NEWER_CHANGE_ID = vmodl.fault.InvalidArgument(invalidProperty="changeId",
                                              msg="A specified parameter was not correct: changeId")


@pytest.mark.parametrize("fault", [
    vim.fault.FileFault(file="disk", msg="change tracking is not enabled"),
    vmodl.fault.InvalidArgument(invalidProperty="changeId", msg="changeId is unknown"),
    NEWER_CHANGE_ID,  # a changeId handed out after the snapshot asked about
    NOT_FOUND,  # "if the snapshot specified does not exist"
])
def test_cbt_refusals_become_one_error_that_says_back_up_in_full(fault):
    with pytest.raises(ChangeTrackingError) as raised:
        changed_areas(RecordedVm(fault=fault), None, 2000, GIB, "52 aa/3")
    assert str(raised.value).startswith("CBT cannot tell what changed on disk 2000 since 52 aa/3: ")


def test_a_missing_snapshot_is_named_in_the_error():
    with pytest.raises(ChangeTrackingError) as raised:
        changed_areas(RecordedVm(fault=NOT_FOUND), None, 2000, GIB, "52 aa/3")
    assert str(raised.value).endswith(": NotFound: The object or item referred to could not be found.")


def test_a_fault_that_is_no_cbt_refusal_is_not_taken_for_one():
    """The launcher's refusal of a snapshot written after it was taken must fail the export, not fall back."""
    fault = vmodl.fault.SystemError(reason="vcsim launcher: written after snapshot", msg="written after snapshot")
    with pytest.raises(vmodl.fault.SystemError):
        changed_areas(RecordedVm(fault=fault), None, 2000, GIB, "52 aa/3")


class RefusingIncrementalVm(RecordedVm):
    """Refuses a changeId with ``refusal``, answers "*" from the pages."""

    def __init__(self, pages, refusal):
        super().__init__(pages)
        self.refusal = refusal

    def QueryChangedDiskAreas(self, snapshot, deviceKey, startOffset, changeId):  # noqa: N802 (vSphere's name)
        if changeId != ALL_ALLOCATED:
            self.calls.append((changeId, startOffset))
            raise self.refusal
        return super().QueryChangedDiskAreas(snapshot, deviceKey, startOffset, changeId)


class Previous:
    backup_id = "base-backup"
    disk_keys = ("2000",)

    @staticmethod
    def change_id(key):
        return "52 aa/7"


@pytest.mark.parametrize("fault", [NOT_FOUND, NEWER_CHANGE_ID])
def test_export_reads_the_disk_in_full_with_a_warning_when_cbt_refuses(fault):
    warnings = []
    vm = RefusingIncrementalVm([(0, GIB, [(0, 65536), (3 * CHUNK, 10)])], refusal=fault)
    job = SimpleNamespace(vm=vm, repository=SimpleNamespace(chunk_size=CHUNK), warn=warnings.append)
    disk = SimpleNamespace(key=2000, change_id="52 aa/5", capacity=GIB)
    plan, base = DiskExportJob._plan(job, disk, "snapshot-9", Previous(), first_handle=None)  # pylint: disable=protected-access
    assert base is None and plan.incremental is False and plan.chunk_numbers == [0, 3]  # "*": allocated chunks only
    assert vm.calls == [("52 aa/7", 0), 0]  # the incremental question once, then "*"
    assert warnings == ["CBT cannot tell what changed on disk 2000 since 52 aa/7: %s; disk 2000 is read in full"
                        % fault_message(fault)]


def tree(name, moid, children=()):
    return vim.vm.SnapshotTree(name=name, snapshot=vim.vm.Snapshot(moid), childSnapshotList=list(children))


@pytest.fixture
def snapshot_info(monkeypatch):
    info = vim.vm.SnapshotInfo(rootSnapshotList=[
        tree("nightly", "snapshot-1", [tree("before-upgrade", "snapshot-2", [tree("nightly", "snapshot-3")])])])

    def retrieve_one(client, obj, paths):
        return ObjectProperties(obj, {"snapshot": info}, {})
    monkeypatch.setattr(snapshots, "retrieve_one", retrieve_one)


def test_snapshot_by_moid_or_unique_name(snapshot_info):
    vm = vim.VirtualMachine("vm-7")
    assert snapshots.find_snapshot(None, vm, "snapshot-3")._moId == "snapshot-3"
    assert snapshots.find_snapshot(None, vm, "before-upgrade")._moId == "snapshot-2"


def test_ambiguous_or_missing_snapshot_name(snapshot_info):
    vm = vim.VirtualMachine("vm-7")
    with pytest.raises(AmbiguousError) as raised:
        snapshots.find_snapshot(None, vm, "nightly")
    assert str(raised.value) == ("VM vm-7 has 2 snapshots named 'nightly': snapshot-1, snapshot-3; "
                                 "give the snapshot moid")
    with pytest.raises(NotFoundError):
        snapshots.find_snapshot(None, vm, "weekly")
