# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the run report writes a figure: bytes in binary units, durations, throughput; None is "n/a"."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

NOT_AVAILABLE = "n/a"
MIB = 1024 * 1024
_BYTE_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(value):
    """1536 -> "1.5 KiB"; below 1 KiB the exact count ("512 B")."""
    if value is None:
        return NOT_AVAILABLE
    if abs(value) < 1024:
        return "%d B" % value
    scaled = float(value)
    for unit in _BYTE_UNITS:
        scaled /= 1024
        if abs(scaled) < 1024 or unit == _BYTE_UNITS[-1]:
            return "%.1f %s" % (scaled, unit)


def format_seconds(value):
    """12.34 -> "12.3 s", 125 -> "2 min 05 s", 7260 -> "2 h 01 min"."""
    if value is None:
        return NOT_AVAILABLE
    if value < 60:
        return "%.1f s" % value
    whole = int(round(value))
    if whole < 3600:
        return "%d min %02d s" % divmod(whole, 60)
    return "%d h %02d min" % (whole // 3600, whole % 3600 // 60)


def format_rate(mib_per_second):
    """One decimal; two significant digits below 0.1 (0.018 MiB/s is not 0.0)."""
    if mib_per_second is None:
        return NOT_AVAILABLE
    if 0 < mib_per_second < 0.1:
        return "%.2g MiB/s" % mib_per_second
    return "%.1f MiB/s" % mib_per_second


def format_count(value):
    return NOT_AVAILABLE if value is None else "%d" % value


def format_flag(value):
    return NOT_AVAILABLE if value is None else ("yes" if value else "no")


def format_text(value):
    return NOT_AVAILABLE if value is None or value == "" else "%s" % value


def format_list(values):
    return ", ".join("%s" % value for value in values) if values else "none"


def rate_of(byte_count, seconds):
    """MiB/s of ``byte_count`` over ``seconds``; None when either is unknown or the time is 0."""
    if byte_count is None or not seconds:
        return None
    return byte_count / MIB / seconds


FORMATS = {
    "bytes": format_bytes,
    "seconds": format_seconds,
    "rate": format_rate,
    "count": format_count,
    "flag": format_flag,
    "text": format_text,
    "list": format_list,
}
