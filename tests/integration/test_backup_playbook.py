"""playbooks/backup.yml end to end: the simulator, the VDDK double, a real repository, real ansible-playbook.

Three VMs - encrypted (home and one disk, bundle, encryption policy), plain,
and UEFI with Secure Boot and a vTPM - are backed up in one run; the
repository is read back and compared with what the estate built and with the
bytes in the VMs' flat files and NVRAM files. Failures leave no snapshot and
no visible backup; a snapshot that cannot be removed after every disk is
stored leaves a committed backup and a warning naming it. The run's report
(JSON, Markdown, HTML) gives each disk's figures as the export measured them.
"""
import glob
import hashlib
import json
import os
import re
import stat
import subprocess
import threading

import pytest
from pyVmomi import vim

from estate import wait_for_task
from estate_nvram import write_nvram
from playbook import REPO_ROOT, ansible_environment, ansible_playbook_command
from report_checks import RECORDED_RUN, html_disk_figures, markdown_disk_rows, shape
from test_disk_transfer import (  # noqa: F401 pylint: disable=unused-import
    PASSWORD,
    content,
    double,
    flat_file,
    open_repository,
    put,
    repository,
    snapshot_trees,
)
from vsphere_env import vmware_env

from vddk_double_config import DOUBLE_LIBDIR

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import (
    format_bytes, format_count, format_rate, format_seconds)

VMS = ("crypt-vm01", "plain-vm01", "uefi-vm01")
MIB = 1024 * 1024


def nvram_of(name):
    return hashlib.sha256(b"nvram " + name.encode()).digest() * 200


@pytest.fixture
def vm_data(vcsim, estate):
    """Known bytes in every disk and NVRAM of VMS; emptied again afterwards."""
    written = {}
    files = []
    for index, name in enumerate(VMS):
        facts = estate["vms"][name]
        for disk in facts["disks"]:
            path = flat_file(vcsim, disk["file"])
            put(path, MIB * (1 + index), os.urandom(200 * 1024))
            put(path, disk["capacity_kb"] * 1024 - 4096, name.encode() * 100)
            written[(name, disk["key"])] = (path, disk["capacity_kb"] * 1024)
            files.append(path)
        files.append(write_nvram(vcsim, facts, nvram_of(name)))
    try:
        yield written
    finally:
        for path in files:
            os.truncate(path, 0)


