# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content-addressed, encrypted chunks.

A chunk is the plaintext of one aligned block of a disk (or of any blob).
Its id is HMAC-SHA256(id key, plaintext), stored as
``chunks/<first two hex digits>/<64 hex digits>`` in the envelope of
``envelope.py`` with magic ``VMCK`` and the 32 raw id bytes as context.
Reading a chunk authenticates the envelope *and* recomputes the id from the
plaintext.  All-zero blocks are never stored: indexes record them as holes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import os
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    MissingDataError,
    UnsafeFileError,
)

ID_SIZE = 32
PREFIX = "chunks"


def chunk_name(chunk_id):
    hex_id = binascii.hexlify(chunk_id).decode("ascii")
    return "%s/%s/%s" % (PREFIX, hex_id[:2], hex_id)


def id_from_name(name):
    """The raw id of ``chunks/xx/<hex>``, or None for a name that is not a chunk."""
    hex_id = name.rsplit("/", 1)[-1]
    if len(hex_id) != 2 * ID_SIZE:
        return None
    try:
        return binascii.unhexlify(hex_id)
    except (binascii.Error, TypeError, ValueError):
        return None


class ZeroCheck(object):
    """Tells all-zero blocks apart with one memcmp against a cached zero buffer.

    ``bytes == bytes`` (or a bytearray against bytes) is a memcmp that stops
    at the first differing byte; comparing memoryviews would go element by
    element, 100 times slower.
    """

    def __init__(self):
        self._zeros = {}

    def __call__(self, data):
        size = len(data)
        zeros = self._zeros.get(size)
        if zeros is None:
            zeros = self._zeros[size] = bytes(size)
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)
        return data == zeros


class ChunkStore(object):
    """Put and get chunks on a backend with the repository's data keys."""

    def __init__(self, backend, keys, max_chunk_size, quarantine_prefix="quarantine"):
        self.backend = backend
        self.keys = keys
        self.max_chunk_size = max_chunk_size
        self.quarantine_prefix = quarantine_prefix
        self._inflight = {}
        self._inflight_mutex = threading.Lock()

    def chunk_id(self, data):
        return self.keys.chunk_id(data)

    def exists(self, chunk_id):
        return self.backend.exists(chunk_name(chunk_id))

    def put(self, data, chunk_id=None, durable=True):
        """Store ``data``; returns (chunk id, bytes written, or 0 if the chunk was already there).

        ``durable=False`` publishes the chunk file without flushing it: the
        writer then owes a ``PendingFlush`` (``flush.py``) before any record
        names the chunk.

        Idempotent: a chunk that exists is not written again, and two writers
        racing on the same chunk each rename a complete, valid file.  A chunk
        that exists is touched (its modification time set to the storage's
        now), so prune's grace period keeps it even if this writer's lock is
        judged stale.
        """
        if len(data) > self.max_chunk_size:
            raise InvalidArgumentError("chunk of %d bytes exceeds the chunk size %d" % (len(data), self.max_chunk_size))
        if chunk_id is None:
            chunk_id = self.keys.chunk_id(data)
        name = chunk_name(chunk_id)
        with self._inflight_mutex:
            other = self._inflight.get(chunk_id)
            if other is None:
                mine = self._inflight[chunk_id] = threading.Event()
        if other is not None:  # another thread of this process writes the same chunk
            other.wait()
            if self.backend.exists(name):
                return chunk_id, 0
            return self.put(data, chunk_id, durable)
        try:
            try:
                self.backend.touch(name)
                return chunk_id, 0
            except MissingDataError:
                pass
            except UnsafeFileError:  # a link or FIFO where the chunk belongs: move it aside, store the chunk
                self.quarantine(chunk_id)
            sealed = envelope.seal(self.keys, envelope.MAGIC_CHUNK, chunk_id, data)
            written = self.backend.put(name, sealed, overwrite=False, durable=durable, uncached=True)
            return chunk_id, len(sealed) if written else 0
        finally:
            with self._inflight_mutex:
                del self._inflight[chunk_id]
            mine.set()

    def get(self, chunk_id, check_id=True):
        """The authenticated plaintext of a chunk (IntegrityError, MissingDataError).

        AES-GCM authenticates every chunk with its id as associated data, so a
        file altered, or copied under another id, always fails.  ``check_id``
        also recomputes the id from the plaintext (HMAC-SHA256, as costly as
        the decompression), which catches what authentication cannot: data a
        writer sealed under a wrong id (a bug, a bit flipped in its memory
        between hashing and sealing).  ``backup_verify`` always recomputes it.
        """
        name = chunk_name(chunk_id)
        blob = self.backend.get(name, max_size=self.max_chunk_size + envelope.OVERHEAD, uncached=True)
        data = envelope.open_sealed(self.keys, envelope.MAGIC_CHUNK, chunk_id, blob,
                                    "chunk %s" % name, max_size=self.max_chunk_size)
        if check_id and self.keys.chunk_id(data) != chunk_id:
            raise IntegrityError("chunk %s does not hash to its id" % name)
        return data

    def delete(self, chunk_id):
        self.backend.delete(chunk_name(chunk_id))

    def quarantine(self, chunk_id):
        """Move a damaged chunk to ``quarantine/`` so the next backup of its data stores it again.

        Returns the name it got, or None when it was gone already.
        """
        hex_id = binascii.hexlify(chunk_id).decode("ascii")
        target = "%s/%s.%s" % (self.quarantine_prefix, hex_id, binascii.hexlify(os.urandom(4)).decode("ascii"))
        try:
            self.backend.rename(chunk_name(chunk_id), target)
        except MissingDataError:
            return None
        return target

    def quarantined_ids(self):
        """Raw ids of the chunks in quarantine (``quarantine`` names them ``<hex id>.<random>``)."""
        ids = set()
        for name in self.backend.list(self.quarantine_prefix):
            chunk_id = id_from_name(name.split(".", 1)[0])
            if chunk_id is not None:
                ids.add(chunk_id)
        return ids

    def list_ids(self):
        ids = []
        for name in self.backend.walk(PREFIX):
            chunk_id = id_from_name(name)
            if chunk_id is not None:
                ids.append(chunk_id)
        return ids
