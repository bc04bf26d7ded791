"""How the report writes figures."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.report.units import (
    format_bytes, format_rate, format_seconds, rate_of)


@pytest.mark.parametrize("value, text", [(None, "n/a"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                         (200 * 1024 * 1024, "200.0 MiB"), (3 << 40, "3.0 TiB"),
                                         (5 << 60, "5120.0 PiB")])
def test_bytes(value, text):
    assert format_bytes(value) == text


@pytest.mark.parametrize("value, text", [(None, "n/a"), (0.656, "0.7 s"), (59.94, "59.9 s"), (125, "2 min 05 s"),
                                         (7260, "2 h 01 min")])
def test_seconds(value, text):
    assert format_seconds(value) == text


@pytest.mark.parametrize("value, text", [(None, "n/a"), (0, "0.0 MiB/s"), (0.018181, "0.018 MiB/s"),
                                         (12.345, "12.3 MiB/s")])
def test_rate(value, text):
    assert format_rate(value) == text


def test_rate_of_needs_both_figures_and_some_time():
    assert rate_of(3 * 1024 * 1024, 2) == 1.5
    assert rate_of(None, 2) is None and rate_of(10, 0) is None and rate_of(10, None) is None
