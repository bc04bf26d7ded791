# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup manifests, backup ids and per-disk chunk indexes.

A manifest (``backups/<backup id>``) is a JSON object sealed in the envelope
with magic ``VMCM`` and the ASCII backup id as context.  It is written last,
so a backup exists exactly when its manifest does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import calendar
import json
import os
import re
import struct
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    UnsupportedFormatError,
)

# Version 3 adds block patches (``DiskIndex.patches``); a manifest without any is still written as version 2, so
# that the collection releases before patches keep reading every backup they can restore correctly.
MANIFEST_VERSION = 3
PLAIN_MANIFEST_VERSION = 2
READABLE_MANIFEST_VERSIONS = (PLAIN_MANIFEST_VERSION, MANIFEST_VERSION)
PREFIX = "backups"
# The largest manifest or staged part read: 1 GiB holds the indexes of about 20 fully used 62 TiB disks at 4 MiB chunks.
MAX_DOCUMENT_SIZE = 1 << 30
BACKUP_ID_PATTERN = re.compile(r"^(\d{8}T\d{6})Z-([0-9a-f]{8})$")
DISK_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
INDEX_RECORD = struct.Struct(">Q32s")
PATCH_RECORD = struct.Struct(">QII32s")  # block number, offset in the block, length, chunk id


def vm_identity_key(vm):
    """What makes two backups belong to the same VM: instance uuid, else uuid, else name."""
    return vm.get("instance_uuid") or vm.get("uuid") or vm.get("name") or ""


def new_backup_id(now=None):
    """``YYYYMMDDTHHMMSSZ-<8 random hex>``: unique, and sorts by creation time (UTC, 1 s)."""
    now = time.time() if now is None else now
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now)) + "-" + binascii.hexlify(os.urandom(4)).decode("ascii")


def check_backup_id(backup_id):
    if not isinstance(backup_id, str) or not BACKUP_ID_PATTERN.match(backup_id):
        raise InvalidArgumentError("%r is not a backup id (expected YYYYMMDDTHHMMSSZ-xxxxxxxx)" % (backup_id,))
    return backup_id


def backup_time(backup_id):
    """Epoch seconds encoded in a backup id."""
    match = BACKUP_ID_PATTERN.match(backup_id)
    return calendar.timegm(time.strptime(match.group(1), "%Y%m%dT%H%M%S"))


def check_disk_key(key):
    key = str(key)
    if not DISK_KEY_PATTERN.match(key):
        raise InvalidArgumentError("disk key %r must be 1-64 characters of A-Z a-z 0-9 _ . : -" % key)
    return key


