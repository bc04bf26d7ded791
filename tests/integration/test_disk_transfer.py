"""disk_export and disk_import through ansible-playbook: vcsim, the VDDK double, a real repository.

The encrypted VM's disks are vcsim's flat files; the test writes known data
into them, exports through the double (which the modules take for VDDK),
checks the repository holds exactly that data, then imports it into another
VM's disks and compares the files.
"""
import json
import os

import pytest
from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import VIX_ASYNC

from estate import wait_for_task
from playbook import run_playbook
from vddk_double_config import DOUBLE_LIB, DOUBLE_LIBDIR, Double
from vsphere_env import vmware_env

PASSWORD = "repo-Passw0rd-for-tests"
CHUNK = 256 * 1024
MIB = 1024 * 1024
SOURCE = "crypt-vm01"
TARGET = "plain-vm01"


def flat_file(vcsim, datastore_path):
    datastore, relative = datastore_path[1:].split("] ", 1)
    return os.path.join(vcsim.datastores[datastore], relative[:-len(".vmdk")] + "-flat.vmdk")


def content(path, capacity):
    with open(path, "rb") as handle:
        data = handle.read()
    return data + bytes(capacity - len(data))


def put(path, offset, data):
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


@pytest.fixture
def disks(vcsim, estate):
    """Known data in SOURCE's disks; every flat file of both VMs emptied afterwards."""
    files = {}
    for vm in (SOURCE, TARGET):
        for disk in estate["vms"][vm]["disks"]:
            files[(vm, disk["key"])] = (flat_file(vcsim, disk["file"]), disk["capacity_kb"] * 1024)
    source_2000, source_2001 = files[(SOURCE, 2000)][0], files[(SOURCE, 2001)][0]
    put(source_2000, MIB + 10, os.urandom(300 * 1024))
    put(source_2000, 9 * MIB, b"log line with some words\n" * 20000)
    put(source_2001, 0, os.urandom(64 * 1024))
    try:
        yield files
    finally:
        for path, _capacity in files.values():
            os.truncate(path, 0)


@pytest.fixture
def double(vcsim, estate, tmp_path):
    if not os.path.exists(DOUBLE_LIB):
        pytest.fail("%s is missing: run make vddk-double" % DOUBLE_LIB)
    return Double(vcsim, estate, tmp_path)


@pytest.fixture
def repository(tmp_path):
    path = str(tmp_path / "repo")
    Repository.create(path, Credential.from_password(PASSWORD), chunk_size=CHUNK)
    return path


def snapshot_trees(vm):
    try:
        info = vm.snapshot
    except AttributeError:  # pyVmomi raises for the unset snapshot property of a simulated VM
        return []
    return list(info.rootSnapshotList) if info else []


@pytest.fixture
def source_vm(vcsim_si, estate):
    vm = vim.VirtualMachine(estate["vms"][SOURCE]["moid"], vcsim_si._stub)
    yield vm
    for tree in snapshot_trees(vm):
        wait_for_task(tree.snapshot.RemoveSnapshot_Task(removeChildren=True))


def snapshot_of(vm, double):
    snapshot = wait_for_task(vm.CreateSnapshot_Task(name="test-backup", description="", memory=False, quiesce=False))
    double.snapshots = [snapshot._moId]
    double.write()
    return snapshot


def env_for(vcsim, double):
    env = vmware_env(vcsim)
    env.update(VMCRYPT_REPOSITORY_PASSWORD=PASSWORD, VMCRYPT_VDDK_LIBDIR=DOUBLE_LIBDIR,
               VMCRYPT_VDDK_DOUBLE_CONFIG=double.config_path)
    return env


def export(tmp_path, vcsim, double, repository, check=False, **args):
    args.setdefault("name", SOURCE)
    args.setdefault("transports", ["nbdssl"])
    args["repository"] = repository
    run = run_playbook(tmp_path, [{"name": "export", "vmcrypt.backup.disk_export": args, "ignore_errors": True}],
                       env=env_for(vcsim, double), check=check)
    return run, run["export"]


