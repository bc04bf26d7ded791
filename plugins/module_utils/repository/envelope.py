# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one encrypted file layout of the repository.

Every encrypted file (chunk, manifest, staged part, head record) is::

    HEADER (8 bytes) || SALT (16 bytes) || NONCE (12 bytes) || CIPHERTEXT || TAG (16 bytes)
    HEADER = MAGIC (4 bytes) || VERSION (u8) || FLAGS (u8) || RESERVED (u16 BE, 0)

encrypted with AES-256-GCM under a key of its own, HKDF-SHA256(the
repository's encryption key, SALT), with ``HEADER || CONTEXT`` as associated
data.  SALT and NONCE are random for every file written, so each GCM key
encrypts one message and no repository-wide nonce budget exists.  CONTEXT
names what the file is (the chunk id, the backup id, the part name), so a
file moved to another name fails authentication.  FLAGS bit 0 means the
plaintext was zstd compressed before encryption.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    UnsupportedFormatError,
)

try:
    from cryptography.exceptions import InvalidTag
except ImportError:  # reported by the module wrapper
    InvalidTag = None

try:
    import zstandard
except ImportError:  # reported by the module wrapper
    zstandard = None

VERSION = 2
FLAG_ZSTD = 0x01
HEADER = struct.Struct(">4sBBH")
SALT_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = HEADER.size + SALT_SIZE + NONCE_SIZE + TAG_SIZE

MAGIC_CHUNK = b"VMCK"
MAGIC_MANIFEST = b"VMCM"
MAGIC_STAGED = b"VMCS"
MAGIC_HEAD = b"VMCH"

# Compression is kept only when it saves at least this fraction of the size.
COMPRESSION_MIN_SAVING = 1.0 / 32
# Level 1: on disk images it runs about twice as fast as level 3 for an archive ~8% larger.
# The level is not part of the format; any zstd decoder reads every level.
COMPRESSION_LEVEL = 1

_local = threading.local()


def _compressor():
    # zstandard compressor objects are not thread safe: one per thread.
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
    return compressor


def _decompressor():
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def compress_if_it_pays(data):
    """(payload, flags): zstd output when it is clearly smaller, else ``data``."""
    compressed = _compressor().compress(data)
    if len(compressed) <= len(data) - max(1, int(len(data) * COMPRESSION_MIN_SAVING)):
        return compressed, FLAG_ZSTD
    return data, 0


def seal(keys, magic, context, data, compress=True):
    """Encrypt ``data`` into the envelope; ``keys`` is the repository's ``DataKeys``."""
    payload, flags = compress_if_it_pays(data) if compress else (data, 0)
    header = HEADER.pack(magic, VERSION, flags, 0)
    random = os.urandom(SALT_SIZE + NONCE_SIZE)
    salt, nonce = random[:SALT_SIZE], random[SALT_SIZE:]
    return header + random + keys.file_aead(salt).encrypt(nonce, payload, header + context)


def open_sealed(keys, magic, context, blob, what, max_size=None):
    """Authenticate and decrypt an envelope; raise ``IntegrityError`` on any mismatch."""
    if len(blob) < OVERHEAD:
        raise IntegrityError("%s is truncated (%d bytes)" % (what, len(blob)))
    header = bytes(blob[:HEADER.size])
    found_magic, version, flags, reserved = HEADER.unpack(header)
    if found_magic != magic:
        raise IntegrityError("%s is not a %s file (bad magic)" % (what, magic.decode("ascii")))
    if version != VERSION:
        raise UnsupportedFormatError("%s has format version %d; this code reads version %d only" % (what, version, VERSION))
    if reserved or flags & ~FLAG_ZSTD:
        raise IntegrityError("%s has unknown header flags" % what)
    salt = bytes(blob[HEADER.size:HEADER.size + SALT_SIZE])
    nonce = bytes(blob[HEADER.size + SALT_SIZE:HEADER.size + SALT_SIZE + NONCE_SIZE])
    try:
        payload = keys.file_aead(salt).decrypt(nonce, memoryview(blob)[HEADER.size + SALT_SIZE + NONCE_SIZE:],
                                               header + context)  # a view: no copy of the ciphertext
    except InvalidTag:
        raise IntegrityError("%s failed authentication (tampered, truncated or from another repository)" % what)
    if flags & FLAG_ZSTD:
        try:
            if max_size is not None:
                return _decompressor().decompress(payload, max_output_size=max_size)
            return _decompressor().decompress(payload)
        except zstandard.ZstdError:
            raise IntegrityError("%s has an authenticated but undecodable payload" % what)
    return payload
