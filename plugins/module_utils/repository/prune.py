# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Apply retention, drop abandoned staged backups, garbage-collect chunks.

Runs under the exclusive lock (refused while any live lock exists; stale
locks are removed).  Order: decide from every manifest (an unreadable
manifest stops the prune: its chunks cannot be known), delete the manifests
of removed backups, delete abandoned staged backups, then delete every chunk
that neither a kept manifest nor a remaining staged backup references, and
the temporary files of interrupted writers.  Interrupted at any point, the
repository stays consistent; a later prune finishes the work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import locks, manifest, retention, staging
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    LockedError,
    MissingDataError,
    RepositoryError,
)


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
    for items in groups.values():
        by_id = dict((item.backup_id, item) for item in items)
        keep, drop = retention.apply_policy([(item.backup_id, item_time(item)) for item in items], **rules)
        kept.extend((by_id[backup_id], reasons) for backup_id, reasons in keep.items())
        removed.extend(by_id[backup_id] for backup_id in drop)
    staged_keep = []
    abandoned = []
    committed = set(repository.backup_ids())
    for staged in repository.list_staged():
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
    garbage = [chunk_id for chunk_id in repository.chunks.list_ids() if chunk_id not in referenced]
    return sorted(kept, key=lambda pair: pair[0].backup_id), removed, abandoned, garbage


def item_time(item):
    return datetime.datetime.fromtimestamp(item.time, datetime.timezone.utc)


def prune(repository, dry_run=False, abandoned_after=24 * 3600.0, keep_last=0, keep_daily=0, keep_weekly=0,
          keep_monthly=0):
    rules = {"keep_last": keep_last, "keep_daily": keep_daily, "keep_weekly": keep_weekly,
             "keep_monthly": keep_monthly}
    backend = repository.backend
    now = time.time()
    lock = None
    stale = []
    for name in locks.list_locks(backend):
        info = locks.read_lock(backend, name)
        if info is not None and locks.is_stale(info):
            stale.append(name)
    if dry_run:
        live = locks.live_locks(backend)
        if live:
            raise LockedError("repository %s is in use: %s" % (repository.location, locks.describe(live[0][1])))
    else:
        lock = locks.acquire(backend, locks.EXCLUSIVE, "prune", remove_stale=True)
    try:
        kept, removed, abandoned, garbage = _plan(repository, abandoned_after, rules, now)
        freed = 0
        for chunk_id in garbage:
            try:
                freed += backend.stat(chunk_name(chunk_id))[0]
            except MissingDataError:
                pass
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
    finally:
        if lock is not None:
            lock.release()
    return {
        "dry_run": dry_run,
        "kept_backups": [{"backup_id": item.backup_id, "vm": item.vm, "reasons": reasons} for item, reasons in kept],
        "removed_backups": [{"backup_id": item.backup_id, "vm": item.vm} for item in removed],
        "abandoned_staged_backups": [{"backup_id": staged["backup_id"], "vm": staged["vm"]} for staged in abandoned],
        "chunks_removed": len(garbage),
        "bytes_freed": freed,
        "temp_files_removed": len(temp_files),
        "stale_locks_removed": 0 if dry_run else len(stale),
    }
