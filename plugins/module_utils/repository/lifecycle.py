# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring a repository to the state asked: created or opened, a key slot added or removed.

``dry_run`` answers what would change without writing anything, so the
repository module's check mode is this same code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    KeySlotError,
    RepositoryNotFoundError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import (
    DEFAULT_CHUNK_SIZE,
    FORMAT_VERSION,
    Repository,
    check_chunk_size,
)

STATES = ("present", "opened")

# The keys of Repository.report(): a dry-run creation returns them too, null where only the creation decides.
REPORT_KEYS = ("location", "repository_id", "format_version", "created", "chunk_size", "cipher", "chunk_id",
               "compression", "key_slots", "opened_with_slot", "size_bytes", "chunk_count", "chunk_bytes",
               "backup_count", "staged_count", "quarantined_count")


def ensure_repository(location, credential, state="present", chunk_size=None, add_slot=None, add_slot_label="",
                      remove_slot=None, dry_run=False, warn=None):
    """The repository at ``location`` in the state asked; returns a result dict.

    ``state`` "present" creates a missing repository, "opened" requires one.
    ``add_slot`` is the Credential of a key slot to add (nothing changes if one
    already opens with it); ``remove_slot`` a slot id or label, never the last one.
    ``warn`` receives each one-line warning (an unreadable key slot skipped).
    """
    if state not in STATES:
        raise InvalidArgumentError("state must be one of %s, not %r" % (", ".join(STATES), state))
    if chunk_size is not None:
        check_chunk_size(chunk_size)
    result = {"changed": False, "created": False, "key_slot_added": None, "key_slot_removed": None}

    if not Repository.exists(location):
        if state == "opened":
            raise RepositoryNotFoundError("no repository at %s" % location)
        result.update(changed=True, created=True)
        if dry_run:
            # Nothing exists to open: say what would be created.
            result["repository"] = dict((name, None) for name in REPORT_KEYS)
            result["repository"].update(location=location, format_version=FORMAT_VERSION,
                                        chunk_size=chunk_size or DEFAULT_CHUNK_SIZE, key_slots=[])
            return result
        repository = Repository.create(location, credential, chunk_size or DEFAULT_CHUNK_SIZE)
    else:
        repository = Repository.open(location, credential)
        if chunk_size is not None and chunk_size != repository.chunk_size:
            raise InvalidArgumentError("the chunk size of repository %s is %d and cannot change"
                                       % (repository.location, repository.chunk_size))

    if add_slot is not None and repository.find_slot(add_slot) is None:
        result["changed"] = True
        result["key_slot_added"] = "would-add" if dry_run else repository.add_slot(add_slot, label=add_slot_label)

    if remove_slot:
        slot_id = repository.resolve_slot(remove_slot)
        if slot_id is not None:
            if len(repository.key_slots()) == 1:
                raise KeySlotError("key slot %s is the last one of repository %s and cannot be removed"
                                   % (slot_id, repository.location))
            result["changed"] = True
            result["key_slot_removed"] = slot_id
            if not dry_run:
                repository.remove_slot(slot_id)

    result["repository"] = repository.report()
    for warning in repository.warnings:
        if warn is not None:
            warn(warning)
    return result