def open_repository(path):
    return Repository.open(path, Credential.from_password(PASSWORD))


def assert_nothing_left(vm, repository):
    assert snapshot_trees(vm) == [], "a snapshot was left behind"
    repo = open_repository(repository)
    assert repo.list_backups() == [] and repo.list_staged() == []


def test_export_then_import_is_byte_identical(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    snapshot = snapshot_of(source_vm, double)
    run, result = export(tmp_path, vcsim, double, repository, snapshot=snapshot._moId, transports=["san", "nbdssl"])
    assert result["_status"] == "ok", run.output
    assert result["committed"] is True and result["snapshot"] == {"moid": snapshot._moId, "created": False,
                                                                  "removed": False}
    assert result["transports"] == ["nbdssl"]
    assert result["refused_transports"] == [
        {"transport": "san", "reason": "san is not supported for encrypted disks; use nbdssl or hotadd"}]
    reports = dict((disk["key"], disk) for disk in result["disks"])
    assert reports[2000]["encrypted"] is True and reports[2001]["encrypted"] is False
    assert reports[2000]["transport"] == "nbdssl"
    # Only the chunks holding data are read: 2 for the 300 KiB at 1 MiB+10, 2 for the text at 9 MiB.
    assert reports[2000]["bytes_read"] == 4 * CHUNK
    assert reports[2000]["bytes_skipped"] == 16 * MIB - 4 * CHUNK
    assert reports[2001]["bytes_read"] == CHUNK

    repo = open_repository(repository)
    for key in (2000, 2001):
        path, capacity = disks[(SOURCE, key)]
        restored = b"".join(data for _offset, data in repo.read_disk(result["backup_id"], str(key)))
        assert restored == content(path, capacity)

    connects = double.calls("ConnectEx")
    assert len(connects) == 2  # one connection per disk
    for connect in connects:
        assert connect["transportModes"] == "nbdssl" and connect["snapshotRef"] == snapshot._moId
        assert connect["vmxSpec"] == "moref=%s" % estate["vms"][SOURCE]["moid"]
        assert connect["cookieGiven"] == 1 and connect["readOnly"] == 1 and connect["credType"] == "sessionid"
    assert [call["startSector"] * 512 for call in double.calls("Read")] == [
        MIB, MIB + CHUNK, 9 * MIB, 9 * MIB + CHUNK, 0]
    assert PASSWORD not in run.output and vcsim.password not in run.output

    run = run_playbook(tmp_path, [{"name": "import", "vmcrypt.backup.disk_import": {
        "name": TARGET, "repository": repository, "backup_id": result["backup_id"], "transports": ["nbdssl"]}}],
        env=env_for(vcsim, double))
    imported = run["import"]
    assert imported["_status"] == "ok", run.output
    assert sorted(disk["target"] for disk in imported["disks"]) == [2000, 2001]
    for key in (2000, 2001):
        source_path, capacity = disks[(SOURCE, key)]
        target_path, _target_capacity = disks[(TARGET, key)]
        assert content(target_path, capacity) == content(source_path, capacity)
    written = dict((disk["key"], disk["bytes_written"]) for disk in imported["disks"])
    assert written == {2000: 4 * CHUNK, 2001: CHUNK}  # holes were not written


def test_temporary_snapshot_is_created_and_removed(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    double.snapshots = ["*"]
    double.write()
    run, result = export(tmp_path, vcsim, double, repository)
    assert result["_status"] == "ok", run.output
    assert result["snapshot"]["created"] is True and result["snapshot"]["removed"] is True
    assert snapshot_trees(source_vm) == []
    assert set(call["snapshotRef"] for call in double.calls("ConnectEx")) == {result["snapshot"]["moid"]}


def test_refused_transport_creates_nothing(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    run, result = export(tmp_path, vcsim, double, repository, transports=["san", "nbd"])
    assert result["_status"] == "failed"
    assert result["msg"] == ("no requested transport is allowed: san refused: san is not supported for "
                             "encrypted disks; use nbdssl or hotadd; nbd refused: nbd would send the decrypted "
                             "disk data over the network in clear; use nbdssl")
    assert double.calls() == []
    assert_nothing_left(source_vm, repository)


def test_hotadd_needs_an_encrypted_proxy(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    run, result = export(tmp_path, vcsim, double, repository, transports=["hotadd"],
                         proxy_vm=estate["proxies"]["plain"])
    assert result["_status"] == "failed"
    assert "hotadd of encrypted disks needs an encrypted proxy VM" in result["msg"]
    assert_nothing_left(source_vm, repository)


def test_dropped_connection_resumes(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    double.snapshots = ["*"]
    double.write(fault__drop_after_reads=2)
    progress_file = str(tmp_path / "progress.json")
    run, result = export(tmp_path, vcsim, double, repository, disks=["2000"], progress_file=progress_file)
    assert result["_status"] == "ok", run.output
    [report] = result["disks"]
    assert report["retries"] >= 1
    assert len(double.calls("ConnectEx")) == report["retries"] + 1
    with open(progress_file) as handle:
        [progress] = json.load(handle)["disks"]
    assert progress["disk"] == "2000" and progress["state"] == "done"
    assert progress["bytes_done"] == progress["bytes_total"] == report["bytes_read"]
    repo = open_repository(repository)
    path, capacity = disks[(SOURCE, 2000)]
    assert b"".join(data for _offset, data in repo.read_disk(result["backup_id"], "2000")) == content(path, capacity)


def test_read_error_fails_with_disk_and_offset_and_leaves_nothing(tmp_path, vcsim, estate, disks, double, repository,
                                                                  source_vm):
    double.snapshots = ["*"]
    double.write(fault__read_error_offset=9 * MIB + 5)
    run, result = export(tmp_path, vcsim, double, repository)
    assert result["_status"] == "failed"
    assert result["msg"].startswith("disk 2000: reading at offset %d failed: " % (9 * MIB))
    assert "\n" not in result["msg"]
    assert_nothing_left(source_vm, repository)


def test_missing_vddk_is_one_clear_line(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    run, result = export(tmp_path, vcsim, double, repository, vddk_libdir=str(tmp_path / "no-vddk-here"))
    assert result["_status"] == "failed"
    assert "VDDK" in result["msg"] and "\n" not in result["msg"]
    assert_nothing_left(source_vm, repository)


def test_wrong_repository_password_touches_nothing(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    args = {"name": SOURCE, "repository": repository, "transports": ["nbdssl"], "repository_password": "wrong"}
    run = run_playbook(tmp_path, [{"name": "export", "vmcrypt.backup.disk_export": args, "ignore_errors": True}],
                       env=env_for(vcsim, double))
    assert run["export"]["_status"] == "failed"
    assert "wrong" not in run["export"]["msg"]
    assert double.calls() == []
    assert_nothing_left(source_vm, repository)


def test_check_mode_reads_and_creates_nothing(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    run, result = export(tmp_path, vcsim, double, repository, check=True)
    assert result["_status"] == "ok", run.output
    assert result["changed"] is True and result["committed"] is False
    assert [disk["key"] for disk in result["disks"]] == [2000, 2001]
    assert double.calls() == []
    assert_nothing_left(source_vm, repository)


@pytest.fixture
def change_tracking(source_vm):
    wait_for_task(source_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=True)))
    yield
    wait_for_task(source_vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=False)))


def test_incremental_reads_only_what_changed(tmp_path, vcsim, estate, disks, double, repository, source_vm,
                                             change_tracking):
    double.snapshots = ["*"]
    double.write()
    run, first = export(tmp_path, vcsim, double, repository)
    assert first["_status"] == "ok", run.output
    full = dict((disk["key"], disk) for disk in first["disks"])
    assert full[2000]["incremental"] is False
    assert full[2000]["bytes_read"] == 4 * CHUNK  # CBT "*": allocated areas only
    repo = open_repository(repository)
    assert repo.read_manifest(first["backup_id"]).change_id("2000")

    path, capacity = disks[(SOURCE, 2000)]
    put(path, MIB + 100, b"changed!" * 512)  # 4 KiB inside the first chunk that holds data
    run, second = export(tmp_path, vcsim, double, repository)
    assert second["_status"] == "ok", run.output
    reports = dict((disk["key"], disk) for disk in second["disks"])
    assert reports[2000]["incremental"] is True
    assert reports[2000]["base_backup_id"] == first["backup_id"]
    # only the changed area as CBT reports it (the launcher's 64 KiB blocks), not its whole 256 KiB chunk;
    # the rest of the chunk comes from the base backup
    assert reports[2000]["bytes_read"] == 64 * 1024
    assert reports[2001]["incremental"] is True and reports[2001]["bytes_read"] == 0
    assert reports[2001]["transport"] == "nbdssl"
    # every connection opened was closed, also the one a disk with nothing to read never used
    assert len(double.calls("ConnectEx")) == len(double.calls("Disconnect")) == len(double.calls("EndAccess"))
    repo = open_repository(repository)
    assert b"".join(data for _offset, data in repo.read_disk(second["backup_id"], "2000")) == content(path, capacity)
    assert b"".join(data for _offset, data in repo.read_disk(first["backup_id"], "2000")) != content(path, capacity)


def test_account_without_cryptographer_access_is_refused_before_a_snapshot(tmp_path, vcsim, estate, disks, double,
                                                                           repository, source_vm):
    nocrypto = estate["principals"]["nocrypto"]
    env = env_for(vcsim, double)
    env.update(VMWARE_USER=nocrypto["login"], VMWARE_PASSWORD=nocrypto["password"])
    run = run_playbook(tmp_path, [{"name": "export", "ignore_errors": True, "vmcrypt.backup.disk_export": {
        "name": SOURCE, "repository": repository, "transports": ["nbdssl"]}}], env=env)
    result = run["export"]
    assert result["_status"] == "failed"
    assert result["msg"] == ("no requested transport is allowed: nbdssl refused: missing Cryptographer.Access on "
                             "%s (%s)" % (SOURCE, estate["vms"][SOURCE]["moid"]))
    assert double.calls() == []
    assert_nothing_left(source_vm, repository)


def test_connection_lost_again_and_again_fails_after_the_retries(tmp_path, vcsim, estate, disks, double,
                                                                 repository, source_vm):
    double.snapshots = ["*"]
    double.write(fault__drop_after_reads=1)  # every connection dies after its first read
    run, result = export(tmp_path, vcsim, double, repository, disks=["2000"], max_retries=2)
    assert result["_status"] == "failed"
    # Connections 1-3 each read one chunk (1 MiB, 1 MiB + CHUNK, 9 MiB); the third loss is one too many.
    assert result["msg"].startswith("disk 2000: reading at offset %d failed after 2 retries: " % (9 * MIB + CHUNK))
    assert "\n" not in result["msg"]
    assert len(double.calls("ConnectEx")) == 3
    assert_nothing_left(source_vm, repository)


def test_import_refuses_a_bad_plan_before_writing(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    double.snapshots = ["*"]
    double.write()
    run, exported = export(tmp_path, vcsim, double, repository)
    assert exported["_status"] == "ok", run.output

    def import_with(**args):
        args.update(name=TARGET, repository=repository)
        args.setdefault("backup_id", exported["backup_id"])
        return run_playbook(tmp_path, [{"name": "import", "ignore_errors": True,
                                        "vmcrypt.backup.disk_import": args}], env=env_for(vcsim, double))["import"]

    unknown = import_with(backup_id="20991231T000000Z-deadbeef")
    assert unknown["_status"] == "failed" and "20991231T000000Z-deadbeef" in unknown["msg"]
    too_small = import_with(disk_map={"2000": "2001"})
    assert too_small["_status"] == "failed"
    assert too_small["msg"] == ("disk 2001 of VM %s has %d bytes, smaller than the %d bytes of backed-up disk 2000"
                                % (TARGET, 8 * MIB, 16 * MIB))
    missing = import_with(disk_map={"2000": "2999"})
    assert missing["_status"] == "failed" and missing["msg"] == "VM %s has no disk 2999; it has 2000, 2001" % TARGET
    assert [call["call"] for call in double.calls() if call["call"] in ("Write", "WriteAsync")] == []
    for key in (2000, 2001):
        assert os.path.getsize(disks[(TARGET, key)][0]) == 0  # nothing written


def exported(tmp_path, vcsim, double, repository):
    double.snapshots = ["*"]
    double.write()
    run, result = export(tmp_path, vcsim, double, repository)
    assert result["_status"] == "ok", run.output
    return result["backup_id"]


def import_into_target(tmp_path, vcsim, double, repository, backup_id, **args):
    args.update(name=TARGET, repository=repository, backup_id=backup_id)
    args.setdefault("transports", ["nbdssl"])
    run = run_playbook(tmp_path, [{"name": "import", "ignore_errors": True, "vmcrypt.backup.disk_import": args}],
                       env=env_for(vcsim, double))
    return run, run["import"]


def fill_with_other_data(disks, quarters=4):
    """Random bytes over the first quarters of each TARGET disk (all of it by default)."""
    for key in (2000, 2001):
        path, capacity = disks[(TARGET, key)]
        put(path, 0, os.urandom(capacity * quarters // 4))


def assert_targets_equal_sources(disks):
    for key in (2000, 2001):
        source_path, capacity = disks[(SOURCE, key)]
        target_path, _target_capacity = disks[(TARGET, key)]
        assert content(target_path, capacity) == content(source_path, capacity), "disk %d differs" % key


def test_import_into_disks_full_of_other_data_leaves_none_of_it(tmp_path, vcsim, estate, disks, double, repository,
                                                                source_vm):
    backup_id = exported(tmp_path, vcsim, double, repository)
    fill_with_other_data(disks)
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id)
    assert result["_status"] == "ok", run.output
    assert_targets_equal_sources(disks)  # every byte, the holes of the backup included
    reports = dict((disk["key"], disk) for disk in result["disks"])
    assert reports[2000]["bytes_written"] == 4 * CHUNK and reports[2000]["bytes_zeroed"] == 16 * MIB - 4 * CHUNK
    assert reports[2001]["bytes_written"] == CHUNK and reports[2001]["bytes_zeroed"] == 8 * MIB - CHUNK
    # every block allocated is VDDK's answer on storage that cannot tell, too: every hole gets zeros
    assert all(disk["target_check"] == "unavailable" and disk["bytes_skipped"] == 0 for disk in result["disks"])


def test_import_writes_again_what_was_queued_on_a_lost_connection(tmp_path, vcsim, estate, disks, double, repository,
                                                                  source_vm):
    backup_id = exported(tmp_path, vcsim, double, repository)
    fill_with_other_data(disks)
    # every connection is lost after its 40th write (disk 2000 has 64, 2001 has 32), with up to four more queued:
    # those never reach the disk, and only writing them again on the next connection leaves the target as the source
    double.write(fault__drop_after_writes=40, fault__write_delay_ms=5)
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id)
    assert result["_status"] == "ok", run.output
    assert_targets_equal_sources(disks)
    reports = dict((disk["key"], disk) for disk in result["disks"])
    assert reports[2000]["retries"] >= 1
    # the write that met the lost connection was queued on the first connection and again on the second
    sectors = [call["startSector"] for call in double.calls("WriteAsync")
               if call["result"] == VIX_ASYNC and call["path"].endswith("plain-vm01.vmdk")]
    assert len(sectors) > len(set(sectors))


def test_import_zeroes_only_the_holes_over_old_data(tmp_path, vcsim, estate, disks, double, repository, source_vm):
    backup_id = exported(tmp_path, vcsim, double, repository)
    fill_with_other_data(disks, quarters=3)  # the last quarter of each target disk is a hole
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id)
    assert result["_status"] == "ok", run.output
    assert_targets_equal_sources(disks)
    reports = dict((disk["key"], disk) for disk in result["disks"])
    assert reports[2000]["bytes_zeroed"] == 12 * MIB - 4 * CHUNK and reports[2000]["bytes_skipped"] == 4 * MIB
    assert reports[2001]["bytes_zeroed"] == 6 * MIB - CHUNK and reports[2001]["bytes_skipped"] == 2 * MIB
    assert all(disk["target_check"] == "allocated_blocks" for disk in result["disks"])
    assert os.path.getsize(disks[(TARGET, 2000)][0]) == 12 * MIB  # the hole was not written
    # the import's read-write connections write the live disks, no restore snapshot; each asks for the
    # target's allocated blocks before its first write
    entries = double.calls()
    first = [number for number, call in enumerate(entries) if call["call"] == "ConnectEx" and call["readOnly"] == 0]
    assert len(first) == 2 and all(entries[number]["snapshotRef"] is None for number in first)
    calls = [call["call"] for call in entries[first[0]:] if call["call"] in ("QueryAllocatedBlocks", "WriteAsync")]
    assert calls[0] == "QueryAllocatedBlocks" and calls.count("WriteAsync") > 0


def test_import_where_vddk_cannot_list_blocks_zeroes_every_hole_with_a_warning(tmp_path, vcsim, estate, disks,
                                                                               double, repository, source_vm):
    backup_id = exported(tmp_path, vcsim, double, repository)
    fill_with_other_data(disks)
    double.write(fault__query_blocks="unsupported")
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id)
    assert result["_status"] == "ok", run.output
    assert_targets_equal_sources(disks)
    assert all(disk["target_check"] == "unavailable" for disk in result["disks"])
    warnings = " ".join(result.get("warnings", []))
    assert "disk 2000: the target cannot tell which of its blocks hold data" in warnings


def test_import_with_target_blank_asks_nothing_and_writes_no_zeros(tmp_path, vcsim, estate, disks, double,
                                                                   repository, source_vm):
    backup_id = exported(tmp_path, vcsim, double, repository)
    queries_before = len(double.calls("QueryAllocatedBlocks"))
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id, target_blank=True)
    assert result["_status"] == "ok", run.output
    assert_targets_equal_sources(disks)
    assert len(double.calls("QueryAllocatedBlocks")) == queries_before
    assert all(disk["target_check"] == "skipped" and disk["bytes_zeroed"] == 0 for disk in result["disks"])
    assert dict((disk["key"], disk["bytes_written"]) for disk in result["disks"]) == {2000: 4 * CHUNK, 2001: CHUNK}


def test_a_disk_in_use_cannot_be_written_and_is_left_as_it_was(tmp_path, vcsim, estate, disks, double, repository,
                                                               source_vm):
    """vCenter said powered off, but the VM runs by the time VDDK opens its disk: the double refuses write access."""
    backup_id = exported(tmp_path, vcsim, double, repository)
    fill_with_other_data(disks)
    before = content(*disks[(TARGET, 2000)])
    double.write(powered_on=estate["vms"][TARGET]["moid"])
    run, result = import_into_target(tmp_path, vcsim, double, repository, backup_id)
    assert result["_status"] == "failed"
    assert "The file is already in use" in result["msg"] and "\n" not in result["msg"]
    assert double.calls("Write") == [] and double.calls("WriteAsync") == []
    assert content(*disks[(TARGET, 2000)]) == before
