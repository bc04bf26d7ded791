"""docs/repository-format.md matches the code: its test vectors and its constants."""
import json
import os
import re

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import (
    chunks,
    envelope,
    keys,
    locks,
    manifest,
    repository,
    staging,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "docs", "repository-format.md")


def _doc():
    with open(DOC) as handle:
        return handle.read()


def _vector(name):
    match = re.search(r"```json test-vector:%s\n(.*?)```" % re.escape(name), _doc(), re.S)
    assert match, "test vector %s missing from the format document" % name
    return json.loads(match.group(1))


def test_chunk_vector_decrypts_and_reencrypts_bit_for_bit(monkeypatch):
    vector = _vector("chunk")
    data_keys = keys.DataKeys(bytes.fromhex(vector["encryption_key"]), bytes.fromhex(vector["id_key"]))
    plaintext = vector["plaintext"].encode()
    chunk_id = bytes.fromhex(vector["chunk_id"])
    sealed = bytes.fromhex(vector["chunk_file"])
    assert data_keys.chunk_id(plaintext) == chunk_id
    assert envelope.open_sealed(data_keys.aead, envelope.MAGIC_CHUNK, chunk_id, sealed, "vector") == plaintext
    monkeypatch.setattr(envelope.os, "urandom", lambda size: bytes.fromhex(vector["nonce"]))
    assert envelope.seal(data_keys.aead, envelope.MAGIC_CHUNK, chunk_id, plaintext) == sealed
    with pytest.raises(IntegrityError):
        envelope.open_sealed(data_keys.aead, envelope.MAGIC_CHUNK, bytes(32), sealed, "vector")


def test_key_slot_vector_opens_the_vector_keys():
    slot = _vector("key-slot")
    chunk = _vector("chunk")
    opened = keys.try_open_slot("00112233445566778899aabbccddeeff", slot, keys.Credential.from_password("vector password"))
    assert opened.to_bytes() == b"\x01" + bytes.fromhex(chunk["encryption_key"]) + bytes.fromhex(chunk["id_key"])
    assert keys.try_open_slot("00112233445566778899aabbccddeeff", slot,
                              keys.Credential.from_password("other")) is None


def test_documented_constants_are_the_code_constants():
    doc = _doc()
    for magic in (envelope.MAGIC_CHUNK, envelope.MAGIC_MANIFEST, envelope.MAGIC_STAGED):
        assert "`%s`" % magic.decode() in doc
    assert envelope.HEADER.size == 8 and envelope.NONCE_SIZE == 12 and envelope.TAG_SIZE == 16
    assert "HEADER = MAGIC (4 bytes) || VERSION (u8 = %d)" % envelope.VERSION in doc
    assert manifest.INDEX_RECORD.size == 40 and "40-byte records" in doc
    assert '"n": %d, "r": %d, "p": %d' % (keys.DEFAULT_SCRYPT["n"], keys.DEFAULT_SCRYPT["r"], keys.DEFAULT_SCRYPT["p"]) in doc
    assert '"chunk_size": %d' % repository.DEFAULT_CHUNK_SIZE in doc
    assert '"format": "%s", "version": %d' % (repository.FORMAT_NAME, repository.FORMAT_VERSION) in doc
    assert keys.HKDF_INFO.decode() in doc
    assert "heartbeat is older than %d s" % locks.STALE_AFTER in doc
    assert "every %d s" % locks.HEARTBEAT_INTERVAL in doc
    assert "zstd (level %d" % envelope.COMPRESSION_LEVEL in doc
    assert "at least 1/%d of the size" % round(1 / envelope.COMPRESSION_MIN_SAVING) in doc
    for prefix in (chunks.PREFIX, manifest.PREFIX, staging.PREFIX, locks.PREFIX, repository.KEYS_PREFIX):
        assert "\n%s/" % prefix in doc
    assert "`disk-<key>`" in doc


def test_file_sizes_follow_the_envelope_grammar(repo):
    data = os.urandom(4096)
    chunk_id, written = repo.chunks.put(data)
    assert written == len(data) + envelope.OVERHEAD == len(data) + 36
    path = os.path.join(repo.location, *chunks.chunk_name(chunk_id).split("/"))
    raw = open(path, "rb").read()
    assert raw[:8] == b"VMCK\x01\x00\x00\x00"
