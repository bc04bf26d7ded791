"""docs/repository-format.md matches the code: its test vectors and its constants."""
import json
import os
import re

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import (
    chain,
    chunks,
    envelope,
    keys,
    locks,
    manifest,
    prune,
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
    data_keys = keys.DataKeys(bytes.fromhex(vector["master_key"]))
    assert data_keys.encryption_key.hex() == vector["encryption_key"]
    assert keys.hkdf_sha256(bytes.fromhex(vector["master_key"]), b"", keys.INFO_CHUNK_ID).hex() == vector["chunk_id_key"]
    assert keys.hkdf_sha256(bytes.fromhex(vector["master_key"]), b"", keys.INFO_CONFIG_MAC).hex() == vector["config_mac_key"]
    assert keys.hkdf_sha256(data_keys.encryption_key, bytes.fromhex(vector["salt"]),
                            keys.FILE_KEY_INFO).hex() == vector["file_key"]
    plaintext = vector["plaintext"].encode()
    chunk_id = bytes.fromhex(vector["chunk_id"])
    sealed = bytes.fromhex(vector["chunk_file"])
    assert data_keys.chunk_id(plaintext) == chunk_id
    assert envelope.open_sealed(data_keys, envelope.MAGIC_CHUNK, chunk_id, sealed, "vector") == plaintext
    monkeypatch.setattr(envelope.os, "urandom", lambda size: bytes.fromhex(vector["salt"] + vector["nonce"]))
    assert envelope.seal(data_keys, envelope.MAGIC_CHUNK, chunk_id, plaintext) == sealed
    with pytest.raises(IntegrityError):
        envelope.open_sealed(data_keys, envelope.MAGIC_CHUNK, bytes(32), sealed, "vector")


def test_our_hkdf_is_rfc_5869():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    for salt in (b"", os.urandom(16)):
        key = os.urandom(32)
        expected = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt or None, info=b"info").derive(key)
        assert keys.hkdf_sha256(key, salt, b"info") == expected


def test_config_vector_is_authenticated_by_the_config_mac_key():
    config = _vector("config")
    data_keys = keys.DataKeys(bytes.fromhex(_vector("chunk")["master_key"]))
    assert repository._config_mac(data_keys, config) == config["mac"]


def test_key_slot_vector_opens_the_vector_keys():
    slot = _vector("key-slot")
    chunk = _vector("chunk")
    repository_id = _vector("config")["id"]
    opened = keys.try_open_slot(repository_id, slot, keys.Credential.from_password("vector password"))
    assert opened.to_bytes() == b"\x02" + bytes.fromhex(chunk["master_key"])
    assert keys.try_open_slot(repository_id, slot, keys.Credential.from_password("other")) is None


def test_documented_constants_are_the_code_constants():
    doc = _doc()
    for magic in (envelope.MAGIC_CHUNK, envelope.MAGIC_MANIFEST, envelope.MAGIC_STAGED):
        assert "`%s`" % magic.decode() in doc
    assert envelope.HEADER.size == 8 and envelope.NONCE_SIZE == 12 and envelope.TAG_SIZE == 16
    assert envelope.SALT_SIZE == 16 and envelope.OVERHEAD == 52 and "`chunk_size` + 52" in doc
    for info in (keys.INFO_ENCRYPTION, keys.INFO_CHUNK_ID, keys.INFO_CONFIG_MAC, keys.INFO_HEAD_NAME,
                 keys.FILE_KEY_INFO, keys.SLOT_AD):
        assert info.decode() in doc
    assert "# Backup repository format, version %d" % repository.FORMAT_VERSION in doc
    assert "`%s`" % envelope.MAGIC_HEAD.decode() in doc and "\n%s/" % chain.PREFIX in doc
    assert "%d h of storage time" % (prune.GRACE_PERIOD // 3600) in doc
    assert "p from 1 to %d" % keys.SCRYPT_MAX_P in doc and "at most %d GiB" % (keys.SCRYPT_MAX_MEMORY >> 30) in doc
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
    assert written == len(data) + envelope.OVERHEAD == len(data) + 52
    path = os.path.join(repo.location, *chunks.chunk_name(chunk_id).split("/"))
    raw = open(path, "rb").read()
    assert raw[:8] == b"VMCK\x02\x00\x00\x00"


def test_every_test_the_threat_model_names_exists():
    doc = _doc()
    model = doc[doc.index("## Threat model"):doc.index("## Python API")]
    here = os.path.dirname(os.path.abspath(__file__))
    sources = "".join(open(os.path.join(here, name)).read() for name in os.listdir(here) if name.endswith(".py"))
    files = {"test_repo_roundtrip", "test_repo_tamper", "test_repo_hostile_storage"}
    named = set(re.findall(r"\b(test_[a-z0-9_]+)\b", model)) - files
    assert named and all("def %s(" % name in sources for name in named), sorted(named)
