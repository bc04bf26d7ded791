# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data keys and the key slots that wrap them.

A repository has one random 256-bit master key.  Separate keys are derived
from it with HKDF-SHA256, one per use: the encryption key (the root of a
fresh AES-256-GCM key per file, see ``envelope.py``), the chunk id key
(HMAC-SHA256 that names chunks), the config MAC key and the head name key.
No input an attacker controls (a disk block) is ever MACed with a key that
authenticates the repository's own structures.  Each key slot
(``keys/<slot id>``, JSON) holds the master key encrypted with a key
encryption key (KEK) derived from a password (scrypt, parameters stored in
the slot and bounded) or from a key file (HKDF-SHA256).  Adding or removing a
slot never touches data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import errno
import hashlib
import hmac
import json
import os
import re
import stat as stat_module
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

SLOT_VERSION = 2
KEY_BLOB_VERSION = 2
KEY_SIZE = 32
SALT_SIZE = 32
NONCE_SIZE = 12
MIN_KEY_FILE_SIZE = 16
MAX_KEY_FILE_SIZE = 1 << 20

KIND_PASSWORD = "password"
KIND_KEY_FILE = "key_file"

# scrypt: N=2**17, r=8 needs 128 MiB and about half a second per attempt.
DEFAULT_SCRYPT = {"n": 1 << 17, "r": 8, "p": 1}
# What a slot may ask for: memory 128 * r * N bytes at most 1 GiB, N at least 2**10, r 1..32, p 1..4.
SCRYPT_MAX_MEMORY = 1 << 30
SCRYPT_MIN_N = 1 << 10
SCRYPT_MAX_R = 32
SCRYPT_MAX_P = 4
HKDF_INFO = b"vmcrypt.backup key file slot v2"
FILE_KEY_INFO = b"vmcrypt.backup v2 file key"
SLOT_AD = b"vmcrypt.backup key slot v2"
SLOT_ID_PATTERN = re.compile(r"^[0-9a-f]{8}$")
MAX_SLOT_SIZE = 64 << 10
# HKDF info strings of the keys derived from the master key (salt: none).
INFO_ENCRYPTION = b"vmcrypt.backup v2 encryption key"
INFO_CHUNK_ID = b"vmcrypt.backup v2 chunk id key"
INFO_CONFIG_MAC = b"vmcrypt.backup v2 config mac key"
INFO_HEAD_NAME = b"vmcrypt.backup v2 head name key"


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _unb64(text, what):
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, TypeError, AttributeError):
        raise IntegrityError("%s is not valid base64" % what)


def hkdf_sha256(key, salt, info, length=KEY_SIZE):
    """RFC 5869 HKDF-SHA256 (extract, then expand) of at most 255 blocks."""
    prk = hmac.new(salt or bytes(32), key, hashlib.sha256).digest()
    output = b""
    block = b""
    counter = 1
    while len(output) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        output += block
        counter += 1
    return output[:length]


class DataKeys(object):
    """The keys derived from the repository's master key; see the module docstring."""

    def __init__(self, master_key):
        if len(master_key) != KEY_SIZE:
            raise InvalidArgumentError("the master key must be 32 bytes")
        self._master_key = master_key
        self.encryption_key = hkdf_sha256(master_key, b"", INFO_ENCRYPTION)
        self._id_key = hkdf_sha256(master_key, b"", INFO_CHUNK_ID)
        self._mac_key = hkdf_sha256(master_key, b"", INFO_CONFIG_MAC)
        self._name_key = hkdf_sha256(master_key, b"", INFO_HEAD_NAME)

    @classmethod
    def generate(cls):
        return cls(os.urandom(KEY_SIZE))

    def chunk_id(self, data):
        """The 32-byte id of a chunk: HMAC-SHA256(chunk id key, plaintext)."""
        return hmac.new(self._id_key, data, hashlib.sha256).digest()

    def config_mac(self, data):
        """HMAC-SHA256(config MAC key, data): authenticates the plaintext config, and nothing else."""
        return hmac.new(self._mac_key, data, hashlib.sha256).digest()

    def head_name(self, vm_key):
        """The file name of a VM's head record: 32 hex digits that say nothing about the VM."""
        digest = hmac.new(self._name_key, vm_key.encode("utf-8"), hashlib.sha256).digest()
        return digest[:16].hex()

    def file_aead(self, salt):
        """The AES-256-GCM object of one file: its key is HKDF-SHA256(encryption key, the file's salt)."""
        return AESGCM(hkdf_sha256(self.encryption_key, salt, FILE_KEY_INFO))

    def to_bytes(self):
        return bytes([KEY_BLOB_VERSION]) + self._master_key

    @classmethod
    def from_bytes(cls, blob):
        if len(blob) != 1 + KEY_SIZE or blob[0] != KEY_BLOB_VERSION:
            raise UnsupportedFormatError("key slot holds keys of an unknown version")
        return cls(blob[1:])

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
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            try:
                if not stat_module.S_ISREG(os.fstat(fd).st_mode):
                    raise OSError(errno.EINVAL, "not a regular file")
                secret = os.read(fd, MAX_KEY_FILE_SIZE + 1)
            finally:
                os.close(fd)
        except (IOError, OSError) as error:
            raise InvalidArgumentError("cannot read repository key file %s: %s" % (path, error.strerror or error))
        if len(secret) < MIN_KEY_FILE_SIZE or len(secret) > MAX_KEY_FILE_SIZE:
            raise InvalidArgumentError("repository key file %s must hold between %d bytes and 1 MiB"
                                       % (path, MIN_KEY_FILE_SIZE))
        return cls(KIND_KEY_FILE, secret, source=path)

    def derive(self, kdf):
        """The 32-byte key encryption key for slot parameters ``kdf`` (checked by ``check_kdf``)."""
        name = check_kdf(kdf)
        salt = _unb64(kdf["salt"], "key slot salt")
        if self.kind == KIND_PASSWORD and name == "scrypt":
            return Scrypt(salt=salt, length=KEY_SIZE, n=kdf["n"], r=kdf["r"], p=kdf["p"]).derive(self._secret)
        if self.kind == KIND_KEY_FILE and name == "hkdf-sha256":
            return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt, info=HKDF_INFO).derive(self._secret)
        raise UnsupportedFormatError("key slot uses key derivation %r, which does not fit a %s" % (name, self.kind))

    def new_kdf(self, scrypt_params=None):
        salt = _b64(os.urandom(SALT_SIZE))
        if self.kind == KIND_PASSWORD:
            params = dict(DEFAULT_SCRYPT)
            params.update(scrypt_params or {})
            kdf = {"name": "scrypt", "n": params.get("n"), "r": params.get("r"), "p": params.get("p"), "salt": salt}
            try:
                check_kdf(kdf)
            except IntegrityError as error:
                raise InvalidArgumentError(str(error).replace("key slot", "the new key slot", 1))
            return kdf
        return {"name": "hkdf-sha256", "salt": salt}

    def __repr__(self):
        return "Credential(%s, <secret>)" % self.kind