def run_vmcrypt_playbook(kind, tmp_path, vcsim, double, variables, env=None, check=False):  # noqa: F811
    """ansible-playbook of playbooks/<kind>.yml (backup or restore) against the simulator and the VDDK double,
    its report written under ``tmp_path``; returns (completed process, the run's JSON report or None)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    report_dir = tmp_path / "reports"
    report_dir.mkdir(exist_ok=True)
    variables = dict({"%s_report_dir" % kind: str(report_dir), "%s_progress_interval" % kind: 1}, **variables)
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps(variables))
    run_env = ansible_environment(vmware_env(vcsim))
    run_env.update(VMCRYPT_REPOSITORY_PASSWORD=PASSWORD, VMCRYPT_VDDK_LIBDIR=DOUBLE_LIBDIR,
                   VMCRYPT_VDDK_DOUBLE_CONFIG=double.config_path)
    run_env.update(env or {})
    command = ansible_playbook_command(os.path.join(REPO_ROOT, "playbooks", kind + ".yml"), "-e", "@" + str(vars_file))
    completed = subprocess.run(command + (["--check"] if check else []), cwd=str(tmp_path), env=run_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=900, check=False)
    reports = sorted(glob.glob(str(report_dir / ("%s-report-*.json" % kind))))
    report = None
    if reports:
        with open(reports[-1]) as handle:
            report = json.load(handle)
    return completed, report


def run_backup(tmp_path, vcsim, double, repository, extra_vars, env=None):  # noqa: F811
    return run_vmcrypt_playbook("backup", tmp_path, vcsim, double, dict({"repository": repository}, **extra_vars),
                                env=env)


def entries(report):
    return dict((entry["vm"], entry) for entry in report["vms"])


# The disk figures of the report, and how its Markdown writes each.
DISK_FIGURES = (("capacity_bytes", format_bytes), ("bytes_read", format_bytes), ("bytes_stored", format_bytes),
                ("bytes_skipped", format_bytes), ("bytes_deduplicated", format_bytes), ("new_chunks", format_count),
                ("deduplicated_chunks", format_count), ("duration_seconds", format_seconds),
                ("throughput_mib_s", format_rate))


def check_report_files(report_dir, report, estate):
    """The run's .json, .md and .html: mode 0600, each disk's figures the same in all three and true to the disk."""
    base = os.path.join(str(report_dir), "backup-report-%s" % report["run_id"])
    for extension in ("json", "md", "html"):
        assert stat.S_IMODE(os.stat("%s.%s" % (base, extension)).st_mode) == 0o600
    with open(base + ".md") as handle:
        markdown = handle.read()
    with open(base + ".html") as handle:
        page = handle.read()
    md_rows, html_figures = markdown_disk_rows(markdown), html_disk_figures(page)
    for entry in report["vms"]:
        assert entry["disks"], entry["vm"]
        for disk in entry["disks"]:
            capacity = next(item["capacity_kb"] * 1024 for item in estate["vms"][entry["vm"]]["disks"]
                            if str(item["key"]) == disk["key"])
            assert disk["capacity_bytes"] == capacity
            assert disk["bytes_read"] > 0 and disk["bytes_read"] + disk["bytes_skipped"] == capacity
            assert disk["transport"] == "nbdssl" and disk["duration_seconds"] > 0
            cells, figures = md_rows[(entry["vm"], disk["key"])], html_figures[(entry["vm"], disk["key"])]
            for field, written in DISK_FIGURES:
                assert written(disk[field]) in cells, (entry["vm"], disk["key"], field, cells)
                assert figures[field] == (None if disk[field] is None else str(disk[field])), (field, figures)
    assert page.count("<svg ") == 2 and "<script" not in page and not re.search(r"(src|href)=", page)
    assert report["kind"] == "backup"
    return markdown


def no_snapshots_left(vcsim_si, estate):
    return all(snapshot_trees(vim.VirtualMachine(estate["vms"][name]["moid"], vcsim_si._stub)) == []
               for name in VMS)


def test_backup_playbook_saves_everything_that_makes_each_vm_restorable(tmp_path, vcsim, vcsim_si, estate,
                                                                        vm_data, double, repository):  # noqa: F811
    double.snapshots = ["*"]
    double.write(fault__read_delay_ms=300)  # slow enough for progress lines while the exports run
    completed, report = run_backup(tmp_path, vcsim, double, repository,
                                   {"vm_names": list(VMS), "backup_verify": True, "backup_concurrency": 2})
    assert completed.returncode == 0, completed.stdout
    by_vm = entries(report)
    assert sorted(by_vm) == sorted(VMS)
    repo = open_repository(repository)
    for name in VMS:
        facts, entry = estate["vms"][name], by_vm[name]
        assert entry["status"] == "ok" and entry["failure"] is None and entry["verified"] is True
        assert entry["transports"] == ["nbdssl"]
        manifest = repo.read_manifest(entry["backup_id"])
        assert manifest.metadata["key_id"] == facts["key_id"]
        assert manifest.secrets.get("encryption.bundle") == facts["bundle"]
        assert (manifest.metadata["storage_policies"]["vm_home"] or {}).get("id") == facts["vm_policy_id"]
        for disk in facts["disks"]:
            assert (manifest.metadata["storage_policies"]["disks"][str(disk["key"])] or {}).get("id") == \
                disk["policy_id"]
            assert manifest.disk(disk["key"])["properties"]["key_id"] == disk["key_id"]
            path, capacity = vm_data[(name, disk["key"])]
            restored = b"".join(data for _offset, data in repo.read_disk(entry["backup_id"], str(disk["key"])))
            assert restored == content(path, capacity)
        assert b"".join(repo.read_nvram(entry["backup_id"])) == nvram_of(name)
        assert manifest.vm["name"] == name
        if facts["bundle"]:
            assert facts["bundle"] not in completed.stdout
    assert any("has a vTPM" in warning for warning in by_vm["uefi-vm01"]["warnings"])
    # The guide's order per VM, from the double's call log: PrepareForAccess once, before every connection,
    # EndAccess once, after the last disconnect (disk_export does not bracket its own connections).
    for name in VMS:
        spec = "moref=%s" % estate["vms"][name]["moid"]
        calls = [entry["call"] for entry in double.calls() if entry.get("vmxSpec") == spec]
        assert calls.count("PrepareForAccess") == 1 and calls.count("EndAccess") == 1, calls
        assert calls[0] == "PrepareForAccess" and calls[-1] == "EndAccess" and "ConnectEx" in calls, calls
    assert no_snapshots_left(vcsim_si, estate)
    # The console shows the report and the progress of the exports; the report's files agree with the JSON.
    assert "3 of 3 VMs backed up, 0 failed" in completed.stdout
    markdown = check_report_files(tmp_path / "reports", report, estate)
    disk_rows = [line for line in markdown.splitlines() if line.startswith("| 2000 ")]
    assert len(disk_rows) == 3 and all(line in completed.stdout for line in disk_rows)
    with open(RECORDED_RUN) as handle:
        assert shape(report) == shape(json.load(handle)), "the record changed shape: copy this run's over %s" % (
            RECORDED_RUN)
    assert "crypt-vm01 disk 2000: " in completed.stdout and " MiB/s, " in completed.stdout
    assert repo.list_staged() == []


def test_a_failed_export_leaves_no_snapshot_and_no_backup_and_the_others_go_on(tmp_path, vcsim, vcsim_si, estate,
                                                                               vm_data, double,
                                                                               repository):  # noqa: F811
    # The double fails reads at 1 MiB, where only crypt-vm01 has data; plain-vm01 must still be backed up.
    double.snapshots = ["*"]
    double.write(fault__read_error_offset=MIB + 5)
    completed, report = run_backup(tmp_path, vcsim, double, repository, {"vm_names": ["crypt-vm01", "plain-vm01"]})
    assert completed.returncode != 0
    by_vm = entries(report)
    assert by_vm["plain-vm01"]["status"] == "ok"
    assert by_vm["crypt-vm01"]["status"] == "failed"
    assert "disk 2000: reading at offset 1048576 failed" in by_vm["crypt-vm01"]["failure"]
    assert "crypt-vm01" in completed.stdout.split("PLAY RECAP")[1]
    recap = dict(line.split(":")[0].strip().split()[0:1] + [line] for line in
                 completed.stdout.split("PLAY RECAP")[1].splitlines() if ":" in line)
    assert "failed=1" in recap["crypt-vm01"] and "failed=0" in recap["plain-vm01"]
    repo = open_repository(repository)
    assert [item.vm["name"] for item in repo.list_backups()] == ["plain-vm01"]
    assert repo.list_staged() == []
    assert no_snapshots_left(vcsim_si, estate)


def set_extra_config(vm, key, value):
    option = vim.option.OptionValue(key=key, value=value)
    wait_for_task(vm.ReconfigVM_Task(spec=vim.vm.ConfigSpec(extraConfig=[option])))


def test_a_snapshot_that_will_not_go_away_leaves_a_committed_backup_and_a_warning_naming_it(
        tmp_path, vcsim, vcsim_si, estate, vm_data, double, repository):  # noqa: F811
    vm = vim.VirtualMachine(estate["vms"]["plain-vm01"]["moid"], vcsim_si._stub)
    double.snapshots = ["*"]
    double.write()
    # The launcher fails RemoveSnapshot_Task with FileLocked for this VM, as vCenter does for locked disks.
    set_extra_config(vm, "vmcrypt.test.removeSnapshotFault", "FileLocked")
    try:
        completed, report = run_backup(tmp_path, vcsim, double, repository, {"vm_name": "plain-vm01"})
        leftover = [tree.snapshot._moId for tree in snapshot_trees(vm)]
    finally:
        set_extra_config(vm, "vmcrypt.test.removeSnapshotFault", "")
        for tree in snapshot_trees(vm):
            wait_for_task(tree.snapshot.RemoveSnapshot_Task(removeChildren=True))
    assert completed.returncode == 0, completed.stdout
    entry = entries(report)["plain-vm01"]
    assert entry["status"] == "ok" and len(leftover) == 1
    warning = [text for text in entry["warnings"] if "could not be removed" in text]
    assert len(warning) == 1 and leftover[0] in warning[0] and "FileLocked" in warning[0]
    manifest = open_repository(repository).read_manifest(entry["backup_id"])
    assert manifest.warnings() == warning
    assert b"".join(data for _offset, data in open_repository(repository).read_disk(entry["backup_id"], "2000")) \
        == content(*vm_data[("plain-vm01", 2000)])


def test_two_runs_at_once_write_three_vms_into_one_repository(tmp_path, vcsim, vcsim_si, estate, vm_data, double,
                                                             repository):  # noqa: F811
    double.snapshots = ["*"]
    double.write()
    outcomes = {}

    def run(label, names):
        folder = tmp_path / label
        folder.mkdir()
        outcomes[label] = run_backup(folder, vcsim, double, repository, {"vm_names": names})

    runs = [threading.Thread(target=run, args=("first", ["crypt-vm01", "plain-vm01"])),
            threading.Thread(target=run, args=("second", ["uefi-vm01"]))]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    for completed, _report in outcomes.values():
        assert completed.returncode == 0, completed.stdout
    repo = open_repository(repository)
    assert sorted(item.vm["name"] for item in repo.list_backups()) == sorted(VMS)
    report = repo.verify()
    assert report["ok"] is True, report
    for item in repo.list_backups():
        for disk in estate["vms"][item.vm["name"]]["disks"]:
            restored = b"".join(data for _offset, data in repo.read_disk(item.backup_id, str(disk["key"])))
            assert restored == content(*vm_data[(item.vm["name"], disk["key"])])
    assert no_snapshots_left(vcsim_si, estate)
