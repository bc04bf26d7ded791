"""The report's files: where, with which mode, written only when they change; check mode writes nothing."""
import json
import os
import stat

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.files import ReportFileError
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.run_report import run_report

from report_samples import backup_run, restore_run


def mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_three_files_0600_in_a_new_0700_folder(tmp_path):
    dest = tmp_path / "reports" / "nightly"
    result = run_report(backup_run(), dest=str(dest))
    names = dict((extension, "backup-report-20261130T120000Z.%s" % extension) for extension in ("md", "html", "json"))
    assert result["files"] == dict((extension, str(dest / name)) for extension, name in names.items())
    assert result["changed"] is True and result["summary"] == {"vms": 3, "ok": 1, "planned": 0, "failed": 2}
    assert mode(dest) == 0o700 and sorted(os.listdir(str(dest))) == sorted(names.values())
    assert all(mode(path) == 0o600 for path in result["files"].values())
    assert (dest / names["md"]).read_text() == result["markdown"]
    assert json.loads((dest / names["json"]).read_text())["vms"][0]["vm"] == "crypt-vm01"


def test_the_same_record_again_changes_nothing_and_a_new_mode_or_content_is_put_right(tmp_path):
    first = run_report(restore_run(), dest=str(tmp_path))
    written = dict((path, os.stat(path).st_mtime_ns) for path in first["files"].values())
    assert run_report(restore_run(), dest=str(tmp_path))["changed"] is False
    assert dict((path, os.stat(path).st_mtime_ns) for path in first["files"].values()) == written
    os.chmod(first["files"]["html"], 0o644)
    assert run_report(restore_run(), dest=str(tmp_path))["changed"] is True
    assert mode(first["files"]["html"]) == 0o600
    record = restore_run()
    record["vms"][0]["warnings"] = ["a new warning"]
    assert run_report(record, dest=str(tmp_path))["changed"] is True
    assert "a new warning" in open(first["files"]["md"]).read()
    assert [name for name in os.listdir(str(tmp_path)) if name.startswith(".")] == []  # no temporary file left


def test_check_mode_renders_and_names_the_files_but_writes_nothing(tmp_path):
    dest = tmp_path / "reports"
    planned = run_report(backup_run(), dest=str(dest), dry_run=True)
    assert planned["changed"] is True and not dest.exists()
    assert planned["files"]["html"] == str(dest / "backup-report-20261130T120000Z.html")
    assert planned["markdown"] == run_report(backup_run())["markdown"]
    run_report(backup_run(), dest=str(dest))
    assert run_report(backup_run(), dest=str(dest), dry_run=True)["changed"] is False


def test_without_a_folder_nothing_is_written():
    result = run_report(backup_run())
    assert result["files"] == {} and result["changed"] is False
    assert result["markdown"].startswith("# vmcrypt.backup backup run 20261130T120000Z\n")


def test_a_folder_that_is_a_file_or_cannot_be_written_is_one_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ReportFileError, match="is not a directory"):
        run_report(backup_run(), dest=str(blocker))
    with pytest.raises(ReportFileError, match="cannot write the report into %s/inside: " % blocker):
        run_report(backup_run(), dest=str(blocker / "inside"))
