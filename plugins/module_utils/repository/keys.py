# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data keys and the key slots that wrap them.

A repository has one set of random data keys: a 256-bit AES-GCM key that
encrypts every file and a 256-bit HMAC-SHA256 key that names chunks.  Each
key slot (``keys/<slot id>``, JSON) holds those keys encrypted with a key
encryption key (KEK) derived from a password (scrypt, parameters stored in
the slot) or from a key file (HKDF-SHA256).  Adding or removing a slot never
touches data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import json
import os
import struct
import unicodedata

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    KeySlotError,
    UnsupportedFormatError,
)

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
except ImportError:  # reported by the module wrapper
    InvalidTag = hashes = AESGCM = HKDF = Scrypt = None

SLOT_VERSION = 1
KEY_BLOB_VERSION = 1
KEY_SIZE = 32
SALT_SIZE = 32
NONCE_SIZE = 12
MIN_KEY_FILE_SIZE = 16
MAX_KEY_FILE_SIZE = 1 << 20

KIND_PASSWORD = "password"
KIND_KEY_FILE = "key_file"

# scrypt: N=2**17, r=8 needs 128 MiB and about half a second per attempt.
DEFAULT_SCRYPT = {"n": 1 << 17, "r": 8, "p": 1}
HKDF_INFO = b"vmcrypt.backup key file slot v1"


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text, what):
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, TypeError, AttributeError):
        raise IntegrityError("%s is not valid base64" % what)


class DataKeys(object):
    """The repository's data keys: encryption (AES-256-GCM) and chunk naming (HMAC-SHA256)."""

    def __init__(self, encryption_key, id_key):
        if len(encryption_key) != KEY_SIZE or len(id_key) != KEY_SIZE:
            raise InvalidArgumentError("data keys must be 32 bytes each")
        self._encryption_key = encryption_key
        self._id_key = id_key
        self.aead = AESGCM(encryption_key)

    @classmethod
    def generate(cls):
        return cls(os.urandom(KEY_SIZE), os.urandom(KEY_SIZE))

    def chunk_id(self, data):
        """The 32-byte id of a chunk: HMAC-SHA256(id key, plaintext)."""
        return hmac.new(self._id_key, data, hashlib.sha256).digest()

    def to_bytes(self):
        return struct.pack(">B", KEY_BLOB_VERSION) + self._encryption_key + self._id_key

    @classmethod
    def from_bytes(cls, blob):
        if len(blob) != 1 + 2 * KEY_SIZE or blob[0] != KEY_BLOB_VERSION:
            raise UnsupportedFormatError("key slot holds keys of an unknown version")
        return cls(blob[1:1 + KEY_SIZE], blob[1 + KEY_SIZE:])

    def __repr__(self):
        return "DataKeys(<secret>)"


