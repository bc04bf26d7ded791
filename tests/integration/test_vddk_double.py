"""The VDDK binding against tests/vddk_double and a vcsim estate VM's disks.

The double serves the flat extents vcsim keeps in its datastore folders, so
data written to a flat file here must come back byte-identical through
ConnectEx/Open/Read, and the double's call log shows exactly what the
binding sent.  The binding is not told it talks to a double.
"""
import ctypes
import os
import time

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient

from vddk_double_config import DOUBLE_LIB, DOUBLE_LIBDIR, SNAPSHOT, Double

SECTOR = structs.VIXDISKLIB_SECTOR_SIZE
CHUNK = structs.VIXDISKLIB_MIN_CHUNK_SIZE * SECTOR  # 64 KiB
VM_NAME = "crypt-vm01"


@pytest.fixture(scope="module")
def library():
    if not os.path.exists(DOUBLE_LIB):
        pytest.fail("%s is missing: run make vddk-double" % DOUBLE_LIB)
    return VddkLibrary.get(DOUBLE_LIBDIR)


@pytest.fixture(scope="module")
def client(vcsim):
    with VsphereClient(vcsim.host, vcsim.username, vcsim.password, port=vcsim.port,
                       validate_certs=False) as session:
        yield session


@pytest.fixture
def double(vcsim, estate, tmp_path, monkeypatch):
    helper = Double(vcsim, estate, tmp_path)
    monkeypatch.setenv("VMCRYPT_VDDK_DOUBLE_CONFIG", helper.config_path)
    return helper


@pytest.fixture
def disks(vcsim, estate):
    """The VM's disks as (datastore path, local flat file); flat files emptied again afterwards."""
    result = []
    for disk in estate["vms"][VM_NAME]["disks"]:
        datastore, relative = disk["file"][1:].split("] ", 1)
        flat = os.path.join(vcsim.datastores[datastore], relative[:-len(".vmdk")] + "-flat.vmdk")
        assert os.path.getsize(flat) == 0, "vcsim flat files start empty"
        result.append({"path": disk["file"], "flat": flat, "sectors": disk["capacity_kb"] * 2,
                       "encrypted": disk["encrypted"]})
    try:
        yield result
    finally:
        for disk in result:
            os.truncate(disk["flat"], 0)


def connect(library, client, estate, **options):
    options.setdefault("snapshot_moref", SNAPSHOT)
    options.setdefault("transports", ["nbdssl"])
    return VddkConnection.from_client(library, client, estate["vms"][VM_NAME]["moid"], **options)


