# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run record in, its report out: Markdown, an HTML page and the normalised record as JSON."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.files import write_report_files
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.html_page import render_html
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.markdown import render_markdown
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.record import normalize_run, summary_of


def render_report(run):
    """(normalised run, summary, extension -> text) of a run record."""
    normalized = normalize_run(run)
    summary = summary_of(normalized)
    contents = {
        "md": render_markdown(normalized, summary),
        "html": render_html(normalized, summary),
        "json": json.dumps(normalized, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
    }
    return normalized, summary, contents


def run_report(run, dest=None, dry_run=False):
    """The module's result: markdown, files written (or, with ``dry_run``, to be written), summary, changed."""
    normalized, summary, contents = render_report(run)
    files, changed = {}, False
    if dest:
        files, changed = write_report_files(dest, normalized["kind"], normalized["run_id"], contents, dry_run)
    return {"changed": changed, "markdown": contents["md"], "files": files, "summary": summary}
