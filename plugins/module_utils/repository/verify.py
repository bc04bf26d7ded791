# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read back and authenticate what backups reference, and check each VM's chain of backups.

Every referenced chunk is checked once, however many backups share it; a
problem is reported for each (backup, disk, offset) that uses the chunk.
In sampled mode every chunk is checked for presence, and only a random
fraction is read and authenticated.  A chunk found corrupt is moved to
``quarantine/`` (unless ``quarantine`` is false, as in check mode): it then
counts as missing, so the next backup of the same data stores it again
instead of deduplicating against the damaged copy.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import math
import random
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import chain, locks
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    MissingDataError,
    RepositoryError,
    UnsupportedFormatError,
)

MAX_REPORTED = 1000
MAX_THREADS = 64


def _check(chunks, chunk_id, authenticate):
    try:
        if authenticate:
            chunks.get(chunk_id)
        elif not chunks.exists(chunk_id):
            return "missing", "chunk file is missing"
    except MissingDataError:
        return "missing", "chunk file is missing"
    except (IntegrityError, UnsupportedFormatError) as error:
        return "corrupt", str(error)
    return "ok", None


def check_threads(threads):
    if threads is None:
        return 4
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise InvalidArgumentError("threads must be a whole number from 1 to %d, not %r" % (MAX_THREADS, threads))
    return threads


def check_sample(sample):
    if sample is None:
        return None
    if isinstance(sample, bool) or not isinstance(sample, (int, float)) or not 0 < sample <= 1:
        raise InvalidArgumentError("the verify sample must be a fraction above 0 and at most 1")
    return float(sample)


def verify(repository, backup_ids=None, sample=None, threads=None, quarantine=True):
    """Check backups (all when ``backup_ids`` is None); ``sample`` is a fraction in (0, 1]."""
    sample = check_sample(sample)
    workers = check_threads(threads)
    quarantined = []
    with locks.acquire(repository.backend, locks.SHARED, "verify", wait=repository.lock_wait):
        ids = repository.backup_ids() if backup_ids is None else list(backup_ids)
        references = {}
        manifest_errors = []
        checked = {}
        for backup_id in ids:
            try:
                item, blob = repository.read_manifest_file(backup_id)
                disks = [(key, item.disk_index(key)) for key in item.disk_keys]
                nvram = item.nvram_chunks()
            except (RepositoryError, KeyError, TypeError, ValueError) as error:
                manifest_errors.append({"backup_id": backup_id, "error": str(error)})
                continue
            checked[backup_id] = (item, blob)
            for key, index in disks:
                for chunk_id, offset in index.chunk_references():
                    references.setdefault(chunk_id, []).append((backup_id, key, offset))
            offset = 0
            for length, chunk_id in nvram:  # the NVRAM's chunks, reported as disk "nvram"
                references.setdefault(chunk_id, []).append((backup_id, "nvram", offset))
                offset += length
        chain_errors = chain.check(repository, checked, complete=backup_ids is None and not manifest_errors)
        unique = sorted(references)
        if sample is None or sample >= 1:
            to_authenticate = set(unique)
        else:
            count = int(math.ceil(sample * len(unique)))
            to_authenticate = set(random.SystemRandom().sample(unique, count))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(lambda chunk_id: _check(repository.chunks, chunk_id, chunk_id in to_authenticate),
                                     unique))
        if quarantine:
            for chunk_id, (status, _message) in zip(unique, outcomes):
                if status == "corrupt" and repository.chunks.quarantine(chunk_id):
                    quarantined.append(binascii.hexlify(chunk_id).decode("ascii"))
    if quarantined:
        repository.warnings.append("%d corrupt chunk(s) moved to quarantine/: the next backup of their data stores "
                                   "them again" % len(quarantined))
    problems = {"missing": [], "corrupt": []}
    counts = {"missing": 0, "corrupt": 0}
    bad_backups = set()
    for chunk_id, (status, message) in zip(unique, outcomes):
        if status == "ok":
            continue
        for backup_id, key, offset in sorted(references[chunk_id]):
            counts[status] += 1
            bad_backups.add(backup_id)
            if len(problems[status]) < MAX_REPORTED:
                problems[status].append({"backup_id": backup_id, "disk": key, "offset": offset,
                                         "chunk": binascii.hexlify(chunk_id).decode("ascii"), "error": message})
    bad_backups.update(error["backup_id"] for error in manifest_errors)
    bad_backups.update(error["backup_id"] for error in chain_errors if error["backup_id"])
    return {
        "ok": not bad_backups and not chain_errors,
        "backups_checked": len(checked),
        "backups_failed": sorted(bad_backups),
        "chunks_referenced": len(unique),
        "chunks_authenticated": len(to_authenticate),
        "sampled": len(to_authenticate) < len(unique),
        "missing_count": counts["missing"],
        "corrupt_count": counts["corrupt"],
        "missing": problems["missing"],
        "corrupt": problems["corrupt"],
        "manifest_errors": manifest_errors,
        "chain_errors": chain_errors,
        "quarantined": quarantined[:MAX_REPORTED],
        "quarantined_count": len(quarantined),
    }
