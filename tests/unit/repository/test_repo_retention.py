"""Retention rules (pure functions), with properties checked by hypothesis."""
import datetime

from hypothesis import given, strategies as st

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.retention import apply_policy

UTC = datetime.timezone.utc
moments = st.lists(st.datetimes(min_value=datetime.datetime(2024, 1, 1), max_value=datetime.datetime(2026, 12, 31)),
                   min_size=0, max_size=40, unique=True)
counts = st.integers(0, 6)
positive = st.integers(1, 6)  # 0 for every rule means "no rule": keep all


def _backups(times):
    return [("b%03d" % i, when.replace(tzinfo=UTC)) for i, when in enumerate(times)]


@given(moments, counts, counts, counts, counts)
def test_every_backup_is_kept_or_removed_never_both(times, last, daily, weekly, monthly):
    backups = _backups(times)
    kept, removed = apply_policy(backups, keep_last=last, keep_daily=daily, keep_weekly=weekly, keep_monthly=monthly)
    assert set(kept).isdisjoint(removed)
    assert set(kept) | set(removed) == {b for b, _when in backups}
    if backups and (last or daily or weekly or monthly):
        newest = max(backups, key=lambda item: (item[1], item[0]))[0]
        assert newest in kept  # any rule keeps the newest backup


@given(moments, positive)
def test_keep_last_keeps_exactly_the_newest(times, last):
    backups = _backups(times)
    kept, _removed = apply_policy(backups, keep_last=last)
    newest = [b for b, _when in sorted(backups, key=lambda item: item[1], reverse=True)[:last]]
    assert set(kept) == set(newest)


@given(moments, positive)
def test_keep_daily_keeps_one_per_day_for_the_newest_days(times, daily):
    backups = _backups(times)
    kept, _removed = apply_policy(backups, keep_daily=daily)
    days = sorted({when.date() for _backup_id, when in backups}, reverse=True)[:daily]
    assert sorted(dict(backups)[b].date() for b in kept) == sorted(days)


def test_no_rule_keeps_everything():
    kept, removed = apply_policy(_backups([datetime.datetime(2025, 1, d) for d in range(1, 5)]))
    assert removed == [] and len(kept) == 4


def test_example_policy():
    times = [datetime.datetime(2026, 11, day, hour) for day in range(1, 31) for hour in (1, 13)]
    backups = _backups(times)
    kept, removed = apply_policy(backups, keep_last=2, keep_daily=3, keep_weekly=2, keep_monthly=2)
    by_id = dict(backups)
    shown = sorted(by_id[b].strftime("%m-%d %H") for b in kept)
    # last 2: 30th 13h and 30th 1h; daily: 30, 29, 28 (13h each); weekly: week 48 (Sun 29th) and week 49 (30th)
    assert shown == ["11-28 13", "11-29 13", "11-30 01", "11-30 13"]
    assert kept[[b for b in kept if by_id[b] == datetime.datetime(2026, 11, 30, 13, tzinfo=UTC)][0]] == [
        "last 1", "daily 2026-11-30", "weekly 2026-W49", "monthly 2026-11"]
    assert len(removed) == len(backups) - 4
