"""The run report's HTML page in a real browser: Debian's chromium, headless (see headless_chromium.py).

The page of a real backup run (report_checks.RECORDED_RUN, the JSON report of
playbooks/backup.yml's three VMs, rendered again here by run_report's
renderer) loads with no console message, no exception and no request but its
own; both charts are laid out with bars of the right count and painted in the
series' colours. A restore report whose names are markup shows them as text.
And the checks are not blind: a page that fetches an image is caught, with
and without the report's Content-Security-Policy.
"""
import json

import pytest

from headless_chromium import Chromium, hex_color, png_pixels
from report_checks import RECORDED_RUN

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.run_report import render_report
from ansible_collections.vmcrypt.backup.plugins.module_utils.report.view import SERIES

# What the page looks like once laid out, measured by the browser.
PROBE = """(() => {
  const box = (element) => { const r = element.getBoundingClientRect(); return {width: r.width, height: r.height}; };
  return {
    title: document.title,
    charts: [...document.querySelectorAll('svg.chart')].map((svg) => Object.assign({id: svg.id}, box(svg))),
    bars: [...document.querySelectorAll('svg.chart > rect')].map((rect) => Object.assign(
      {chart: rect.closest('svg').id, fill: getComputedStyle(rect).fill}, box(rect))),
    disk_rows: document.querySelectorAll('section.vm table.disks tbody tr').length,
    vm_headings: [...document.querySelectorAll('section.vm h2')].map((h2) => h2.firstChild.textContent.trim()),
    elements: [...document.querySelectorAll('script, img, iframe, object, embed, link, a')].length,
    body_height: document.body.scrollHeight,
  };
})()"""


@pytest.fixture(scope="module")
def chromium():
    browser = Chromium()
    try:
        yield browser
    finally:
        browser.close()


def page_of(run, folder):
    _normalized, _summary, contents = render_report(run)
    path = folder / ("%s-report-%s.html" % (run["kind"], run["run_id"]))
    path.write_text(contents["html"], encoding="utf-8")
    return path


def painted(rows, color, tolerance=3):
    """How many pixels of a screenshot's ``rows`` have ``color`` (#rrggbb)."""
    wanted = hex_color(color)
    return sum(1 for row in rows for pixel in row if all(abs(a - b) <= tolerance for a, b in zip(pixel, wanted)))


def assert_clean(load):
    assert load.errors() == [] and load.console == [], load.console
    assert load.requests == [load.url], load.requests


def test_the_report_of_a_real_backup_run_renders_in_chromium(chromium, tmp_path):
    with open(RECORDED_RUN) as handle:
        run = json.load(handle)
    load = chromium.load(page_of(run, tmp_path), probe=PROBE, clip_selector="#bytes-chart")
    (tmp_path / "bytes-chart.png").write_bytes(load.screenshot)  # for a person looking at a failure
    assert_clean(load)
    probe = load.probe
    assert probe["title"] == "vmcrypt.backup backup run %s" % run["run_id"]
    assert [chart["id"] for chart in probe["charts"]] == ["time-chart", "bytes-chart"]
    assert all(chart["width"] >= 700 and chart["height"] >= 80 for chart in probe["charts"]), probe["charts"]
    disks = [disk for entry in run["vms"] for disk in entry["disks"]]
    assert probe["disk_rows"] == len(disks) == 6
    assert probe["vm_headings"] == [entry["vm"] for entry in run["vms"]]
    assert probe["elements"] == 0
    # One bar per figure in the bytes chart, one per disk with a duration in the time chart, none of them empty.
    drawn = [rect for rect in probe["bars"] if rect["width"] > 0 and rect["height"] > 0]
    figures = sum(1 for disk in disks for series in SERIES["backup"] if disk[series.field])
    assert len([rect for rect in drawn if rect["chart"] == "bytes-chart"]) == figures
    assert len([rect for rect in drawn if rect["chart"] == "time-chart"]) >= len(disks)
    # Painted, not only laid out: the colours of read, stored and holes show in a screenshot of the bytes chart.
    _width, _height, rows = png_pixels(load.screenshot)
    for series in SERIES["backup"][:3]:
        assert painted(rows, series.color) > 50, series.name


def test_names_that_are_markup_stay_text_in_a_restore_report(chromium, tmp_path):
    hostile = '<img src="http://report.invalid/x.png"></svg><script>console.error("ran")</script>'
    run = {"kind": "restore", "run_id": "r1", "vms": [
        {"vm": hostile, "source_vm": "a & b", "status": "ok", "key_mode": "original", "duration_seconds": 9.5,
         "transports": ["nbdssl"], "power_on": {"predicted": True, "reason": hostile, "powered_on": False},
         "disks": [{"key": 2000, "capacity_bytes": 8 << 20, "bytes_written": 1 << 20, "bytes_zeroed": 2 << 20,
                    "bytes_skipped": 5 << 20, "transport": "nbdssl", "duration_seconds": 2.0,
                    "throughput_mib_s": 1.5}],
         "nvram": {"action": "restored", "uploaded": True}, "sentences": [hostile], "warnings": [hostile]},
        None,
    ]}
    load = chromium.load(page_of(run, tmp_path), probe=PROBE)
    assert_clean(load)
    assert load.probe["elements"] == 0
    assert load.probe["vm_headings"] == [hostile, "n/a"]
    assert [chart["id"] for chart in load.probe["charts"]] == ["time-chart", "bytes-chart"]


@pytest.mark.parametrize("policy", ["", """<meta http-equiv="Content-Security-Policy" content="default-src 'none'">"""],
                         ids=["no policy", "the report's policy"])
def test_the_checks_see_a_page_that_fetches(chromium, tmp_path, policy):
    page = tmp_path / "fetches.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8">%s<title>t</title></head>'
                    '<body><img src="http://report.invalid/x.png"><p>text</p></body></html>' % policy)
    load = chromium.load(page)
    assert load.requests == [load.url, "http://report.invalid/x.png"]
    assert [level for level, _text in load.console] == ["error"]