def iso_time(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class DiskIndex(object):
    """Which chunk holds each aligned block of one disk; absent blocks read as zeros.

    ``patches`` lays chunks over parts of a block: block number -> [(offset
    in the block, length, chunk id)], applied in order over the block's chunk
    (or zeros), so a later patch wins where two overlap.  An incremental
    backup stores the changed pieces of a block this way instead of a whole
    new chunk (``patches.py`` decides when a block is rewritten instead).
    """

    def __init__(self, capacity, chunk_size, entries=None, patches=None):
        self.capacity = int(capacity)
        self.chunk_size = int(chunk_size)
        self.entries = dict(entries or {})
        self.patches = dict((number, list(patch_list)) for number, patch_list in (patches or {}).items())

    @property
    def block_count(self):
        return (self.capacity + self.chunk_size - 1) // self.chunk_size

    def block_length(self, number):
        return min(self.chunk_size, self.capacity - number * self.chunk_size)

    def encode(self):
        records = b"".join(INDEX_RECORD.pack(number, chunk_id) for number, chunk_id in sorted(self.entries.items()))
        return base64.b64encode(records).decode("ascii")

    def encode_patches(self):
        """The patches as base64 of PATCH_RECORDs (block order, then the order they apply in), or None."""
        records = b"".join(PATCH_RECORD.pack(number, offset, length, chunk_id)
                           for number in sorted(self.patches)
                           for offset, length, chunk_id in self.patches[number])
        return base64.b64encode(records).decode("ascii") if records else None

    @staticmethod
    def _records(text, record, what, name):
        try:
            records = base64.b64decode(text.encode("ascii"), validate=True)
        except (ValueError, TypeError, AttributeError):
            raise IntegrityError("%s has an unreadable %s" % (what, name))
        if len(records) % record.size:
            raise IntegrityError("%s has a truncated %s" % (what, name))
        return [record.unpack_from(records, offset) for offset in range(0, len(records), record.size)]

    @classmethod
    def decode(cls, capacity, chunk_size, text, what, patches_text=None):
        index = cls(capacity, chunk_size)
        for number, chunk_id in cls._records(text, INDEX_RECORD, what, "chunk index"):
            if number >= index.block_count:
                raise IntegrityError("%s indexes a block beyond the disk capacity" % what)
            index.entries[number] = chunk_id
        for number, offset, length, chunk_id in cls._records(patches_text or "", PATCH_RECORD, what, "patch list"):
            if number >= index.block_count or length == 0 or offset + length > index.block_length(number):
                raise IntegrityError("%s patches block %d beyond its bounds" % (what, number))
            index.patches.setdefault(number, []).append((offset, length, chunk_id))
        return index

    def extents(self):
        """(offset, length, chunk id or None for zeros, patches) for every block, in order."""
        for number in range(self.block_count):
            yield (number * self.chunk_size, self.block_length(number), self.entries.get(number),
                   tuple(self.patches.get(number, ())))

    def holds_data(self, number):
        """False for a hole: a block with neither a chunk nor patches."""
        return number in self.entries or bool(self.patches.get(number))

    def stored_bytes(self):
        return sum(self.block_length(number) for number in set(self.entries) | set(self.patches)
                   if self.holds_data(number))

    def chunk_references(self):
        """(chunk id, offset on the disk) of every chunk the index names, patches included."""
        for number, chunk_id in self.entries.items():
            yield chunk_id, number * self.chunk_size
        for number, patch_list in self.patches.items():
            for offset, _length, chunk_id in patch_list:
                yield chunk_id, number * self.chunk_size + offset

    def chunk_ids(self):
        return set(chunk_id for chunk_id, _offset in self.chunk_references())


def disk_document_index(document, what):
    """The DiskIndex of a disk part or a manifest's disk entry."""
    return DiskIndex.decode(document["capacity"], document["chunk_size"], document["index"], what,
                            patches_text=document.get("patches"))


def manifest_version(disks):
    """The version a manifest with these disk entries is written as: 3 only when a disk has patches."""
    return MANIFEST_VERSION if any(disk.get("patches") for disk in disks) else PLAIN_MANIFEST_VERSION


def seal_json(keys, magic, context, document):
    data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return envelope.seal(keys, magic, context.encode("ascii"), data)


def open_json(keys, magic, context, blob, what):
    data = envelope.open_sealed(keys, magic, context.encode("ascii"), blob, what)
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("%s is authenticated but not valid JSON" % what)
    if not isinstance(document, dict):
        raise IntegrityError("%s is not a JSON object" % what)
    return document


class Manifest(object):
    """A committed backup, decrypted.  ``summary()`` is what may be shown; the rest may hold secrets."""

    def __init__(self, document):
        if document.get("version") not in READABLE_MANIFEST_VERSIONS:
            raise UnsupportedFormatError("backup manifest has version %r; this code reads versions %s"
                                         % (document.get("version"),
                                            " and ".join(str(version) for version in READABLE_MANIFEST_VERSIONS)))
        self.document = document

    backup_id = property(lambda self: self.document["backup_id"])
    vm = property(lambda self: self.document.get("vm") or {})
    # {"backup_id", "sha256"} of the VM's backup before this one, or None
    previous = property(lambda self: self.document.get("previous") or None)
    metadata = property(lambda self: self.document.get("metadata"))
    time = property(lambda self: backup_time(self.document["backup_id"]))

    @property
    def secrets(self):
        """Secrets captured with the metadata (e.g. ``encryption.bundle``).  Never log these."""
        return dict(self.document.get("secrets") or {})

    @property
    def nvram(self):
        """{"size", "sha256"} of the saved NVRAM, or None; ``Repository.read_nvram`` streams its bytes."""
        nvram = self.document.get("nvram")
        if not nvram:
            return None
        return {"size": nvram["size"], "sha256": nvram["sha256"]}

    def nvram_chunks(self):
        """[(length, chunk id)] of the saved NVRAM, in order ([] when none was saved)."""
        return [(length, bytes.fromhex(chunk_id))
                for length, chunk_id in (self.document.get("nvram") or {}).get("chunks") or []]

    @property
    def disk_keys(self):
        return [disk["key"] for disk in self.document.get("disks", [])]

    def disk(self, key):
        for disk in self.document.get("disks", []):
            if disk["key"] == str(key):
                return disk
        raise InvalidArgumentError("backup %s has no disk %r" % (self.backup_id, key))

    def disk_index(self, key):
        return disk_document_index(self.disk(key), "disk %s of backup %s" % (key, self.backup_id))

    def change_id(self, key):
        """The CBT changeId recorded for a disk (for the next incremental), or None."""
        return self.disk(key).get("change_id")

    def chunk_ids(self):
        """Every chunk id this backup references (disks and the NVRAM)."""
        ids = set(chunk_id for _length, chunk_id in self.nvram_chunks())
        for key in self.disk_keys:
            ids.update(self.disk_index(key).chunk_ids())
        return ids

    def warnings(self):
        warnings = list(self.document.get("warnings") or [])
        metadata = self.metadata
        if metadata is None:
            warnings.append("no VM metadata was captured: keyId, encryption.bundle and storage policies are unknown")
        else:
            if metadata.get("key_id") and "encryption.bundle" not in self.secrets:
                warnings.append("the VM has a keyId but no encryption.bundle was saved: NVRAM will be unusable")
        if self.nvram is None:
            warnings.append("no NVRAM was saved: a generic NVRAM will be used at restore")
        return warnings

    def summary(self):
        """A description of the backup with no secret in it."""
        document = self.document
        metadata = self.metadata or {}
        disks = []
        for disk in document.get("disks", []):
            disks.append({
                "key": disk["key"],
                "capacity": disk["capacity"],
                "chunk_size": disk["chunk_size"],
                "change_id": disk.get("change_id"),
                "properties": disk.get("properties") or {},
                "stats": disk.get("stats") or {},
            })
        return {
            "backup_id": document["backup_id"],
            "vm": self.vm,
            "time": iso_time(self.time),
            "started": document.get("started"),
            "committed": document.get("committed"),
            "base_backup_id": document.get("base_backup_id"),
            "previous_backup_id": (self.previous or {}).get("backup_id"),
            "tags": document.get("tags") or {},
            "disks": disks,
            "stats": document.get("stats") or {},
            "nvram_saved": document.get("nvram") is not None,
            "nvram_size": (document.get("nvram") or {}).get("size"),
            "metadata_saved": document.get("metadata") is not None,
            "secrets_saved": sorted(self.secrets),
            "encryption": {
                "vm_key_id": metadata.get("key_id"),
                "encryption_bundle_saved": "encryption.bundle" in self.secrets,
                "repository_cipher": "AES-256-GCM",
            },
            "warnings": self.warnings(),
        }
