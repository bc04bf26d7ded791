# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no URL.

Its Content-Security-Policy forbids every fetch (``default-src 'none'``), so
a browser that opens it from a mail or an artefact store loads nothing else.
Every value of the record is escaped.  Table cells of figures carry the field
they show and its exact value (``data-column``, ``data-value``) for tools
and tests; the text is the rounded, readable one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from html import escape

from ansible_collections.vmcrypt.backup.plugins.module_utils.report import chart, view
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import (
    format_bytes, format_seconds, format_text)

CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'"
NUMERIC = ("bytes", "seconds", "rate", "count")

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; }
h3 { font-size: 1em; margin-bottom: 0.3em; }
.headline { font-size: 1.15em; font-weight: 600; }
.headline.ok { color: #22703d; }
.headline.failed, .status.failed { color: #b3261e; }
.status.ok { color: #22703d; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; margin: 0.6em 0; }
dl.facts dt { color: #5b6670; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #d4d9de; padding: 0.25em 0.55em; text-align: left; vertical-align: top; }
th { background: #f1f4f7; }
td { white-space: nowrap; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
section.overview, section.vm { overflow-x: auto; }
section.vm { border-left: 4px solid #3a9a5b; padding-left: 1em; margin-top: 1.5em; }
section.vm.failed { border-left-color: #b3261e; }
ul.warnings li { color: #8a5a00; }
svg.chart { max-width: 100%; height: auto; display: block; }
svg.chart .label, svg.chart .value, svg.chart .note { fill: #1d2329; }
svg.chart .note { font-style: italic; }
footer { margin-top: 3em; color: #5b6670; font-size: 0.85em; }
"""


def _cell(column, row):
    text = escape(column.text(row))
    if column.kind not in NUMERIC:
        return "<td>%s</td>" % text
    value = column.value(row)
    exact = "" if value is None else ' data-value="%s"' % escape("%s" % value)
    return '<td class="number" data-column="%s"%s>%s</td>' % (escape(column.field), exact, text)


def _table(css_class, columns, rows, row_attribute):
    head = "".join("<th>%s</th>" % escape(column.title) for column in columns)
    body = "".join('<tr %s="%s">%s</tr>' % (row_attribute[0], escape(format_text(row.get(row_attribute[1]))),
                                            "".join(_cell(column, row) for column in columns)) for row in rows)
    return '<table class="%s"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>' % (css_class, head, body)


def _facts(pairs):
    return '<dl class="facts">%s</dl>' % "".join("<dt>%s</dt><dd>%s</dd>" % (escape(label), escape(text))
                                                 for label, text in pairs)


def _list(heading, css_class, texts):
    if not texts:
        return ""
    items = "".join("<li>%s</li>" % escape(text) for text in texts)
    return '<h3>%s</h3><ul class="%s">%s</ul>' % (heading, css_class, items)


def _charts(run):
    series = view.SERIES[run["kind"]]
    return "".join([
        "<h2>Where the time went</h2>",
        chart.stacked_bars("time-chart", "Duration of each VM: its disks, then the other steps", view.time_rows(run),
                           [("each disk", 0), ("other steps", 2)], format_seconds),
        "<h2>Where the bytes went</h2>",
        chart.grouped_bars("bytes-chart", "Bytes of each disk: %s" % ", ".join(item.name for item in series),
                           view.byte_rows(run), [(item.name, item.color) for item in series], format_bytes),
    ])


def _vm_section(kind, index, entry):
    parts = ['<section class="vm %s" id="vm-%d" data-vm="%s">' % (entry["status"], index,
                                                                  escape(format_text(entry["vm"]))),
             '<h2>%s <span class="status %s">%s</span></h2>' % (escape(format_text(entry["vm"])), entry["status"],
                                                                entry["status"]),
             _facts(view.vm_facts(kind, entry))]
    if entry["disks"]:
        parts.append(_table("disks", view.disk_columns(kind), entry["disks"], ("data-disk", "key")))
    else:
        parts.append("<p>No disks reported.</p>")
    parts += [_list("Plan", "sentences", entry.get("sentences")), _list("Warnings", "warnings", entry["warnings"]),
              "</section>"]
    return "".join(parts)


def render_html(run, summary):
    """The whole page of a normalised run record (``summary`` from ``record.summary_of``)."""
    kind, title = run["kind"], escape(view.title(run))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" content="%s">' % CONTENT_SECURITY_POLICY,
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>%s</title><style>%s</style></head>" % (title, STYLE),
        '<body data-kind="%s" data-run-id="%s">' % (kind, escape(run["run_id"])),
        "<header><h1>%s</h1>" % title,
        '<p class="headline %s">%s</p>' % ("failed" if summary["failed"] else "ok",
                                           escape(view.headline(run, summary))),
        _facts(view.run_facts(run)), "</header>",
        '<section class="charts">%s</section>' % _charts(run),
    ]
    if run["vms"]:
        parts.append('<section class="overview"><h2>VMs</h2>%s</section>' % _table(
            "vms", view.vm_columns(kind), run["vms"], ("data-vm", "vm")))
    parts += [_vm_section(kind, index, entry) for index, entry in enumerate(run["vms"], 1)]
    parts.append("<footer>Made by vmcrypt.backup.run_report. This page runs no script and fetches nothing.</footer>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
