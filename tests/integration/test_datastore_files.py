"""NVRAM over HTTPS: /folder downloads and uploads on the client's own session.

The simulator creates each VM's NVRAM empty; estate_nvram gives it known
bytes through the datastore's local folder, and the tests compare what the
collection reads and writes over HTTPS with the files on disk.
"""
import hashlib
import io
import os
import types

import pytest

from estate_nvram import local_path, read_local, write_nvram

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    InvalidArgumentError,
    NotFoundError,
    VsphereConnectionError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import datastore_files
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient, _tls_context

# Larger than a block, not a multiple of one: the stream must not stop short.
NVRAM = os.urandom(2 * datastore_files.BLOCK_SIZE + 12345)


@pytest.fixture(scope="module")
def client(vcsim, estate):
    with VsphereClient(vcsim.host, vcsim.username, vcsim.password, port=vcsim.port, validate_certs=False) as session:
        yield session


@pytest.fixture
def nvram(vcsim, estate):
    """crypt-vm01's NVRAM filled with NVRAM's bytes; emptied again afterwards, as the simulator made it."""
    facts = estate["vms"]["crypt-vm01"]
    path = write_nvram(vcsim, facts, NVRAM)
    yield facts["nvram_path"]
    with open(path, "wb"):
        pass


@pytest.fixture
def scratch_file(vcsim, estate):
    """A datastore path for uploads in a folder of its own, removed after the test.

    Not in a VM's folder: the simulator lists a VM folder's .nvram files in that VM's file layout,
    and the estate's tests (and metadata capture) would find two NVRAM files there.
    """
    target = "[%s] vmcrypt-scratch/scratch-upload.nvram" % estate["datastore"]["name"]
    yield target
    if os.path.exists(local_path(vcsim, target)):
        os.remove(local_path(vcsim, target))
    folder = os.path.dirname(local_path(vcsim, target))
    if os.path.isdir(folder) and not os.listdir(folder):
        os.rmdir(folder)


def test_download_streams_the_nvram_bytes_with_size_and_sha256(client, estate, nvram):
    blocks = []
    size, digest = datastore_files.download(client, estate["datacenter"]["name"], nvram, blocks.append)
    assert b"".join(blocks) == NVRAM
    assert size == len(NVRAM)
    assert digest == hashlib.sha256(NVRAM).hexdigest()
    assert max(len(block) for block in blocks) <= datastore_files.BLOCK_SIZE
    assert len(blocks) >= 3


def test_download_into_a_file_in_small_blocks(client, estate, nvram):
    sink = io.BytesIO()
    size, digest = datastore_files.download(client, estate["datacenter"]["name"], nvram, sink, block_size=4096)
    assert sink.getvalue() == NVRAM and size == len(NVRAM)
    assert digest == hashlib.sha256(NVRAM).hexdigest()


def test_a_missing_file_is_not_found_and_the_message_holds_no_cookie(client, estate):
    missing = "[%s] crypt-vm01/no-such.nvram" % estate["datastore"]["name"]
    with pytest.raises(NotFoundError) as raised:
        datastore_files.download(client, estate["datacenter"]["name"], missing, lambda block: None)
    assert str(raised.value) == ("datastore file %s (datacenter %s) not found: vCenter answered HTTP 404 to the "
                                 "download" % (missing, estate["datacenter"]["name"]))
    assert client.session_cookie not in str(raised.value)


def test_an_unknown_datastore_is_not_found(client, estate):
    with pytest.raises(NotFoundError):
        datastore_files.download(client, estate["datacenter"]["name"], "[NoSuchDS] crypt-vm01/crypt-vm01.nvram",
                                 lambda block: None)


def test_upload_creates_the_file_byte_for_byte(vcsim, client, estate, scratch_file):
    datacenter = estate["datacenter"]["name"]
    size, digest = datastore_files.upload(client, datacenter, scratch_file, io.BytesIO(NVRAM), len(NVRAM))
    assert (size, digest) == (len(NVRAM), hashlib.sha256(NVRAM).hexdigest())
    assert read_local(vcsim, scratch_file) == NVRAM
    # replacing it, from an iterable of uneven blocks
    replacement = NVRAM[:5000]
    pieces = [replacement[:7], replacement[7:4096], replacement[4096:]]
    assert datastore_files.upload(client, datacenter, scratch_file, pieces, len(replacement)) == \
        (len(replacement), hashlib.sha256(replacement).hexdigest())
    assert read_local(vcsim, scratch_file) == replacement


def test_upload_then_download_round_trip(client, estate, scratch_file):
    datacenter = estate["datacenter"]["name"]
    sent = datastore_files.upload(client, datacenter, scratch_file, io.BytesIO(NVRAM), len(NVRAM))
    sink = io.BytesIO()
    assert datastore_files.download(client, datacenter, scratch_file, sink) == sent
    assert sink.getvalue() == NVRAM


def test_a_short_source_is_refused(client, estate, scratch_file):
    with pytest.raises(InvalidArgumentError) as raised:
        datastore_files.upload(client, estate["datacenter"]["name"], scratch_file, io.BytesIO(b"abc"), 10)
    assert str(raised.value) == "upload of datastore file %s: the source ended after 3 of 10 bytes" % scratch_file


def test_an_untrusted_certificate_is_a_connection_error(client, estate, nvram):
    validating = types.SimpleNamespace(hostname=client.hostname, port=client.port, ssl_context=_tls_context(True),
                                       session_cookie=client.session_cookie)
    with pytest.raises(VsphereConnectionError) as raised:
        datastore_files.download(validating, estate["datacenter"]["name"], nvram, lambda block: None)
    assert "TLS certificate not trusted" in str(raised.value) and nvram in str(raised.value)
    assert client.session_cookie not in str(raised.value)


def test_a_closed_port_is_a_connection_error(client, estate, nvram):
    closed = types.SimpleNamespace(hostname="127.0.0.1", port=1, ssl_context=client.ssl_context,
                                   session_cookie=client.session_cookie)
    with pytest.raises(VsphereConnectionError) as raised:
        datastore_files.download(closed, estate["datacenter"]["name"], nvram, lambda block: None)
    assert str(raised.value).startswith("download of datastore file %s from vCenter 127.0.0.1:1 failed: " % nvram)
