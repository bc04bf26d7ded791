"""The report as one HTML page: well formed, self-contained, escaped, with its figures and charts."""
import re
from html.parser import HTMLParser

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.report import chart
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.html_page import render_html
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.record import normalize_run, summary_of
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import format_bytes

from report_samples import HOSTILE, MIB, backup_run, restore_run

VOID = {"meta", "br", "img", "input", "link", "hr"}


class Page(HTMLParser):
    """Tags as a tree check (every element closed in order), attributes and text, of one page."""

    def __init__(self, text):
        HTMLParser.__init__(self)
        self.open, self.problems, self.tags, self.attributes, self.texts = [], [], [], [], []
        self.feed(text)
        self.close()
        if self.open:
            self.problems.append("never closed: %s" % self.open)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += attrs
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attributes += attrs

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append("</%s> closes %s" % (tag, self.open[-1:] or "nothing"))
        else:
            self.open.pop()

    def handle_data(self, data):
        self.texts.append(data)


def page_of(record):
    run = normalize_run(record)
    return render_html(run, summary_of(run))


@pytest.mark.parametrize("record", [backup_run(), restore_run()], ids=["backup", "restore"])
def test_the_page_is_well_formed_and_fetches_nothing(record):
    text = page_of(record)
    page = Page(text)
    assert page.problems == []
    assert text.startswith("<!DOCTYPE html>")
    assert "script" not in page.tags and "img" not in page.tags and "link" not in page.tags
    # No attribute can make the browser fetch (data-* ones hold VM names), and the policy forbids it anyway.
    urls = [(name, value) for name, value in page.attributes
            if value and not name.startswith("data-") and re.search(r"(https?|ftp|data):", value)]
    assert urls == [("xmlns", "http://www.w3.org/2000/svg")] * 2
    assert not [name for name, _value in page.attributes if name in ("src", "href", "srcset", "action")]
    assert ("content", "default-src 'none'; style-src 'unsafe-inline'") in page.attributes
    assert "url(" not in text and "@import" not in text


def test_user_data_is_text_everywhere():
    page = Page(page_of(backup_run()))
    assert page.problems == []
    assert HOSTILE in page.texts  # the section heading, verbatim as text
    assert ("data-vm", HOSTILE) in page.attributes  # and as an attribute value, not markup


def test_each_disk_row_carries_its_exact_figures():
    text = page_of(backup_run())
    row = re.search(r'<tr data-disk="2001">(.*?)</tr>', text).group(1)
    assert '<td class="number" data-column="bytes_read" data-value="%d">4.0 MiB</td>' % (4 * MIB) in row
    assert '<td class="number" data-column="bytes_deduplicated" data-value="%d">1.0 MiB</td>' % MIB in row
    first = re.search(r'<tr data-disk="2000">(.*?)</tr>', text).group(1)
    assert '<td class="number" data-column="bytes_deduplicated">n/a</td>' in first


def test_the_charts_draw_a_bar_per_figure_and_time_segment():
    text = page_of(backup_run())
    bytes_chart = re.search(r'<svg [^>]*id="bytes-chart".*?</svg>', text).group(0)
    bars = re.findall(r'<rect x="[0-9.]+" y="[0-9]+" width="([0-9.]+)"', bytes_chart)
    # Two disks: read, stored, holes for each and deduplicated for the second; the legend's four squares.
    assert len(bars) == 4 + 7 and all(float(width) > 0 for width in bars)
    assert "<title>holes skipped: %s</title>" % format_bytes(56 * MIB) in bytes_chart
    time_chart = re.search(r'<svg [^>]*id="time-chart".*?</svg>', text).group(0)
    assert "<title>disk 2000 Hard disk 1 (encrypted): 2.5 s</title>" in time_chart
    assert "<title>other steps (snapshot, metadata, commit, verify): 35.0 s</title>" in time_chart


def test_long_labels_are_shortened_with_the_whole_label_as_a_tooltip():
    svg = chart.stacked_bars("c", "t", [("x" * 50, [("a", 1.0, 0)], 1.0)], [("a", 0)], str)
    assert ">%s\u2026<title>%s</title></text>" % ("x" * 29, "x" * 50) in svg


def test_a_chart_of_many_rows_draws_the_first_and_says_how_many_more():
    rows = [("vm%d" % index, [1, 2]) for index in range(chart.MAX_ROWS + 5)]
    svg = chart.grouped_bars("c", "t", rows, [("a", "#000000"), ("b", "#ffffff")], str)
    assert "vm%d<" % (chart.MAX_ROWS - 1) in svg and "vm%d<" % chart.MAX_ROWS not in svg
    assert "5 more not drawn; the tables list them all" in svg


def test_a_chart_with_nothing_measured_says_so():
    svg = chart.grouped_bars("c", "t", [("vm", [None, 0])], [("a", "#000000"), ("b", "#ffffff")], str)
    assert "nothing measured" in svg and svg.count("<rect") == 2  # the legend only
