# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Two small horizontal bar charts as inline SVG, for a page that fetches nothing and runs no script.

``stacked_bars``: one bar per row split into segments (where the time of each
VM went).  ``grouped_bars``: a group of thin bars per row, one per series on
one scale (where the bytes of each disk went).  Every text is escaped; a long
label is shortened and kept whole in a tooltip (``<title>``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from html import escape

WIDTH = 760
LABEL_WIDTH = 210
VALUE_WIDTH = 110
BAR_AREA = WIDTH - LABEL_WIDTH - VALUE_WIDTH
LABEL_CHARS = 30
MAX_ROWS = 40
FONT = 'font-family="system-ui, sans-serif" font-size="12"'
SHADES = ("#2f6db5", "#6f9fd8", "#b0b0b0")
LEGEND_HEIGHT = 26


def _short(label):
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "\u2026"


def _label(label, y):
    return '<text x="%d" y="%d" text-anchor="end" class="label">%s<title>%s</title></text>' % (
        LABEL_WIDTH - 8, y, escape(_short(label)), escape(label))


def _width(value, largest):
    """Pixels for ``value`` on a scale where ``largest`` fills the bar area; at least 1 for anything above 0."""
    if not value or not largest:
        return 0.0
    return max(1.0, round(BAR_AREA * value / largest, 1))


def _rect(x, y, width, height, color, tooltip):
    return '<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s</title></rect>' % (
        x, y, width, height, color, escape(tooltip))


def _legend(entries):
    parts, x = [], LABEL_WIDTH
    for name, color in entries:
        parts.append('<rect x="%d" y="6" width="12" height="12" fill="%s"/><text x="%d" y="16">%s</text>' % (
            x, color, x + 16, escape(name)))
        x += 24 + 7 * len(name)
    return '<g class="legend">%s</g>' % "".join(parts)


def _svg(chart_id, title, height, body):
    return ('<svg xmlns="http://www.w3.org/2000/svg" id="%s" class="chart" role="img" aria-labelledby="%s-title" '
            'width="%d" height="%d" viewBox="0 0 %d %d" %s><title id="%s-title">%s</title>%s</svg>') % (
        chart_id, chart_id, WIDTH, height, WIDTH, height, FONT, chart_id, escape(title), "".join(body))


def _capped(rows):
    """At most MAX_ROWS rows, and a note of how many more were left out."""
    if len(rows) <= MAX_ROWS:
        return rows, []
    return rows[:MAX_ROWS], ["%d more not drawn; the tables list them all" % (len(rows) - MAX_ROWS)]


def _note(texts, y):
    return ['<text x="%d" y="%d" class="note">%s</text>' % (LABEL_WIDTH, y + 14, escape(text)) for text in texts]


def stacked_bars(chart_id, title, rows, legend, format_value):
    """``rows``: (label, [(segment label, value, shade index)], total); ``legend``: (name, shade index)."""
    rows, more = _capped(rows)
    largest = max([total or 0 for _label_text, _segments, total in rows] + [0])
    body, y = [_legend([(name, SHADES[shade]) for name, shade in legend])], LEGEND_HEIGHT
    for label, segments, total in rows:
        body.append(_label(label, y + 13))
        x = float(LABEL_WIDTH)
        for segment, value, shade in segments:
            width = _width(value, largest)
            if width:
                body.append(_rect(x, y + 2, width, 14, SHADES[shade], "%s: %s" % (segment, format_value(value))))
                x += width
        body.append('<text x="%.1f" y="%d" class="value">%s</text>' % (x + 6, y + 13, escape(format_value(total))))
        y += 22
    body += _note(more or ([] if largest else ["nothing measured"]), y)
    return _svg(chart_id, title, y + 24, body)


def grouped_bars(chart_id, title, rows, series, format_value):
    """``rows``: (label, [value per series]); ``series``: (name, color) in the order of the values."""
    rows, more = _capped(rows)
    largest = max([value or 0 for _label_text, values in rows for value in values] + [0])
    body, y = [_legend(series)], LEGEND_HEIGHT
    for label, values in rows:
        body.append(_label(label, y + 4 + 5 * len(values)))
        for index, value in enumerate(values):
            name, color = series[index]
            bar_y = y + 2 + 10 * index
            width = _width(value, largest)
            if width:
                body.append(_rect(LABEL_WIDTH, bar_y, width, 8, color, "%s: %s" % (name, format_value(value))))
            body.append('<text x="%.1f" y="%d" class="value" font-size="10">%s</text>' % (
                LABEL_WIDTH + width + 6, bar_y + 8, escape(format_value(value))))
        y += 10 * len(values) + 12
    body += _note(more or ([] if largest else ["nothing measured"]), y)
    return _svg(chart_id, title, y + 24, body)
