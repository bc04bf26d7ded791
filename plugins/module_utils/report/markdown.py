# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report as Markdown: readable as plain text on a console or in a job log, and as rendered Markdown.

Every value from the record (VM names, failures, warnings are user data) is
put on one line and escaped, so none can open a link, an HTML tag, emphasis
or a table cell of its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.vmcrypt.backup.plugins.module_utils.report import view
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import format_text

# CommonMark's backslash escapes for what could start markup inside a line; an underscore only where it could
# open or close emphasis (app_01 stays readable).
_SPECIAL = re.compile(r"([\\`*\[\]<>|~&])")
_LOOSE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def escape(text):
    """One line of literal text."""
    text = _SPECIAL.sub(r"\\\1", " ".join(("%s" % text).split()))
    return _LOOSE_UNDERSCORE.sub(r"\\_", text)


def _table(columns, rows):
    lines = ["| %s |" % " | ".join(escape(column.title) for column in columns),
             "|%s|" % "|".join(" ---: " if column.kind in ("bytes", "seconds", "rate", "count") else " --- "
                               for column in columns)]
    lines += ["| %s |" % " | ".join(escape(column.text(row)) for column in columns) for row in rows]
    return lines


def _facts(pairs):
    return ["- %s: %s" % (escape(label), escape(text)) for label, text in pairs]


def _bullets(heading, texts):
    return ["", "%s:" % heading, ""] + ["- %s" % escape(text) for text in texts] if texts else []


def render_markdown(run, summary):
    """The whole report of a normalised run record (``summary`` from ``record.summary_of``)."""
    kind = run["kind"]
    lines = ["# %s" % escape(view.title(run)), "", "**%s**" % escape(view.headline(run, summary)), ""]
    lines += _facts(view.run_facts(run))
    if run["vms"]:
        lines += [""] + _table(view.vm_columns(kind), run["vms"])
    for entry in run["vms"]:
        lines += ["", "## %s: %s" % (escape(format_text(entry["vm"])), entry["status"]), ""]
        lines += _facts(view.vm_facts(kind, entry))
        lines += [""] + (_table(view.disk_columns(kind), entry["disks"]) if entry["disks"] else ["No disks reported."])
        lines += _bullets("Plan", entry.get("sentences"))
        lines += _bullets("Warnings", entry["warnings"])
    return "\n".join(lines) + "\n"
