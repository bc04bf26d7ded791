# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a run report shows, once for both renderings (Markdown and HTML).

Everything here works on a normalised run record (``record.normalize_run``)
and returns plain text; the renderers only escape and lay it out.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from datetime import datetime

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.record import known_total
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import (
    FORMATS, NOT_AVAILABLE, format_flag, format_list, format_seconds, format_text, rate_of)

DONE = {"backup": "backed up", "restore": "restored"}


class Column(object):
    """A table column: its title, the record field it shows (named in the HTML), how a value is written."""

    def __init__(self, title, field, kind, get=None):
        self.title = title
        self.field = field
        self.kind = kind
        self._get = get

    def value(self, row):
        return self._get(row) if self._get else row.get(self.field)

    def text(self, row):
        return FORMATS[self.kind](self.value(row))


class Series(object):
    """One kind of byte count in the tables and the bytes chart."""

    def __init__(self, field, name, color):
        self.field = field
        self.name = name
        self.color = color

    def column(self):
        return Column(self.name, self.field, "bytes")


SERIES = {
    "backup": (Series("bytes_read", "read", "#2f6db5"), Series("bytes_stored", "stored", "#3a9a5b"),
               Series("bytes_skipped", "holes skipped", "#a9a9a9"),
               Series("bytes_deduplicated", "deduplicated", "#c07a1d")),
    "restore": (Series("bytes_written", "written", "#2f6db5"), Series("bytes_zeroed", "zeroed", "#8a63b8"),
                Series("bytes_skipped", "holes skipped", "#a9a9a9")),
}


def moved_bytes(kind, row):
    """What went through the transport: read for a backup, written and zeroed for a restore."""
    if kind == "backup":
        return row.get("bytes_read")
    return known_total([row.get("bytes_written"), row.get("bytes_zeroed")])


def disk_name(disk):
    """ "2000 Hard disk 1 (encrypted, incremental)" """
    flags = [flag for flag in ("encrypted", "incremental") if disk.get(flag)]
    name = " ".join(part for part in (disk["key"], disk.get("label")) if part) or NOT_AVAILABLE
    return "%s (%s)" % (name, ", ".join(flags)) if flags else name


def vm_columns(kind):
    columns = [Column("VM", "vm", "text")]
    if kind == "restore":
        columns.append(Column("from", "source_vm", "text"))
    columns += [Column("status", "status", "text"), Column("backup", "backup_id", "text"),
                Column("key mode", "key_mode", "text"), Column("transports", "transports", "list")]
    columns += [series.column() for series in SERIES[kind]]
    columns += [Column("duration", "duration_seconds", "seconds"),
                Column("throughput", "throughput_mib_s", "rate",
                       get=lambda row: rate_of(moved_bytes(kind, row), row["duration_seconds"]))]
    return columns


def disk_columns(kind):
    columns = [Column("disk", "key", "text", get=disk_name), Column("transport", "transport", "text"),
               Column("capacity", "capacity_bytes", "bytes")]
    columns += [series.column() for series in SERIES[kind]]
    if kind == "backup":
        columns += [Column("new chunks", "new_chunks", "count"),
                    Column("deduplicated chunks", "deduplicated_chunks", "count")]
    columns += [Column("duration", "duration_seconds", "seconds"), Column("throughput", "throughput_mib_s", "rate")]
    return columns


def parse_time(text):
    """An ISO 8601 time (a trailing Z allowed), or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None


def run_seconds(run):
    started, finished = parse_time(run["started"]), parse_time(run["finished"])
    if started is None or finished is None or (started.tzinfo is None) != (finished.tzinfo is None):
        return None
    return (finished - started).total_seconds()


def title(run):
    return "vmcrypt.backup %s run %s" % (run["kind"], run["run_id"])


def headline(run, summary):
    """ "2 of 3 VMs backed up, 1 failed"; a check-mode run's "2 of 3 VMs planned (check mode, nothing changed)" """
    if summary.get("planned"):
        return "%d of %d VMs planned (check mode, nothing changed), %d failed" % (
            summary["planned"], summary["vms"], summary["failed"])
    return "%d of %d VMs %s, %d failed" % (summary["ok"], summary["vms"], DONE[run["kind"]], summary["failed"])


