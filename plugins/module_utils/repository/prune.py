# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply retention, drop abandoned staged backups, garbage-collect chunks.

Runs under the exclusive lock (refused while any live lock exists; stale
locks are removed).  Every age is judged by the storage's clock: the
modification time the storage gave prune's own lock file is "now".  Order:
decide from every manifest (an unreadable manifest stops the prune: its
chunks cannot be known), delete the manifests of removed backups, delete
abandoned staged backups, then delete every chunk that neither a kept
manifest nor a remaining staged backup references and that is older than
the grace period (``GRACE_PERIOD``: a writer whose lock was judged stale
still finds the chunks it wrote or touched), and the temporary files of
interrupted writers.  Interrupted at any point, the repository stays
consistent; a later prune finishes the work.

On a full file system prune cannot write its lock: it then deletes the
repository's ``reserve`` file first, and writes it again when done.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import math

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import chain, locks, manifest, retention, staging
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    LockedError,
    MissingDataError,
    RepositoryError,
    RepositoryFullError,
)

# Unreferenced chunks younger than this (storage time) are kept whatever the locks say.
GRACE_PERIOD = 6 * 3600.0


def _plan(repository, abandoned_after, rules, now):
    manifests = []
    for backup_id in repository.backup_ids():
        try:
            manifests.append(repository.read_manifest(backup_id))
        except RepositoryError as error:
            raise type(error)("cannot read backup %s, so its chunks are unknown; prune refused: %s" % (backup_id, error))
    groups = {}
    for item in manifests:
        groups.setdefault(manifest.vm_identity_key(item.vm), []).append(item)
    kept = []
    removed = []
    for vm_key, items in groups.items():
        by_id = dict((item.backup_id, item) for item in items)
        keep, drop = retention.apply_policy([(item.backup_id, item_time(item)) for item in items], **rules)
        # the backup the VM's head record names (the one committed last) is always kept: the chain ends there
        head = chain.read_head(repository, vm_key)
        if head is not None and head["backup_id"] in drop:
            drop.remove(head["backup_id"])
            keep[head["backup_id"]] = ["committed last"]
        kept.extend((by_id[backup_id], reasons) for backup_id, reasons in keep.items())
        removed.extend(by_id[backup_id] for backup_id in drop)
    staged_keep = []
    abandoned = []
    committed = set(repository.backup_ids())
    for staged in repository.list_staged(now):
        if staged["backup_id"] in committed and not staged["in_use"]:
            abandoned.append(staged)  # a commit stopped between writing the manifest and cleaning up
        elif not staged["in_use"] and staged["last_change"] < now - abandoned_after:
            abandoned.append(staged)
        else:
            staged_keep.append(staged)
    referenced = set()
    for item, _reasons in kept:
        referenced.update(item.chunk_ids())
    for staged in staged_keep:
        try:
            referenced.update(staging.StagedBackup(repository, staged["backup_id"]).chunk_ids())
        except RepositoryError as error:
            raise type(error)("cannot read staged backup %s; prune refused: %s" % (staged["backup_id"], error))
    unreferenced = [chunk_id for chunk_id in repository.chunks.list_ids() if chunk_id not in referenced]
    return sorted(kept, key=lambda pair: pair[0].backup_id), removed, abandoned, unreferenced


def item_time(item):
    return datetime.datetime.fromtimestamp(item.time, datetime.timezone.utc)


def check_hours(value, name):
    """A finite, non-negative number of seconds or hours (InvalidArgumentError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise InvalidArgumentError("%s must be a finite number, at least 0, not %r" % (name, value))
    return float(value)


def _lock(repository, warnings):
    """The exclusive lock; on a full file system the reserve file makes room for it."""
    backend = repository.backend
    try:
        return locks.acquire(backend, locks.EXCLUSIVE, "prune", remove_stale=True), False
    except RepositoryFullError:
        if not backend.exists(repository.RESERVE):
            raise
    backend.delete(repository.RESERVE)
    warnings.append("the repository's file system is full: prune used its reserved space to run")
    return locks.acquire(backend, locks.EXCLUSIVE, "prune", remove_stale=True), True


def _restore_reserve(repository, warnings):
    try:
        if not repository.backend.exists(repository.RESERVE):
            repository.backend.put(repository.RESERVE, bytes(repository.RESERVE_SIZE))
    except RepositoryFullError:
        warnings.append("the repository's file system is still full: its reserved space could not be set aside again")


def prune(repository, dry_run=False, abandoned_after=24 * 3600.0, keep_last=0, keep_daily=0, keep_weekly=0,
          keep_monthly=0, grace=None):
    """Apply the rules and collect garbage; ``grace`` (seconds, default ``GRACE_PERIOD``) keeps young chunks."""
    rules = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
             "keep_monthly": keep_monthly}
    for rule, count in rules.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgumentError("%s must be a whole number, at least 0, not %r" % (rule, count))
    abandoned_after = check_hours(abandoned_after, "abandoned_after")
    grace = GRACE_PERIOD if grace is None else check_hours(grace, "grace")
    backend = repository.backend
    warnings = []
    lock = None
    used_reserve = False
    if dry_run:
        now = repository.storage_now()
        stale = locks.stale_locks(backend, now)
        live = locks.live_locks(backend, now)
        if live:
            raise LockedError("repository %s is in use: %s" % (repository.location, locks.describe(live[0][1])))
    else:
        lock, used_reserve = _lock(repository, warnings)
        now = lock.storage_time
        stale = [None] * lock.stale_removed
    try:
        kept, removed, abandoned, unreferenced = _plan(repository, abandoned_after, rules, now)
        garbage = []
        young = 0
        freed = 0
        for chunk_id in unreferenced:
            try:
                size, mtime = backend.stat(chunk_name(chunk_id))
            except (MissingDataError, IntegrityError):
                continue
            if mtime > now - grace:
                young += 1
                continue
            garbage.append(chunk_id)
            freed += size
        # lock files are never garbage: a process may be writing one to ask for a lock
        temp_files = [name for name in backend.temp_files() if not name.startswith(locks.PREFIX + "/")]
        if not dry_run:
            for item in removed:
                backend.delete("%s/%s" % (manifest.PREFIX, item.backup_id))
            for staged in abandoned:
                staging.StagedBackup(repository, staged["backup_id"]).discard(lock_held=True)
            for chunk_id in garbage:
                repository.chunks.delete(chunk_id)
            for name in temp_files:
                backend.delete_temp(name)
            lock.check()
    finally:
        if lock is not None:
            lock.release()
            _restore_reserve(repository, warnings)
    repository.warnings.extend(warnings)
    return {
        "dry_run": dry_run,
        "kept_backups": [{"backup_id": item.backup_id, "vm": item.vm, "reasons": reasons} for item, reasons in kept],
        "removed_backups": [{"backup_id": item.backup_id, "vm": item.vm} for item in removed],
        "abandoned_staged_backups": [{"backup_id": staged["backup_id"], "vm": staged["vm"]} for staged in abandoned],
        "chunks_removed": len(garbage),
        "chunks_kept_in_grace": young,
        "bytes_freed": freed,
        "temp_files_removed": len(temp_files),
        "stale_locks_removed": 0 if dry_run else len(stale),
        "used_reserve": used_reserve,
    }
