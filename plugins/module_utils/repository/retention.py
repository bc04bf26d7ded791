# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention rules as pure functions (no I/O, no clock).

Rules apply to the backups of one VM at a time.  ``keep_last`` keeps the N
newest.  ``keep_daily``/``keep_weekly``/``keep_monthly`` keep, for each of
the N newest days/ISO weeks/months (UTC) that have a backup, the newest backup
of that period.  A backup kept by any rule is kept.  With no rule at all every
backup is kept.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

RULES = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")


def _period(rule, when):
    if rule == "keep_daily":
        return when.strftime("%Y-%m-%d")
    if rule == "keep_weekly":
        year, week, _day = when.isocalendar()
        return "%04d-W%02d" % (year, week)
    if rule == "keep_monthly":
        return when.strftime("%Y-%m")
    raise ValueError(rule)


def apply_policy(backups, keep_last=0, keep_daily=0, keep_weekly=0, keep_monthly=0):
    """Decide which backups of one VM to keep.

    ``backups`` is an iterable of (backup_id, aware or UTC datetime).  Returns
    (kept, removed): ``kept`` maps each kept id to the list of reasons
    (e.g. ``["last 1", "daily 2026-11-30"]``), ``removed`` lists the other ids,
    newest first.
    """
    counts = {"keep_last": keep_last or 0, "keep_daily": keep_daily or 0,
              "keep_weekly": keep_weekly or 0, "keep_monthly": keep_monthly or 0}
    for rule, count in counts.items():
        if count < 0:
            raise ValueError("%s must not be negative" % rule)
    ordered = sorted(backups, key=lambda item: (item[1], item[0]), reverse=True)
    if not any(counts.values()):
        return dict((backup_id, ["no retention rule"]) for backup_id, _when in ordered), []
    kept = {}
    for index, (backup_id, _when) in enumerate(ordered[:counts["keep_last"]]):
        kept.setdefault(backup_id, []).append("last %d" % (index + 1))
    for rule in ("keep_daily", "keep_weekly", "keep_monthly"):
        seen = []
        for backup_id, when in ordered:
            if len(seen) >= counts[rule]:
                break
            period = _period(rule, when)
            if seen and seen[-1] == period:
                continue
            seen.append(period)
            kept.setdefault(backup_id, []).append("%s %s" % (rule[len("keep_"):], period))
    removed = [backup_id for backup_id, _when in ordered if backup_id not in kept]
    return kept, removed