def run_facts(run):
    """(label, text) pairs about the whole run."""
    kind = run["kind"]
    transports = []
    for entry in run["vms"]:
        transports += [name for name in entry["transports"] if name not in transports]
    facts = [("started", format_text(run["started"])), ("finished", format_text(run["finished"])),
             ("duration", format_seconds(run_seconds(run)))]
    facts += [(series.name, FORMATS["bytes"](known_total(entry[series.field] for entry in run["vms"])))
              for series in SERIES[kind]]
    facts.append(("transports", format_list(transports)))
    return facts


def _saved(value):
    return NOT_AVAILABLE if value is None else ("saved" if value else "not saved")


def _backup_facts(entry):
    encryption = entry["encryption"] or {}
    key = encryption.get("key_id")
    if key:
        key_text = "%s of key provider %s" % (format_text(key["key_id"]), format_text(key["provider_id"]))
    else:
        key_text = NOT_AVAILABLE if entry["encryption"] is None else "none (VM home not encrypted)"
    return [("backup", format_text(entry["backup_id"])), ("verified", format_flag(entry["verified"])),
            ("key mode", format_text(entry["key_mode"])), ("key", key_text),
            ("encryption.bundle", _saved(encryption.get("encryption_bundle_saved"))),
            ("NVRAM", _saved(encryption.get("nvram_saved")))]


def _restore_facts(entry):
    power_on, nvram = entry["power_on"] or {}, entry["nvram"] or {}
    predicted = power_on.get("predicted")
    prediction = NOT_AVAILABLE if predicted is None else ("will power on" if predicted else "will not power on")
    if power_on.get("reason"):
        prediction += ": %s" % power_on["reason"]
    key_mode = format_text(entry["key_mode"])
    if entry.get("key_mode_reason"):
        key_mode += ": %s" % entry["key_mode_reason"]
    facts = [("restored from", "backup %s of VM %s" % (format_text(entry["backup_id"]),
                                                       format_text(entry["source_vm"]))),
             ("key mode", key_mode), ("power-on prediction", prediction),
             ("powered on", format_flag(power_on.get("powered_on"))),
             ("NVRAM", "%s, uploaded: %s" % (format_text(nvram.get("action")), format_flag(nvram.get("uploaded"))))]
    facts += [("NVRAM consequence", text) for text in nvram.get("consequences") or []]
    if entry.get("removed_half_made_vm"):
        facts.append(("half-made VM", "%s removed" % entry["removed_half_made_vm"]))
    if entry.get("kept_failed_vm"):
        facts.append(("half-made VM", "kept for inspection (restore_keep_failed)"))
    return facts


def vm_facts(kind, entry):
    """(label, text) pairs about one VM; its failure first."""
    facts = _backup_facts(entry) if kind == "backup" else _restore_facts(entry)
    if entry["status"] != "failed":
        return facts
    # A failed VM: what went wrong, then only what it got as far as.
    return [("failure", format_text(entry["failure"]))] + [pair for pair in facts if NOT_AVAILABLE not in pair[1]]


def time_rows(run):
    """Per VM: (label, [(segment label, seconds, shade)], total seconds) - each disk, then the other steps."""
    rows = []
    for entry in run["vms"]:
        segments = [("disk %s" % disk_name(disk), disk["duration_seconds"], index % 2)
                    for index, disk in enumerate(entry["disks"]) if disk["duration_seconds"]]
        total = entry["duration_seconds"]
        on_disks = sum(seconds for _label, seconds, _shade in segments)
        if total is not None and total > on_disks:
            segments.append(("other steps (snapshot, metadata, commit, verify)" if run["kind"] == "backup"
                             else "other steps (VM creation, NVRAM, power-on)", total - on_disks, 2))
        rows.append((format_text(entry["vm"]), segments, total if total is not None else on_disks or None))
    return rows


def byte_rows(run):
    """Per disk: (label, [value per series])."""
    return [("%s: %s" % (format_text(entry["vm"]), disk_name(disk)),
             [disk[series.field] for series in SERIES[run["kind"]]])
            for entry in run["vms"] for disk in entry["disks"]]
