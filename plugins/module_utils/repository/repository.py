# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository facade: create, open, key slots, staged backups, reading, verify and prune.

Typical backup (each step may be a separate process on a separate host)::

    repo = Repository.open(path, Credential.from_password(pw))
    staged = repo.start_backup({"name": "app01", "uuid": "..."})
    staged.put_metadata(metadata, secrets={"encryption.bundle": bundle})
    staged.put_nvram(nvram_bytes)
    with repo.staged_backup(staged.backup_id).open_disk("2000", capacity) as disk:
        disk.write_blocks(reader)             # (offset, bytes), chunk aligned
        disk.set_change_id(change_id)
    repo.staged_backup(staged.backup_id).commit()
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import hmac
import json
import os
import re
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import (
    envelope,
    flush,
    keys as keyslots,
    locks,
    manifest,
    patches,
    staging,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.backend import LocalBackend
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import ChunkStore
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackupNotFoundError,
    IntegrityError,
    KeySlotError,
    MissingDataError,
    RepositoryError,
    RepositoryExistsError,
    RepositoryNotFoundError,
    UnsupportedFormatError,
    WrongKeyError,
)

FORMAT_NAME = "vmcrypt.backup repository"
FORMAT_VERSION = 2
CONFIG = "config"
KEYS_PREFIX = "keys"
QUARANTINE_PREFIX = "quarantine"
# A file of this size lets prune take its lock on a full file system (it deletes it first, then writes it again).
RESERVE = "reserve"
RESERVE_SIZE = 1 << 20
MAX_CONFIG_SIZE = 64 << 10
REPOSITORY_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
CONFIG_MAC_PREFIX = b"vmcrypt.backup config v2\x00"
DEFAULT_CHUNK_SIZE = 4 << 20
MIN_CHUNK_SIZE = 4 << 10
MAX_CHUNK_SIZE = 64 << 20


_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(i?B)?\s*$", re.IGNORECASE)