def put(flat, offset, data):
    with open(flat, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def pattern(seed, size):
    block = bytes((seed * 7 + i) % 251 for i in range(251))
    return (block * (size // len(block) + 1))[:size]


def expected_image(disk, pieces):
    image = bytearray(disk["sectors"] * SECTOR)
    for offset, data in pieces:
        image[offset:offset + len(data)] = data
    return bytes(image)


def read_all(vddk_disk, piece_sectors=2048):
    """Read the whole disk through one reused buffer, as the export engine will."""
    buffer = bytearray(piece_sectors * SECTOR)
    view = memoryview(buffer)
    out = bytearray()
    capacity = vddk_disk.capacity_sectors
    for start in range(0, capacity, piece_sectors):
        count = min(piece_sectors, capacity - start)
        vddk_disk.read(start, view[:count * SECTOR])
        out += view[:count * SECTOR]
    return bytes(out)


def test_read_back_is_byte_identical_and_call_log_shows_the_arguments(library, client, estate, vcsim, double,
                                                                      disks, caplog):
    disk = disks[0]
    pieces = [(0, pattern(1, CHUNK)), (1024 * 1024, pattern(2, 2 * CHUNK)),
              (disk["sectors"] * SECTOR - CHUNK, pattern(3, CHUNK))]
    for offset, data in pieces:
        put(disk["flat"], offset, data)
    caplog.set_level("DEBUG", logger="vmcrypt.backup.vddk")
    with connect(library, client, estate, transports=["nbdssl", "hotadd"]) as conn:
        assert conn.transport_modes == "nbdssl:hotadd"
        with conn.open_disk(disk["path"]) as vddk_disk:
            info = vddk_disk.info()
            assert info.capacity_sectors == disk["sectors"] == 32768
            assert (info.logical_sector_size, info.physical_sector_size, info.num_links) == (512, 512, 1)
            assert info.parent_file_name_hint is None
            assert vddk_disk.transport_mode == "nbdssl"  # hotadd: the double is no proxy VM
            assert read_all(vddk_disk) == expected_image(disk, pieces)

    calls = [entry["call"] for entry in double.calls()]
    sequence = [c for c in calls if c != "Read"]
    assert sequence[-7:] == ["PrepareForAccess", "ConnectEx", "Open", "Close", "Disconnect", "EndAccess", "Cleanup"]
    assert calls.count("Read") == 16  # 32768 sectors in pieces of 2048
    connect_call = double.calls("ConnectEx")[-1]
    assert connect_call == {
        "call": "ConnectEx", "vmxSpec": "moref=%s" % estate["vms"][VM_NAME]["moid"],
        "serverName": vcsim.host, "thumbPrint": vcsim.thumbprint, "port": vcsim.port, "nfcHostPort": 0,
        "credType": "sessionid", "cookieGiven": 1, "userName": None, "keyGiven": 0, "readOnly": 1,
        "snapshotRef": SNAPSHOT, "transportModes": "nbdssl:hotadd", "result": 0,
    }
    open_call = double.calls("Open")[-1]
    assert open_call == {"call": "Open", "path": disk["path"], "flags": structs.VIXDISKLIB_FLAG_OPEN_READ_ONLY,
                         "encrypted": 1, "mode": "nbdssl", "result": 0}
    assert double.calls("PrepareForAccess")[-1]["identity"] == "vmcrypt.backup"
    # The session cookie reached VDDK but neither its call log nor ours.
    cookie = client.session_cookie
    assert cookie and cookie not in double.raw_log()
    vddk_lines = [r.getMessage() for r in caplog.records if r.name == "vmcrypt.backup.vddk"]
    echoed = [line for line in vddk_lines if "ConnectEx to" in line]
    assert echoed and all("with session ********" in line for line in echoed)
    assert not any(cookie in line for line in vddk_lines)


def test_allocated_blocks_are_exactly_the_data_ranges(library, client, estate, double, disks):
    disk = disks[0]
    put(disk["flat"], 0, pattern(4, CHUNK))                        # sectors 0..127
    put(disk["flat"], 2048 * SECTOR, pattern(5, 2 * CHUNK))        # sectors 2048..2303
    put(disk["flat"], 8192 * SECTOR + 512, b"x" * 512)             # inside chunk 8192..8319
    put(disk["flat"], (32768 - 128) * SECTOR, pattern(6, CHUNK))   # the last chunk
    with connect(library, client, estate) as conn, conn.open_disk(disk["path"]) as vddk_disk:
        assert vddk_disk.supports_allocated_blocks
        blocks = vddk_disk.allocated_blocks()
    assert blocks == [(0, 128), (2048, 256), (8192, 128), (32640, 128)]
    query = double.calls("QueryAllocatedBlocks")[-1]
    assert (query["startSector"], query["numSectors"], query["chunkSize"]) == (0, 32768, 128)


def test_empty_disk_has_no_allocated_blocks_and_reads_zeros(library, client, estate, double, disks):
    disk = disks[1]
    with connect(library, client, estate) as conn, conn.open_disk(disk["path"]) as vddk_disk:
        assert vddk_disk.allocated_blocks() == []
        buffer = bytearray(b"\xff" * 4096)
        assert vddk_disk.read(16000, buffer) == bytearray(4096)


def test_the_binding_refuses_an_unknown_mode_name_before_connecting(library, client, estate, double):
    with pytest.raises(InvalidArgumentError) as caught:
        connect(library, client, estate, transports=["nbdssl", "file"])
    assert str(caught.value) == "VDDK transport modes must be some of nbdssl, hotadd, nbd, san, got nbdssl, file"
    assert double.calls("ConnectEx") == []


def test_the_binding_sends_the_decided_modes_as_they_are(library, client, estate, double, disks):
    # The access decision (workflows/access.py) chose; the binding holds no policy of its own.
    with connect(library, client, estate, transports=["nbdssl", "hotadd"]) as conn:
        assert conn.transport_modes == "nbdssl:hotadd"
    assert double.calls("ConnectEx")[-1]["transportModes"] == "nbdssl:hotadd"


def test_hotadd_from_an_encrypted_proxy_is_chosen(library, client, estate, double, disks):
    double.write(hotadd=1, proxy_encrypted=1)
    with connect(library, client, estate, transports=["hotadd", "nbdssl"]) as conn:
        with conn.open_disk(disks[0]["path"]) as vddk_disk:
            assert vddk_disk.transport_mode == "hotadd"


def test_the_library_itself_refuses_san_for_an_encrypted_disk(library, client, estate, double, disks, caplog):
    # Given san (an access decision that wrongly thought the VM plain), the binding sends it;
    # the library refuses the encrypted disk at Open, as VDDK does.
    caplog.set_level("INFO", logger="vmcrypt.backup.vddk")
    with connect(library, client, estate, transports=["san"]) as conn:
        with pytest.raises(VddkError) as caught:
            conn.open_disk(disks[0]["path"])
    assert caught.value.code == structs.VIX_E_NOT_SUPPORTED
    assert str(caught.value) == (
        "opening %s: VixDiskLib_Open failed: The operation is not supported (VIX error 6); "
        "no requested transport mode can reach this disk from here" % disks[0]["path"])
    assert any("encrypted disks are not supported with SAN" in r.getMessage() for r in caplog.records)


def test_unknown_snapshot_moref_is_a_clear_error(library, client, estate, double):
    conn = connect(library, client, estate, snapshot_moref="snapshot-404")
    with pytest.raises(VddkError) as caught:
        conn.open()
    assert caught.value.code == structs.VIX_E_SNAPSHOT_NOTFOUND
    assert "snapshot snapshot-404" in str(caught.value)
    assert "the snapshot moref is not a snapshot of this VM" in str(caught.value)
    assert not conn.connected
    # Access was prepared, then ended again although ConnectEx failed.
    assert [c["call"] for c in double.calls()][-4:] == ["PrepareForAccess", "ConnectEx", "EndAccess", "Cleanup"]


def test_wrong_thumbprint_is_a_clear_error(library, client, estate, double):
    conn = VddkConnection(library, client.hostname, "00:" * 19 + "00", estate["vms"][VM_NAME]["moid"],
                          client.session_cookie, snapshot_moref=SNAPSHOT, port=client.port,
                          transports=["nbdssl"])
    with pytest.raises(VddkError) as caught:
        conn.open()
    assert caught.value.code == structs.VIX_E_CANNOT_CONNECT_TO_HOST
    assert "certificate thumbprint" in str(caught.value)
    assert client.session_cookie not in str(caught.value)


def test_a_missing_session_cookie_is_refused(library, client, estate, double):
    # The binding never sends a connection without a session ...
    with pytest.raises(InvalidArgumentError):
        VddkConnection(library, client.hostname, client.server_thumbprint(), estate["vms"][VM_NAME]["moid"], "",
                       transports=["nbdssl"])
    # ... and the library refuses one, as vCenter would (raw ABI calls).
    api = library.api
    params = api.VixDiskLib_AllocateConnectParams()
    vmx, server = b"moref=" + estate["vms"][VM_NAME]["moid"].encode(), client.hostname.encode()
    thumbprint = client.server_thumbprint().encode()
    try:
        params.contents.vmxSpec, params.contents.serverName, params.contents.thumbPrint = vmx, server, thumbprint
        params.contents.credType = structs.VIXDISKLIB_CRED_SESSIONID
        handle = structs.VixDiskLibConnection()
        with pytest.raises(VddkError) as caught:
            api.VixDiskLib_ConnectEx(params, b"\x01", None, b"nbdssl", ctypes.byref(handle))
        assert caught.value.code == structs.VIX_E_AUTHENTICATION_FAIL
        assert double.calls("ConnectEx")[-1]["cookieGiven"] == 0
    finally:
        params.contents.vmxSpec = params.contents.serverName = params.contents.thumbPrint = None
        api.VixDiskLib_FreeConnectParams(params)


def test_read_error_at_an_offset(library, client, estate, double, disks):
    double.write(fault__read_error_offset=1024 * 1024 + 100)
    with connect(library, client, estate) as conn, conn.open_disk(disks[0]["path"]) as vddk_disk:
        buffer = bytearray(64 * SECTOR)
        vddk_disk.read(0, buffer)
        vddk_disk.read(2048 + 64, buffer)
        with pytest.raises(VddkError) as caught:
            vddk_disk.read(2048, buffer)
        assert caught.value.code == structs.VIX_E_DISK_NOIO
        assert not caught.value.retryable
        assert str(caught.value).startswith("reading 64 sectors at sector 2048 of %s: VixDiskLib_Read failed"
                                            % disks[0]["path"])


def test_dropped_connection_fails_until_reconnect(library, client, estate, double, disks):
    double.write(fault__drop_after_reads=3)
    buffer = bytearray(8 * SECTOR)
    put(disks[0]["flat"], 0, pattern(7, 8 * SECTOR))
    with connect(library, client, estate) as conn, conn.open_disk(disks[0]["path"]) as vddk_disk:
        for start in (0, 8, 16):
            vddk_disk.read(start, buffer)
        for start in (24, 0):
            with pytest.raises(VddkError) as caught:
                vddk_disk.read(start, buffer)
            assert caught.value.code == structs.VIX_E_HOST_TCP_CONN_LOST
            assert "reconnect and resume" in str(caught.value)
            assert caught.value.retryable
    double.write(fault__drop_after_reads="")
    with connect(library, client, estate) as conn, conn.open_disk(disks[0]["path"]) as vddk_disk:
        assert bytes(vddk_disk.read(0, buffer)) == pattern(7, 8 * SECTOR)


def test_slow_reads_are_slow(library, client, estate, double, disks):
    double.write(fault__read_delay_ms=60)
    with connect(library, client, estate) as conn, conn.open_disk(disks[0]["path"]) as vddk_disk:
        started = time.monotonic()
        for start in (0, 8, 16):
            vddk_disk.read(start, bytearray(8 * SECTOR))
        assert time.monotonic() - started >= 0.18


def test_write_then_read_back(library, client, estate, double, disks):
    disk = disks[1]
    first, second = pattern(8, 3 * SECTOR), bytearray(pattern(9, 4 * CHUNK))
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            assert not vddk_disk.read_only
            vddk_disk.write(5, first)                                 # bytes: passed as is
            vddk_disk.write(4096, memoryview(second)[CHUNK:3 * CHUNK])  # a slice: no copy
            vddk_disk.flush()
            with pytest.raises(InvalidArgumentError):
                vddk_disk.write(1, b"short")
            back = bytearray(3 * SECTOR)
            assert bytes(vddk_disk.read(5, back)) == first
            back = bytearray(2 * CHUNK)
            assert bytes(vddk_disk.read(4096, back)) == bytes(second[CHUNK:3 * CHUNK])
        with conn.open_disk(disk["path"], read_only=True) as read_only_disk:
            with pytest.raises(InvalidArgumentError):
                read_only_disk.write(0, first)
    with open(disk["flat"], "rb") as handle:
        handle.seek(5 * SECTOR)
        assert handle.read(len(first)) == first
    connect_call = double.calls("ConnectEx")[-1]
    assert (connect_call["readOnly"], connect_call["snapshotRef"]) == (0, None)
    assert [c["numSectors"] for c in double.calls("Write")] == [3, 256]


def test_read_write_needs_a_read_write_connection(library, client, estate, double, disks):
    with connect(library, client, estate) as conn:
        with pytest.raises(InvalidArgumentError):
            conn.open_disk(disks[0]["path"], read_only=False)
