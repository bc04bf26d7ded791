"""Reading the run report's files back: the figures of each disk in its HTML and Markdown, and the record's shape.

RECORDED_RUN is the JSON report of a real playbooks/backup.yml run (test_backup_playbook's three VMs), kept so the
browser test renders a real record without a run of its own; test_backup_playbook fails when a run's record no
longer has its shape (then copy that run's backup-report-*.json over it).
"""
import os
import re
from html.parser import HTMLParser

RECORDED_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "backup_run_record.json")


class _Figures(HTMLParser):
    """data-value of each figure cell, by (data-vm of its section, data-disk of its row) and data-column."""

    def __init__(self):
        HTMLParser.__init__(self)
        self.vm = self.disk = None
        self.figures = {}

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section" and "data-vm" in attributes:
            self.vm = attributes["data-vm"]
        elif tag == "tr":
            self.disk = attributes.get("data-disk")
        elif tag == "td" and self.vm and self.disk and "data-column" in attributes:
            self.figures.setdefault((self.vm, self.disk), {})[attributes["data-column"]] = attributes.get("data-value")


def html_disk_figures(page):
    """{(vm, disk key): {field: exact value as text, or None for n/a}} of the page's per-VM disk tables."""
    parser = _Figures()
    parser.feed(page)
    return parser.figures


def markdown_disk_rows(text):
    """{(vm, disk key): [cell texts]} of the Markdown's per-VM disk tables (VM names without escapes)."""
    rows, vm = {}, None
    for line in text.splitlines():
        heading = re.match(r"^## (.*): (ok|failed)$", line)
        if heading:
            vm = re.sub(r"\\(.)", r"\1", heading.group(1))
        elif vm and re.match(r"^\| [0-9]+ ", line):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[(vm, cells[0].split()[0])] = cells
    return rows


def shape(value, path=""):
    """Every key path of a JSON value, through lists ("vms[].disks[].bytes_read")."""
    paths = set()
    if isinstance(value, dict):
        for name, item in value.items():
            paths.add(path + name)
            paths |= shape(item, path + name + ".")
    elif isinstance(value, list):
        for item in value:
            paths |= shape(item, path[:-1] + "[].")
    return paths
