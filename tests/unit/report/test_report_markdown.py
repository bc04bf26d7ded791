"""The report as Markdown: what a person reads on the console, and that user data cannot become markup."""
import re

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.markdown import escape, render_markdown
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.record import normalize_run, summary_of

from report_samples import HOSTILE, backup_run, restore_run


def markdown_of(record):
    run = normalize_run(record)
    return render_markdown(run, summary_of(run))


def section(text, heading):
    """The lines of one VM's section, from its heading to the next (without the blank line before it)."""
    lines = text.splitlines()
    start = lines.index(heading)
    end = next((index for index in range(start + 1, len(lines)) if lines[index].startswith("## ")), len(lines) + 1)
    return lines[start:end - 1]


def test_a_backup_report_gives_the_run_each_vm_and_each_disk():
    text = markdown_of(backup_run())
    assert text.startswith("# vmcrypt.backup backup run 20261130T120000Z\n\n**1 of 3 VMs backed up, 2 failed**\n")
    assert "- duration: 2 min 05 s\n" in text and "- read: 12.0 MiB\n" in text
    # One disk of crypt-vm01 has no deduplication counter: neither has the VM nor the run.
    assert "- holes skipped: 84.0 MiB\n" in text and "- deduplicated: n/a\n" in text
    assert ("| crypt-vm01 | ok | 20261130T120001Z-0a1b2c3d | encrypted | nbdssl | 12.0 MiB | 4.0 MiB | 84.0 MiB "
            "| n/a | 40.0 s | 0.3 MiB/s |") in text
    vm = section(text, "## crypt-vm01: ok")
    assert "- key: k-1 of key provider kms" in vm and "- encryption.bundle: saved" in vm
    assert "| 2000 Hard disk 1 (encrypted) | nbdssl | 64.0 MiB | 8.0 MiB | 2.7 MiB | 56.0 MiB | n/a | 8 | 0 " \
           "| 2.5 s | 3.2 MiB/s |" in vm
    assert "| 2001 Hard disk 2 (incremental) | nbdssl | 32.0 MiB | 4.0 MiB | 1.3 MiB | 28.0 MiB | 1.0 MiB | 4 | 1 " \
           "| 2.5 s | 1.6 MiB/s |" in vm
    assert vm[-3:] == ["Warnings:", "", "- file-system quiescing instead of application quiescing"]


def test_a_failed_vm_shows_its_failure_and_only_what_it_got_as_far_as():
    text = markdown_of(backup_run())
    assert section(text, "## n/a: failed") == [
        "## n/a: failed", "", "- failure: no report from this VM", "", "No disks reported."]
    failed = section(text, "## %s: failed" % escape(HOSTILE))
    assert failed[2] == "- failure: Export the disks: disk 2000: reading at offset 1048576 failed"
    assert "- verified: n/a" not in failed and "- backup: n/a" not in failed


def test_a_restore_report_gives_key_mode_power_on_nvram_and_the_plan():
    text = markdown_of(restore_run())
    assert "**1 of 2 VMs restored, 1 failed**" in text
    vm = section(text, "## crypt-vm01-restored: ok")
    assert "- restored from: backup 20261130T120001Z-0a1b2c3d of VM crypt-vm01" in vm
    assert "- power-on prediction: will power on: the original key is available on this vCenter" in vm
    assert "- NVRAM: restored from the backup, uploaded: yes" in vm
    assert "| 2000 | nbdssl | 64.0 MiB | 8.0 MiB | 2.0 MiB | 54.0 MiB | 4.0 s | 2.5 MiB/s |" in vm
    assert vm[-4:] == ["Plan:", "", "- The VM is restored under its original key.",
                       "- Its NVRAM is restored from the backup."]
    failed = section(text, "## uefi-vm01: failed")
    assert "- failure: Create the VM: a VM named uefi-vm01 exists" in failed and "- key mode: new" in failed


@pytest.mark.parametrize("text, escaped", [
    ("app_01", "app_01"),
    ("_app_", r"\_app\_"),
    ("a|b", r"a\|b"),
    ("<b>x</b> & [l](u) `c` *e* ~s~ \\", r"\<b\>x\</b\> \& \[l\](u) \`c\` \*e\* \~s\~ \\"),
    ("two\nlines\r\n  here", "two lines here"),
])
def test_escape(text, escaped):
    assert escape(text) == escaped


def test_user_data_cannot_open_markup_or_a_table_cell():
    text = markdown_of(backup_run())
    row = next(line for line in text.splitlines() if line.startswith("| \\<img"))
    assert row.count(" | ") == 10  # eleven cells, as many as the header has
    name = row[2:row.index(" | failed |")]
    assert re.search(r"(?<!\\)[<>\[\]*`|&~]", name) is None, name  # every markup character escaped
    assert re.sub(r"\\(.)", r"\1", name) == HOSTILE