class Credential(object):
    """A password or the contents of a key file; never printed."""

    def __init__(self, kind, secret, source=None):
        self.kind = kind
        self._secret = secret
        self.source = source

    @classmethod
    def from_password(cls, password):
        if not password:
            raise InvalidArgumentError("the repository password is empty")
        text = unicodedata.normalize("NFC", password)
        return cls(KIND_PASSWORD, text.encode("utf-8"))

    @classmethod
    def from_key_file(cls, path):
        try:
            with open(path, "rb") as handle:
                secret = handle.read(MAX_KEY_FILE_SIZE + 1)
        except (IOError, OSError) as error:
            raise InvalidArgumentError("cannot read repository key file %s: %s" % (path, error.strerror or error))
        if len(secret) < MIN_KEY_FILE_SIZE or len(secret) > MAX_KEY_FILE_SIZE:
            raise InvalidArgumentError("repository key file %s must hold between %d bytes and 1 MiB"
                                       % (path, MIN_KEY_FILE_SIZE))
        return cls(KIND_KEY_FILE, secret, source=path)

    def derive(self, kdf):
        """The 32-byte key encryption key for slot parameters ``kdf``."""
        name = kdf.get("name")
        salt = _unb64(kdf.get("salt", ""), "key slot salt")
        if self.kind == KIND_PASSWORD and name == "scrypt":
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
            if n < 2 or n & (n - 1) or n > 1 << 22 or not 1 <= r <= 32 or not 1 <= p <= 16:
                raise IntegrityError("key slot has out-of-range scrypt parameters")
            return Scrypt(salt=salt, length=KEY_SIZE, n=n, r=r, p=p).derive(self._secret)
        if self.kind == KIND_KEY_FILE and name == "hkdf-sha256":
            return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=HKDF_INFO).derive(self._secret)
        raise UnsupportedFormatError("key slot uses unknown key derivation %r" % name)

    def new_kdf(self, scrypt_params=None):
        salt = _b64(os.urandom(SALT_SIZE))
        if self.kind == KIND_PASSWORD:
            params = dict(DEFAULT_SCRYPT)
            params.update(scrypt_params or {})
            return {"name": "scrypt", "n": params["n"], "r": params["r"], "p": params["p"], "salt": salt}
        return {"name": "hkdf-sha256", "salt": salt}

    def __repr__(self):
        return "Credential(%s, <secret>)" % self.kind


def _associated_data(repository_id, slot_id):
    return b"vmcrypt.backup key slot v1\x00" + repository_id.encode("ascii") + b"\x00" + slot_id.encode("ascii")


def new_slot_id():
    return os.urandom(4).hex()


def make_slot(repository_id, data_keys, credential, label="", created="", scrypt_params=None, slot_id=None):
    """A key slot (a JSON-able dict) that opens ``data_keys`` with ``credential``."""
    slot_id = slot_id or new_slot_id()
    kdf = credential.new_kdf(scrypt_params)
    kek = credential.derive(kdf)
    nonce = os.urandom(NONCE_SIZE)
    wrapped = nonce + AESGCM(kek).encrypt(nonce, data_keys.to_bytes(), _associated_data(repository_id, slot_id))
    return {
        "version": SLOT_VERSION,
        "id": slot_id,
        "kind": credential.kind,
        "label": label or "",
        "created": created,
        "kdf": kdf,
        "wrapped_keys": _b64(wrapped),
    }


def parse_slot(blob, name):
    try:
        slot = json.loads(blob.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("key slot %s is not valid JSON" % name)
    if not isinstance(slot, dict) or not isinstance(slot.get("kdf"), dict):
        raise IntegrityError("key slot %s is malformed" % name)
    if slot.get("version") != SLOT_VERSION:
        raise UnsupportedFormatError("key slot %s has version %r; this code reads version %d"
                                     % (name, slot.get("version"), SLOT_VERSION))
    return slot


def try_open_slot(repository_id, slot, credential):
    """The DataKeys in ``slot`` if ``credential`` opens it, else None."""
    if slot.get("kind") != credential.kind:
        return None
    kek = credential.derive(slot["kdf"])
    wrapped = _unb64(slot.get("wrapped_keys", ""), "key slot %s" % slot.get("id"))
    if len(wrapped) < NONCE_SIZE + 16:
        raise IntegrityError("key slot %s is truncated" % slot.get("id"))
    try:
        blob = AESGCM(kek).decrypt(wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:],
                                   _associated_data(repository_id, str(slot.get("id"))))
    except InvalidTag:
        return None
    return DataKeys.from_bytes(blob)


def public_slot(slot):
    """What may be shown about a slot: never salts or wrapped keys."""
    kdf = dict((key, value) for key, value in slot["kdf"].items() if key != "salt")
    return {"id": slot["id"], "kind": slot["kind"], "label": slot.get("label", ""),
            "created": slot.get("created", ""), "kdf": kdf}


def check_slot_label(label):
    if label and (len(label) > 128 or "\n" in label):
        raise KeySlotError("a key slot label is one line of at most 128 characters")
    return label or ""