def _short(value):
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def check_kdf(kdf):
    """The KDF name of slot parameters ``kdf`` once they are sound; IntegrityError in one line otherwise.

    scrypt parameters are whole numbers with N a power of two from 2**10,
    r from 1 to 32, p from 1 to 4 and 128 * r * N at most 1 GiB of memory.
    """
    if not isinstance(kdf, dict):
        raise IntegrityError("key slot has no kdf object")
    name = kdf.get("name")
    if not isinstance(kdf.get("salt"), str):
        raise IntegrityError("key slot has no kdf salt")
    if name == "scrypt":
        for field in ("n", "r", "p"):
            value = kdf.get(field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise IntegrityError("key slot has scrypt %s %s; a whole number is needed" % (field, _short(value)))
        n, r, p = kdf["n"], kdf["r"], kdf["p"]
        if n < SCRYPT_MIN_N or n & (n - 1) or not 1 <= r <= SCRYPT_MAX_R or not 1 <= p <= SCRYPT_MAX_P:
            raise IntegrityError("key slot has out-of-range scrypt parameters n=%s r=%s p=%s (n a power of two from "
                                 "%d, r 1-%d, p 1-%d)" % (_short(n), r, p, SCRYPT_MIN_N, SCRYPT_MAX_R, SCRYPT_MAX_P))
        if 128 * r * n > SCRYPT_MAX_MEMORY:
            raise IntegrityError("key slot asks scrypt for %d MiB of memory; at most %d MiB is allowed"
                                 % (128 * r * n >> 20, SCRYPT_MAX_MEMORY >> 20))
        return name
    if name == "hkdf-sha256":
        return name
    raise UnsupportedFormatError("key slot uses unknown key derivation %s" % _short(name))


def _associated_data(repository_id, slot_id):
    return SLOT_AD + b"\x00" + repository_id.encode("ascii") + b"\x00" + slot_id.encode("ascii")


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
    """The slot in file ``name``, its structure and KDF parameters checked (IntegrityError in one line)."""
    try:
        slot = json.loads(blob.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise IntegrityError("key slot %s is not valid JSON" % name)
    if not isinstance(slot, dict) or not isinstance(slot.get("kdf"), dict):
        raise IntegrityError("key slot %s is malformed" % name)
    if slot.get("version") != SLOT_VERSION:
        raise UnsupportedFormatError("key slot %s has version %s; this code reads version %d"
                                     % (name, _short(slot.get("version")), SLOT_VERSION))
    if not isinstance(slot.get("id"), str) or not SLOT_ID_PATTERN.match(slot["id"]):
        raise IntegrityError("key slot %s has no valid id" % name)
    if slot.get("kind") not in (KIND_PASSWORD, KIND_KEY_FILE) or not isinstance(slot.get("wrapped_keys"), str):
        raise IntegrityError("key slot %s is malformed" % name)
    try:
        check_kdf(slot["kdf"])
    except (IntegrityError, UnsupportedFormatError) as error:
        raise type(error)(str(error).replace("key slot", "key slot %s" % name, 1))
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