def parse_size(value):
    """Bytes from ``4194304``, ``4M``, ``4MiB`` or ``64KiB`` (binary units)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise InvalidArgumentError("%r is not a size (examples: 4MiB, 512KiB, 1048576)" % (value,))
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


def check_chunk_size(chunk_size):
    chunk_size = int(chunk_size)
    if chunk_size < MIN_CHUNK_SIZE or chunk_size > MAX_CHUNK_SIZE or chunk_size & (chunk_size - 1):
        raise InvalidArgumentError("chunk size must be a power of two between 4 KiB and 64 MiB, not %d" % chunk_size)
    return chunk_size


def _config_mac(data_keys, config):
    body = dict((key, value) for key, value in config.items() if key != "mac")
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return data_keys.config_mac(CONFIG_MAC_PREFIX + data).hex()


def _read_config(backend):
    """The plaintext config, its version and fields checked before anything else is read."""
    try:
        blob = backend.get(CONFIG, max_size=MAX_CONFIG_SIZE)
    except MissingDataError:
        raise RepositoryNotFoundError("no repository at %s" % backend.location)
    try:
        config = json.loads(blob.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("repository config at %s is not valid JSON" % backend.location)
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise IntegrityError("%s is not a vmcrypt.backup repository" % backend.location)
    version = config.get("version")
    if version != FORMAT_VERSION:
        if isinstance(version, int) and not isinstance(version, bool) and version < FORMAT_VERSION:
            raise UnsupportedFormatError(
                "repository %s has format version %d, which this collection no longer reads (it reads version %d): "
                "create a new repository for new backups and read the old one with the collection release that "
                "wrote it" % (backend.location, version, FORMAT_VERSION))
        raise UnsupportedFormatError("repository %s has format version %s; this collection reads version %d only"
                                     % (backend.location, keyslots._short(version), FORMAT_VERSION))
    if not isinstance(config.get("id"), str) or not REPOSITORY_ID_PATTERN.match(config["id"]):
        raise IntegrityError("repository config at %s has no valid id (32 hex digits)" % backend.location)
    if not isinstance(config.get("mac"), str):
        raise IntegrityError("repository config at %s has no MAC" % backend.location)
    return config


def _backend_for(location):
    if hasattr(location, "put"):
        return location
    return LocalBackend(location)


class Repository(object):
    """An open repository.  Create one with ``create`` or ``open``.

    ``warnings`` collects one-line notices (a key slot skipped, a chunk
    quarantined) that a module passes to ``module.warn``.
    """

    lock_wait = 0.0
    # how writers flush chunk files (flush.py); set by the modules' repository_sync
    sync_level = flush.DEFAULT_SYNC_LEVEL
    RESERVE = RESERVE
    RESERVE_SIZE = RESERVE_SIZE

    def __init__(self, backend, config, data_keys, slot_id, warnings=None):
        self.backend = backend
        self.config = config
        self.keys = data_keys
        self.slot_id = slot_id
        self.warnings = list(warnings or [])
        self.chunks = ChunkStore(backend, data_keys, self.chunk_size, quarantine_prefix=QUARANTINE_PREFIX)

    location = property(lambda self: self.backend.location)
    repository_id = property(lambda self: self.config["id"])
    chunk_size = property(lambda self: self.config["chunk_size"])

    # -- create and open -----------------------------------------------------
    @classmethod
    def exists(cls, location):
        return _backend_for(location).exists(CONFIG)

    @classmethod
    def create(cls, location, credential, chunk_size=DEFAULT_CHUNK_SIZE, label="", scrypt_params=None):
        """Create a repository in an absent or empty directory; the config is written last."""
        backend = _backend_for(location)
        chunk_size = check_chunk_size(chunk_size)
        if not backend.is_repository_root_usable():
            if backend.exists(CONFIG):
                raise RepositoryExistsError("a repository already exists at %s" % backend.location)
            raise RepositoryExistsError("%s is not empty: a repository is created in an empty directory" % backend.location)
        for name in backend.list(KEYS_PREFIX):  # slots of a creation that stopped before its config
            backend.delete(name)
        for name in backend.temp_files():
            backend.delete_temp(name)
        data_keys = keyslots.DataKeys.generate()
        config = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "id": os.urandom(16).hex(),
            "created": manifest.iso_time(time.time()),
            "chunk_size": chunk_size,
            "cipher": "AES-256-GCM, a key per file from HKDF-SHA256",
            "chunk_id": "HMAC-SHA256",
            "compression": "zstd",
        }
        config["mac"] = _config_mac(data_keys, config)
        slot = keyslots.make_slot(config["id"], data_keys, credential, keyslots.check_slot_label(label),
                                  config["created"], scrypt_params)
        backend.put("%s/%s" % (KEYS_PREFIX, slot["id"]), json.dumps(slot, sort_keys=True, indent=1).encode("utf-8"))
        backend.put(CONFIG, json.dumps(config, sort_keys=True, indent=1).encode("utf-8"), overwrite=False)
        backend.put(RESERVE, bytes(RESERVE_SIZE))
        return cls(backend, config, data_keys, slot["id"])

    @classmethod
    def open(cls, location, credential):
        """Open with a password or key file; ``WrongKeyError`` if no slot opens.  Writes nothing.

        An unreadable or hostile key slot (bad JSON, a link or FIFO, scrypt
        parameters beyond the caps) is skipped with a warning in ``warnings``.
        """
        backend = _backend_for(location)
        config = _read_config(backend)
        warnings = []
        slots = cls._read_slots(backend, warnings)
        if not slots:
            detail = ": %s" % warnings[0] if warnings else ""
            raise IntegrityError("repository %s has no readable key slot%s" % (backend.location, detail))
        for slot in slots:
            try:
                data_keys = keyslots.try_open_slot(config["id"], slot, credential)
            except (IntegrityError, UnsupportedFormatError) as error:
                warnings.append("key slot %s skipped: %s" % (slot["id"], error))
                continue
            if data_keys is not None:
                if not hmac.compare_digest(config["mac"], _config_mac(data_keys, config)):
                    raise IntegrityError("repository config at %s was modified" % backend.location)
                try:
                    check_chunk_size(config["chunk_size"])
                except (InvalidArgumentError, KeyError, TypeError, ValueError):
                    raise IntegrityError("repository config at %s has an invalid chunk size" % backend.location)
                return cls(backend, config, data_keys, slot["id"], warnings)
        what = "password" if credential.kind == keyslots.KIND_PASSWORD else "key file"
        skipped = " (%d unreadable key slot(s) skipped: %s)" % (len(warnings), warnings[0]) if warnings else ""
        raise WrongKeyError("the %s does not open any key slot of repository %s%s" % (what, backend.location, skipped))

    @staticmethod
    def _read_slots(backend, warnings=None):
        """The readable slots; with ``warnings`` a list, unreadable ones are noted there and skipped."""
        slots = []
        irregular = []
        for name in backend.list(KEYS_PREFIX, irregular=irregular):
            try:
                slots.append(keyslots.parse_slot(backend.get(name, max_size=keyslots.MAX_SLOT_SIZE), name))
            except (IntegrityError, UnsupportedFormatError, MissingDataError) as error:
                if warnings is None:
                    raise
                if not isinstance(error, MissingDataError):
                    warnings.append("key slot %s skipped: %s" % (name, error))
        if warnings is not None:
            warnings.extend("%s skipped: it is not a regular file" % name for name in irregular)
        return slots

    # -- key slots ------------------------------------------------------------
    def _slots(self):
        return self._read_slots(self.backend, [])

    def key_slots(self):
        """Public facts of every readable slot (no salts, no wrapped keys)."""
        return [keyslots.public_slot(slot) for slot in self._slots()]

    def find_slot(self, credential):
        """Id of the slot ``credential`` opens, or None."""
        for slot in self._slots():
            try:
                if keyslots.try_open_slot(self.repository_id, slot, credential) is not None:
                    return slot["id"]
            except (IntegrityError, UnsupportedFormatError):
                continue
        return None

    def add_slot(self, credential, label="", scrypt_params=None):
        """Add a slot that opens this repository with ``credential``; returns its id."""
        slot = keyslots.make_slot(self.repository_id, self.keys, credential, keyslots.check_slot_label(label),
                                  manifest.iso_time(time.time()), scrypt_params)
        self.backend.put("%s/%s" % (KEYS_PREFIX, slot["id"]), json.dumps(slot, sort_keys=True, indent=1).encode("utf-8"))
        return slot["id"]

    def resolve_slot(self, id_or_label):
        """The slot id named by ``id_or_label`` (id first, then a unique label), or None."""
        slots = self._slots()
        for slot in slots:
            if slot["id"] == id_or_label:
                return slot["id"]
        matches = [slot["id"] for slot in slots if id_or_label and slot.get("label") == id_or_label]
        if len(matches) > 1:
            raise KeySlotError("several key slots are labelled %r; name one by id" % id_or_label)
        return matches[0] if matches else None

    def remove_slot(self, slot_id):
        """Remove a slot; the last slot is never removed."""
        slots = self._slots()
        if slot_id not in [slot["id"] for slot in slots]:
            raise KeySlotError("repository %s has no key slot %s" % (self.location, slot_id))
        if len(slots) == 1:
            raise KeySlotError("key slot %s is the last one of repository %s and cannot be removed" % (slot_id, self.location))
        self.backend.delete("%s/%s" % (KEYS_PREFIX, slot_id))

    # -- staged backups -----------------------------------------------------------
    def start_backup(self, vm, base_backup_id=None, tags=None, backup_id=None):
        """Begin a staged backup of ``vm`` (identity dict: name, uuid, ...); returns a StagedBackup."""
        staged = staging.StagedBackup(self, backup_id or manifest.new_backup_id())
        if self.backend.exists("%s/%s" % (manifest.PREFIX, staged.backup_id)):
            raise InvalidArgumentError("backup %s is already committed" % staged.backup_id)
        if base_backup_id is not None:
            self.read_manifest(base_backup_id)
        staged._start(vm, base_backup_id, tags)
        return staged

    def staged_backup(self, backup_id):
        """Reopen a staged backup (in a later step or on another host)."""
        staged = staging.StagedBackup(self, backup_id)
        staged.info()
        return staged

    def storage_now(self):
        """The storage's clock (this host's when the storage cannot be written to ask it)."""
        try:
            return self.backend.now()
        except RepositoryError:
            return time.time()

    def list_staged(self, now=None):
        result = []
        now = self.storage_now() if now is None else now
        live = dict((info.get("backup_id"), info) for _name, info in locks.live_locks(self.backend, now))
        for name in self.backend.list_dirs(staging.PREFIX):
            backup_id = name.rsplit("/", 1)[-1]
            if not manifest.BACKUP_ID_PATTERN.match(backup_id):
                continue
            staged = staging.StagedBackup(self, backup_id)
            try:
                vm = staged.info()["vm"]
            except (MissingDataError, BackupNotFoundError, IntegrityError):
                vm = None
            result.append({"backup_id": backup_id, "vm": vm, "parts": staged.parts(),
                           "last_change": staged.newest_change(), "in_use": backup_id in live})
        return result

    # -- committed backups ---------------------------------------------------------
    def backup_ids(self):
        """Ids of every committed backup; a manifest name that is not a regular file is listed (reading it fails)."""
        ids = []
        irregular = []
        names = self.backend.list(manifest.PREFIX, irregular=irregular)
        for name in names + irregular:
            backup_id = name.rsplit("/", 1)[-1]
            if manifest.BACKUP_ID_PATTERN.match(backup_id):
                ids.append(backup_id)
        return sorted(ids)

    def read_manifest(self, backup_id):
        return self.read_manifest_file(backup_id)[0]

    def read_manifest_file(self, backup_id):
        """(Manifest, the manifest file's bytes) of a committed backup."""
        manifest.check_backup_id(backup_id)
        name = "%s/%s" % (manifest.PREFIX, backup_id)
        try:
            blob = self.backend.get(name, max_size=manifest.MAX_DOCUMENT_SIZE)
        except MissingDataError:
            raise BackupNotFoundError("no backup %s in repository %s" % (backup_id, self.location))
        document = manifest.open_json(self.keys, envelope.MAGIC_MANIFEST, backup_id, blob, "manifest %s" % name)
        if document.get("backup_id") != backup_id or document.get("repository_id") != self.repository_id:
            raise IntegrityError("manifest %s belongs to another backup or repository" % name)
        return manifest.Manifest(document), blob

    def reading(self, operation="read"):
        """A shared lock for a reader (a restore, a listing that must stay whole): ``with repo.reading("restore"):``.

        While it is held, prune refuses to run, so no chunk the reader needs
        disappears under it.
        """
        return locks.acquire(self.backend, locks.SHARED, operation, wait=self.lock_wait)

    def list_backups(self, vm=None, latest=False, errors=None):
        """Manifests, oldest first; ``vm`` matches name, uuid or instance_uuid; ``latest`` keeps the newest per VM.

        An unreadable manifest raises, unless ``errors`` is a list: then
        ``{"backup_id", "error"}`` is appended to it and the listing goes on.
        """
        result = []
        for backup_id in self.backup_ids():
            try:
                item = self.read_manifest(backup_id)
            except BackupNotFoundError:
                continue  # removed by a prune since the listing
            except (IntegrityError, UnsupportedFormatError) as error:
                if errors is None:
                    raise
                errors.append({"backup_id": backup_id, "error": str(error)})
                continue
            identity = item.vm
            if vm is not None and vm not in (identity.get("name"), identity.get("uuid"), identity.get("instance_uuid")):
                continue
            result.append(item)
        if latest:
            newest = {}
            for item in result:
                newest[manifest.vm_identity_key(item.vm)] = item
            result = sorted(newest.values(), key=lambda item: item.backup_id)
        return result

    def read_disk(self, backup_id, key):
        """Yield (offset, bytes) for every block of a backed-up disk, zeros included, in order.

        Holds a shared lock while it runs, so a prune cannot remove chunks under it.
        """
        with self.reading("read disk %s of backup %s" % (key, backup_id)):
            index = self.read_manifest(backup_id).disk_index(key)
            for offset, length, chunk_id, patch_list in index.extents():
                yield offset, patches.read_block(self.chunks.get, chunk_id, length, patch_list,
                                                 "block at offset %d of disk %s" % (offset, key))

    def read_nvram(self, backup_id):
        """Yield the saved NVRAM's bytes a chunk at a time, checked against its size and sha256."""
        saved = self.read_manifest(backup_id)
        if saved.nvram is None:
            raise MissingDataError("backup %s holds no NVRAM" % backup_id)
        digest = hashlib.sha256()
        size = 0
        for length, chunk_id in saved.nvram_chunks():
            data = self.chunks.get(chunk_id)
            if len(data) != length:
                raise IntegrityError("an NVRAM chunk of backup %s has the wrong length" % backup_id)
            digest.update(data)
            size += length
            yield data
        if (size, digest.hexdigest()) != (saved.nvram["size"], saved.nvram["sha256"]):
            raise IntegrityError("the NVRAM of backup %s does not match its recorded size and sha256" % backup_id)

    # -- facts --------------------------------------------------------------
    def report(self):
        """Format version, chunk size, key slots, size, backup count: nothing secret."""
        chunk_count, chunk_bytes = self.backend.total_size("chunks")
        _count, total_bytes = self.backend.total_size("")
        return {
            "location": self.location,
            "repository_id": self.repository_id,
            "format_version": self.config["version"],
            "created": self.config.get("created"),
            "chunk_size": self.chunk_size,
            "cipher": self.config.get("cipher"),
            "chunk_id": self.config.get("chunk_id"),
            "compression": self.config.get("compression"),
            "key_slots": self.key_slots(),
            "opened_with_slot": self.slot_id,
            "size_bytes": total_bytes,
            "chunk_count": chunk_count,
            "chunk_bytes": chunk_bytes,
            "backup_count": len(self.backup_ids()),
            "staged_count": len(self.backend.list_dirs(staging.PREFIX)),
            "quarantined_count": len(self.backend.list(QUARANTINE_PREFIX)),
        }

    # -- maintenance ---------------------------------------------------------------
    def verify(self, backup_ids=None, sample=None, threads=None, quarantine=True):
        from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import verify
        return verify.verify(self, backup_ids, sample=sample, threads=threads, quarantine=quarantine)

    def prune(self, dry_run=False, abandoned_after=24 * 3600.0, grace=None, **rules):
        from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import prune
        return prune.prune(self, dry_run=dry_run, abandoned_after=abandoned_after, grace=grace, **rules)


def credential_from(password=None, key_file=None):
    """The Credential of the module options / environment; exactly one source is allowed."""
    if password and key_file:
        raise InvalidArgumentError("give the repository password or a key file, not both")
    if key_file:
        return keyslots.Credential.from_key_file(key_file)
    if password:
        return keyslots.Credential.from_password(password)
    raise InvalidArgumentError("the repository needs a password (repository_password or VMCRYPT_REPOSITORY_PASSWORD) or a key file")
