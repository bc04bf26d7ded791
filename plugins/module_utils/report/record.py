# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run record a report is made from, checked and normalised.

A run record is what ``playbooks/backup.yml`` (and the restore playbook)
collect at the end of a run: ``kind`` (backup or restore), ``run_id``,
optional ``started``/``finished`` (ISO 8601) and one entry per VM.  The
fields of an entry are listed below as data, one converter each.  Anything
may be missing or null on the entry of a failed VM (or a VM whose steps never
reported), so every field is read tolerantly: a missing or unreadable value
becomes None, which the report shows as "n/a".  Fields not listed are dropped,
so the report never carries more than this schema (no secret a caller passed
by mistake).  Only what names the files is strict: ``kind`` and ``run_id``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError

KINDS = ("backup", "restore")
# run_id names the report files: no separator, no leading dot.
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _text(value):
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else "%s" % value


def _texts(value):
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [text for text in (_text(item) for item in value) if text is not None]


def _flag(value):
    return value if isinstance(value, bool) else None


def _number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value if isinstance(value, int) else None


def _integer(value):
    number = _number(value)
    return None if number is None else int(round(number))


def _status(value):
    """Only an explicit "ok" is a success, and "planned" a check-mode run's plan; anything else is a failure."""
    return value if value in ("ok", "planned") else "failed"


def _record(schema):
    def convert(value):
        if not isinstance(value, dict):
            return None
        return dict((name, field(value.get(name))) for name, field in schema.items())
    return convert


def _records(schema):
    convert = _record(schema)

    def convert_all(value):
        if not isinstance(value, (list, tuple)):
            return []
        return [record for record in (convert(item) for item in value) if record is not None]
    return convert_all


BACKUP_DISK = {
    "key": _text, "label": _text, "encrypted": _flag, "incremental": _flag, "transport": _text,
    "capacity_bytes": _integer, "bytes_read": _integer, "bytes_stored": _integer, "bytes_skipped": _integer,
    "bytes_deduplicated": _integer, "new_chunks": _integer, "deduplicated_chunks": _integer,
    "duration_seconds": _number, "throughput_mib_s": _number,
}
BACKUP_ENTRY = {
    "vm": _text, "status": _status, "failure": _text, "backup_id": _text, "verified": _flag, "key_mode": _text,
    "duration_seconds": _number, "transports": _texts,
    "bytes_read": _integer, "bytes_stored": _integer, "bytes_skipped": _integer, "bytes_deduplicated": _integer,
    "disks": _records(BACKUP_DISK),
    "encryption": _record({"key_id": _record({"key_id": _text, "provider_id": _text}),
                           "encryption_bundle_saved": _flag, "nvram_saved": _flag}),
    "warnings": _texts,
}
RESTORE_DISK = {
    "key": _text, "capacity_bytes": _integer, "bytes_written": _integer, "bytes_zeroed": _integer,
    "bytes_skipped": _integer, "transport": _text, "duration_seconds": _number, "throughput_mib_s": _number,
}
RESTORE_ENTRY = {
    "vm": _text, "source_vm": _text, "backup_id": _text, "status": _status, "failure": _text, "key_mode": _text,
    "key_mode_reason": _text, "moid": _text, "removed_half_made_vm": _text, "kept_failed_vm": _flag,
    "power_on": _record({"predicted": _flag, "reason": _text, "powered_on": _flag}),
    "duration_seconds": _number, "transports": _texts,
    "bytes_written": _integer, "bytes_zeroed": _integer, "bytes_skipped": _integer,
    "disks": _records(RESTORE_DISK),
    "nvram": _record({"action": _text, "uploaded": _flag, "consequences": _texts}),
    "sentences": _texts, "warnings": _texts,
}
ENTRIES = {"backup": BACKUP_ENTRY, "restore": RESTORE_ENTRY}
# Per-VM byte totals that a missing value takes from the sum of the disks.
TOTALS = {
    "backup": ("bytes_read", "bytes_stored", "bytes_skipped", "bytes_deduplicated"),
    "restore": ("bytes_written", "bytes_zeroed", "bytes_skipped"),
}


def disk_total(disks, field):
    """The sum of a disk field; None without disks or when any disk lacks it."""
    values = [disk[field] for disk in disks]
    if not values or None in values:
        return None
    return sum(values)


def known_total(values):
    """The sum of what is known; None when nothing is."""
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _entry(kind, value):
    entry = _record(ENTRIES[kind])(value if isinstance(value, dict) else {})
    if not isinstance(value, dict):
        entry["failure"] = "no report from this VM"
    for field in TOTALS[kind]:
        if entry[field] is None:
            entry[field] = disk_total(entry["disks"], field)
    if kind == "backup" and entry["key_mode"] is None and entry["encryption"] is not None:
        entry["key_mode"] = "encrypted" if entry["encryption"]["key_id"] else "plain"
    return entry


def normalize_run(run):
    """The run record with every listed field present (None when unknown); InvalidArgumentError when the
    record cannot name its report (kind, run_id) or holds no list of VMs."""
    if not isinstance(run, dict):
        raise InvalidArgumentError("the run record must be a dict, not %s" % type(run).__name__)
    kind = run.get("kind")
    if kind not in KINDS:
        raise InvalidArgumentError("the run record's kind must be one of %s, not %r" % (", ".join(KINDS), kind))
    run_id = run.get("run_id")
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise InvalidArgumentError("the run record's run_id must be letters, digits, '.', '_' or '-' "
                                   "(up to 128, not starting with '.', '_' or '-'), not %r" % (run_id,))
    vms = run.get("vms", [])
    if not isinstance(vms, (list, tuple)):
        raise InvalidArgumentError("the run record's vms must be a list, not %s" % type(vms).__name__)
    return {
        "kind": kind,
        "run_id": run_id,
        "started": _text(run.get("started")),
        "finished": _text(run.get("finished")),
        "vms": [_entry(kind, entry) for entry in vms],
    }


def summary_of(run):
    """Counts of a normalised run: VMs, ok, planned (a check-mode run), failed."""
    ok = sum(1 for entry in run["vms"] if entry["status"] == "ok")
    planned = sum(1 for entry in run["vms"] if entry["status"] == "planned")
    return {"vms": len(run["vms"]), "ok": ok, "planned": planned, "failed": len(run["vms"]) - ok - planned}
