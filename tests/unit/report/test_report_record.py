"""The run record: what the report accepts, what it fills in, and what it leaves out."""
import json

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.record import normalize_run, summary_of

from report_samples import MIB, backup_run, restore_run


def test_a_backup_record_keeps_every_listed_field_and_drops_the_rest():
    run = normalize_run(backup_run())
    entry = run["vms"][0]
    assert entry["backup_id"] == "20261130T120001Z-0a1b2c3d" and entry["verified"] is True
    assert [disk["key"] for disk in entry["disks"]] == ["2000", "2001"]  # keys are text, as in the manifest
    assert entry["encryption"]["key_id"] == {"key_id": "k-1", "provider_id": "kms"}
    # A secret passed by mistake never reaches the report.
    assert "encryption.bundle" not in entry and "repository_password" not in entry
    assert "c2VjcmV0" not in json.dumps(run) and "hunter2" not in json.dumps(run)


def test_missing_totals_are_the_sums_of_the_disks_and_unknown_when_a_disk_does_not_say():
    entry = normalize_run(backup_run())["vms"][0]
    assert entry["bytes_read"] == 12 * MIB  # given
    assert entry["bytes_skipped"] == (56 + 28) * MIB  # summed
    assert entry["bytes_deduplicated"] is None  # disk 2000 has no counter


def test_an_entry_that_failed_early_or_never_reported_is_a_failure_with_unknown_figures():
    run = normalize_run(backup_run())
    failed, missing = run["vms"][1], run["vms"][2]
    assert failed["status"] == "failed" and failed["failure"].startswith("Export the disks")
    assert failed["key_mode"] is None and failed["bytes_skipped"] is None and failed["disks"] == []
    assert missing["status"] == "failed" and missing["failure"] == "no report from this VM"
    assert missing["vm"] is None and missing["transports"] == [] and missing["warnings"] == []
    assert summary_of(run) == {"vms": 3, "ok": 1, "planned": 0, "failed": 2}


@pytest.mark.parametrize("key_id, key_mode", [({"key_id": "k", "provider_id": "p"}, "encrypted"), (None, "plain")])
def test_a_backup_without_key_mode_takes_it_from_the_vm_key(key_id, key_mode):
    record = backup_run()
    del record["vms"][0]["key_mode"]
    record["vms"][0]["encryption"]["key_id"] = key_id
    assert normalize_run(record)["vms"][0]["key_mode"] == key_mode


@pytest.mark.parametrize("value, read", [("1024", 1024), (1.6, 2), (True, None), ("lots", None), (float("nan"), None),
                                         ({"a": 1}, None)])
def test_figures_are_read_tolerantly(value, read):
    record = backup_run()
    record["vms"][0]["disks"][0]["bytes_read"] = value
    assert normalize_run(record)["vms"][0]["disks"][0]["bytes_read"] == read


def test_only_ok_is_a_success():
    record = backup_run()
    record["vms"][0]["status"] = "OK"
    assert normalize_run(record)["vms"][0]["status"] == "failed"


def test_a_restore_record_keeps_its_own_fields():
    run = normalize_run(restore_run())
    entry, failed = run["vms"]
    assert entry["source_vm"] == "crypt-vm01" and entry["key_mode"] == "original"
    assert entry["power_on"] == {"predicted": True, "reason": "the original key is available on this vCenter",
                                 "powered_on": True}
    assert entry["disks"][1]["bytes_zeroed"] == 0 and "bytes_read" not in entry["disks"][0]
    assert failed["power_on"] is None and failed["bytes_written"] is None and failed["sentences"] == [
        "The VM gets new keys."]


@pytest.mark.parametrize("change, message", [
    (dict(kind="nightly"), "kind must be one of backup, restore, not 'nightly'"),
    (dict(run_id="../../etc/cron.d/x"), "run_id must be letters, digits"),
    (dict(run_id=".hidden"), "run_id must be letters, digits"),
    (dict(run_id=None), "run_id must be letters, digits"),
    (dict(vms={"crypt-vm01": {}}), "vms must be a list, not dict"),
])
def test_what_names_the_files_is_strict(change, message):
    record = backup_run()
    record.update(change)
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        normalize_run(record)


def test_a_record_must_be_a_dict():
    with pytest.raises(InvalidArgumentError, match="must be a dict, not list"):
        normalize_run([])
