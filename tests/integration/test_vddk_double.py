"""The VDDK binding against tests/vddk_double and a vcsim estate VM's disks.

The double serves the flat extents vcsim keeps in its datastore folders, so
data written to a flat file here must come back byte-identical through
ConnectEx/Open/Read, and the double's call log shows exactly what the
binding sent.  The binding is not told it talks to a double.

Like VDDK, the double loads a library of its own by bare name at InitEx, which
only LD_LIBRARY_PATH as it was at process start can find.  This test process
was not started that way: the ``library`` fixture loads that library first,
standing for a process that was (the tests of vddk/process.py and the
ansible-playbook runs show the real thing: a process that re-runs itself).
"""
import ctypes
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError, VddkTransportError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.params import SessionTarget
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient

from vddk_double_config import DOUBLE_COMPANION, DOUBLE_LIB, DOUBLE_LIBDIR, SNAPSHOT, Double

SECTOR = structs.VIXDISKLIB_SECTOR_SIZE
CHUNK = structs.VIXDISKLIB_MIN_CHUNK_SIZE * SECTOR  # 64 KiB
VM_NAME = "crypt-vm01"


@pytest.fixture(scope="module")
def library():
    if not os.path.exists(DOUBLE_LIB):
        pytest.fail("%s is missing: run make vddk-double" % DOUBLE_LIB)
    ctypes.CDLL(DOUBLE_COMPANION, mode=ctypes.RTLD_GLOBAL)  # what LD_LIBRARY_PATH at start would have found
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


def session_user(client):
    return client.content.sessionManager.currentSession.userName


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
        "credType": "sessionid", "cookieGiven": 1, "userName": session_user(client), "keyGiven": 1,
        "readOnly": 1, "snapshotRef": SNAPSHOT, "transportModes": "nbdssl:hotadd", "accessPrepared": 1,
        "result": 0,
    }
    open_call = double.calls("Open")[-1]
    assert open_call == {"call": "Open", "path": disk["path"], "flags": structs.VIXDISKLIB_FLAG_OPEN_READ_ONLY,
                         "encrypted": 1, "mode": "nbdssl", "fallback": 0, "result": 0}
    assert double.calls("PrepareForAccess")[-1]["identity"] == "vmcrypt.backup"
    # The session cookie reached VDDK but neither its call log nor ours.
    cookie = client.session_cookie
    assert cookie and cookie not in double.raw_log()
    vddk_lines = [r.getMessage() for r in caplog.records if r.name == "vmcrypt.backup.vddk"]
    echoed = [line for line in vddk_lines if "ConnectEx to" in line]
    assert echoed and all("with session ********" in line for line in echoed)
    assert not any(cookie in line for line in vddk_lines)
    session_key = client.content.sessionManager.currentSession.key
    assert session_key not in double.raw_log() and not any(session_key in line for line in vddk_lines)


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


def test_a_fallback_to_a_mode_outside_the_allowed_ones_fails_the_disk(library, client, estate, double, disks,
                                                                      caplog):
    # Given only san (an access decision that wrongly thought the VM plain), VDDK does not fail ConnectEx or
    # Open: it falls back to nbdssl.  The binding compares the mode used with the allowed ones and refuses.
    caplog.set_level("INFO", logger="vmcrypt.backup.vddk")
    with connect(library, client, estate, transports=["san"]) as conn:
        with pytest.raises(VddkTransportError) as caught:
            conn.open_disk(disks[0]["path"])
    assert str(caught.value) == (
        "VDDK opened %s over nbdssl, which is not one of the allowed transport modes (san): none of them could "
        "reach the disk from here and VDDK fell back; the disk is not read over nbdssl" % disks[0]["path"])
    opened = double.calls("Open")[-1]
    assert (opened["result"], opened["mode"], opened["fallback"]) == (0, "nbdssl", 1)
    assert double.calls("Close")[-1]["path"] == disks[0]["path"]  # closed again, never read
    assert double.calls("Read") == []
    assert any("encrypted disks are not supported with SAN" in r.getMessage() and r.levelname == "WARNING"
               for r in caplog.records)


def test_a_fallback_to_nbd_for_an_encrypted_disk_fails_it(library, client, estate, double, disks):
    double.write(fallback_mode="nbd")
    with connect(library, client, estate, transports=["hotadd"]) as conn:  # no proxy VM: hotadd cannot work
        with pytest.raises(VddkTransportError) as caught:
            conn.open_disk(disks[0]["path"])
    assert "over nbd, which is not one of the allowed transport modes (hotadd)" in str(caught.value)


def test_the_mode_really_used_is_reported(library, client, estate, double, disks):
    with connect(library, client, estate, transports=["hotadd", "nbdssl"]) as conn:
        with conn.open_disk(disks[0]["path"]) as vddk_disk:
            assert vddk_disk.transport_mode == "nbdssl"  # allowed, second choice: no fallback
    assert double.calls("Open")[-1]["fallback"] == 0


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


def test_wrong_thumbprint_is_found_at_open_and_named(library, client, estate, double, disks):
    # Real VDDK meets the certificate only in Open, and says VIX_E_FAIL ("Unknown error"), not 18000 at ConnectEx.
    target = SessionTarget.from_client(client, estate["vms"][VM_NAME]["moid"])
    wrong = "00:" * 19 + "00"
    conn = VddkConnection(library, client.hostname, wrong, target.vm_moref, client.session_cookie,
                          snapshot_moref=SNAPSHOT, port=client.port, transports=["nbdssl"],
                          user_name=target.user_name, session_key=target.secrets[1])
    with conn:
        with pytest.raises(VddkError) as caught:
            conn.open_disk(disks[0]["path"])
    assert caught.value.code == structs.VIX_E_FAIL
    assert str(caught.value) == (
        "opening %s: VixDiskLib_Open failed: Unknown error (VIX error 1); check the thumbprint: VDDK meets "
        "vCenter's certificate only when it opens a disk and reports a thumbprint that does not match as this "
        "unknown error (thumbprint given: %s)" % (disks[0]["path"], wrong))
    assert client.session_cookie not in str(caught.value)
    assert double.calls("ConnectEx")[-1]["result"] == 0


def test_session_credentials_need_user_name_and_key(library, client, estate, double):
    moid = estate["vms"][VM_NAME]["moid"]
    with pytest.raises(InvalidArgumentError) as caught:
        VddkConnection(library, client.hostname, client.server_thumbprint(), moid, client.session_cookie,
                       transports=["nbdssl"])
    assert str(caught.value) == ("VDDK needs the session's user name and key with its cookie "
                                 "(VIXDISKLIB_CRED_SESSIONID); user name and key missing")
    # ... and the library refuses NULL userName or key, where the real one may crash (raw ABI calls).
    api = library.api
    cookie, user = client.session_cookie.encode(), session_user(client).encode()
    for user_name, key in ((user, None), (None, b"key")):
        params = api.VixDiskLib_AllocateConnectParams()
        fields = params.contents
        fields.vmxSpec, fields.serverName = b"moref=" + moid.encode(), client.hostname.encode()
        fields.thumbPrint = client.server_thumbprint().encode()
        fields.credType = structs.VIXDISKLIB_CRED_SESSIONID
        fields.creds.sessionId.cookie, fields.creds.sessionId.userName = cookie, user_name
        fields.creds.sessionId.key = key
        handle = structs.VixDiskLibConnection()
        with pytest.raises(VddkError) as refused:
            api.VixDiskLib_ConnectEx(params, b"\x01", None, b"nbdssl", ctypes.byref(handle))
        assert refused.value.code == structs.VIX_E_INVALID_ARG
        with pytest.raises(VddkError):
            api.VixDiskLib_PrepareForAccess(params, b"vmcrypt.backup")
        api.VixDiskLib_FreeConnectParams(params)  # frees only the structure: the strings are Python's


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


def _direct_io_works(folder):
    probe = os.path.join(str(folder), ".direct-io-probe")
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
        return True
    except OSError:
        return False
    finally:
        if os.path.exists(probe):
            os.remove(probe)


@pytest.mark.parametrize("write_cache", ["direct", "buffered"])
def test_writes_bypass_the_page_cache_like_vmfs_unless_told(library, client, estate, double, disks, write_cache):
    disk = disks[1]
    double.write(write_cache=write_cache)
    odd = bytearray(pattern(11, 3 * SECTOR + 1))
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            vddk_disk.write(7, memoryview(odd)[1:])  # starts one byte into its buffer: not aligned
            vddk_disk.write(4096, pattern(12, CHUNK))
            assert bytes(vddk_disk.read(7, bytearray(3 * SECTOR))) == bytes(odd[1:])
    with open(disk["flat"], "rb") as handle:
        handle.seek(4096 * SECTOR)
        assert handle.read(CHUNK) == pattern(12, CHUNK)
    direct = write_cache == "direct" and _direct_io_works(os.path.dirname(disk["flat"]))
    assert [c["cache"] for c in double.calls("Write")] == ["direct" if direct else "buffered"] * 2


# -- queued writes: WriteAsync, its callback on another thread, Wait ---------------------------------------------------
def test_queued_writes_keep_several_in_flight_and_land_in_order(library, client, estate, double, disks):
    disk = disks[1]
    double.write(fault__write_delay_ms=30)  # slow enough that the queue fills
    chunks = [pattern(20 + number, CHUNK) for number in range(6)]
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            assert vddk_disk.writes_queue and vddk_disk.writes_in_flight == 4
            for number, data in enumerate(chunks):
                vddk_disk.queue_write(number * CHUNK // SECTOR, data)
            # a read on the handle comes after the writes queued before it
            assert bytes(vddk_disk.read(0, bytearray(6 * CHUNK))) == b"".join(chunks)
            vddk_disk.wait_writes()
            assert vddk_disk.unfinished_writes() == []
    with open(disk["flat"], "rb") as handle:
        assert handle.read(6 * CHUNK) == b"".join(chunks)
    queued = double.calls("WriteAsync")
    assert [(c["startSector"], c["result"]) for c in queued] == [
        (number * CHUNK // SECTOR, structs.VIX_ASYNC) for number in range(6)]
    assert double.calls("Write") == [] and len(double.calls("Wait")) == 1


def test_queued_writes_overlap_their_network_round_trips(library, client, estate, double, disks):
    """What WriteAsync is for: over NBD/NBDSSL each request waits a round trip; four in flight wait about one each."""
    disk = disks[1]
    double.write(latency_ms=100)
    data = pattern(50, CHUNK)
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            started = time.monotonic()
            for number in range(8):
                vddk_disk.write(number * CHUNK // SECTOR, data)
            one_at_a_time = time.monotonic() - started
            started = time.monotonic()
            for number in range(8):
                vddk_disk.queue_write(number * CHUNK // SECTOR, data)
            vddk_disk.wait_writes()
            queued = time.monotonic() - started
    assert one_at_a_time >= 0.8  # eight round trips, one after the other
    assert queued < one_at_a_time / 2, (queued, one_at_a_time)  # about two: four requests share each


def test_a_failed_queued_write_is_raised_with_its_sector_and_kept_for_a_retry(library, client, estate, double, disks):
    disk = disks[1]
    double.write(fault__write_error_offset=2 * CHUNK + 5)
    first, second, third = (pattern(30 + number, CHUNK) for number in range(3))
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            for number, data in enumerate((first, second, third)):
                vddk_disk.queue_write(number * CHUNK // SECTOR, data)
            with pytest.raises(VddkError) as caught:
                vddk_disk.wait_writes()
            expected = ("writing %d sectors at sector %d of %s: VixDiskLib_WriteAsync failed: The disk is not "
                        "accessible or an I/O error occurred (VIX error %d); the host could not read or write the "
                        "disk") % (CHUNK // SECTOR, 2 * CHUNK // SECTOR, disk["path"], structs.VIX_E_DISK_NOIO)
            assert str(caught.value) == expected
            assert [(sector, bytes(data)) for sector, data in vddk_disk.unfinished_writes()] == [
                (2 * CHUNK // SECTOR, third)]
            with pytest.raises(VddkError):  # nothing more is queued on a handle with a failed write
                vddk_disk.queue_write(3 * CHUNK // SECTOR, first)
    assert [c["startSector"] for c in double.calls("WriteAsync")] == [0, 128, 256]


def test_one_write_in_flight_or_no_write_async_means_plain_writes(library, client, estate, double, disks, monkeypatch):
    disk = disks[1]
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            vddk_disk.writes_in_flight = 1
            vddk_disk.queue_write(0, pattern(40, CHUNK))
            vddk_disk.writes_in_flight = 4
            monkeypatch.setattr(library.api, "VixDiskLib_WriteAsync", None)  # a VDDK build without it
            vddk_disk.queue_write(CHUNK // SECTOR, pattern(41, CHUNK))
            vddk_disk.wait_writes()
    assert [c["startSector"] for c in double.calls("Write")] == [0, 128] and double.calls("WriteAsync") == []


def test_read_write_needs_a_read_write_connection(library, client, estate, double, disks):
    with connect(library, client, estate) as conn:
        with pytest.raises(InvalidArgumentError):
            conn.open_disk(disks[0]["path"], read_only=False)


# -- item 8: requests of at most max_request bytes -----------------------------------------------------------------
def test_large_reads_and_writes_are_split_into_requests_of_at_most_2_mib(library, client, estate, double, disks):
    disk = disks[1]
    data = pattern(10, 5 * 1024 * 1024)  # 5 MiB: 2 + 2 + 1
    with connect(library, client, estate, snapshot_moref=None, read_only=False) as conn:
        with conn.open_disk(disk["path"]) as vddk_disk:
            vddk_disk.write(2048, data)
            assert bytes(vddk_disk.read(2048, bytearray(len(data)))) == data
    assert [(c["startSector"], c["numSectors"]) for c in double.calls("Write")] == [
        (2048, 4096), (6144, 4096), (10240, 2048)]
    assert [(c["startSector"], c["numSectors"]) for c in double.calls("Read")] == [
        (2048, 4096), (6144, 4096), (10240, 2048)]


def test_a_request_the_host_cannot_allocate_names_max_request(library, client, estate, double, disks, caplog):
    double.write(max_request=1024 * 1024)  # a host with less NFC memory than the binding's 2 MiB default
    caplog.set_level("WARNING", logger="vmcrypt.backup.vddk")
    with connect(library, client, estate) as conn, conn.open_disk(disks[0]["path"]) as vddk_disk:
        with pytest.raises(VddkError) as caught:
            vddk_disk.read(0, bytearray(2 * 1024 * 1024))
    assert caught.value.code == structs.VIX_E_OUT_OF_MEMORY
    assert str(caught.value).endswith("the request was too large for the host's NFC server; lower max_request")
    assert any("Failed to allocate the requested 2097176 bytes" in r.getMessage() for r in caplog.records)
    with connect(library, client, estate, max_request=1024 * 1024) as conn:
        with conn.open_disk(disks[0]["path"]) as vddk_disk:
            vddk_disk.read(0, bytearray(2 * 1024 * 1024))
    assert [c["numSectors"] for c in double.calls("Read")][-2:] == [2048, 2048]


# -- items 2 and 9: QueryAllocatedBlocks that cannot tell -------------------------------------------------------
def export_through_the_engine(library, client, estate, disk, repository_dir, warnings):
    """One disk through VddkDiskEndpoint and export_disk into a real repository; returns the disk's report."""
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
    from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.export import export_disk
    from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.plan import full_plan
    from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.vddk_endpoints import VddkDiskEndpoint

    credential = Credential.from_password("double-test-password")
    Repository.create(repository_dir, credential, chunk_size=1024 * 1024)
    repository = Repository.open(repository_dir, credential)
    endpoint = VddkDiskEndpoint(lambda: connect(library, client, estate), disk["path"], warn=warnings.append)
    source = endpoint.open()
    plan = full_plan(source.capacity, repository.chunk_size, source.allocated_extents())
    staged = repository.start_backup({"name": VM_NAME, "uuid": "u", "instance_uuid": "i", "moid": "vm-1"})
    handed = [source]
    with staged.open_disk("2000", source.capacity) as writer:
        report = export_disk(lambda: handed.pop() if handed else endpoint.open(), writer, plan)
    return report


@pytest.mark.parametrize("fault", ["unsupported", "whole"])
def test_allocated_blocks_that_cannot_tell_mean_a_full_read_with_a_warning(library, client, estate, double, disks,
                                                                           tmp_path, fault):
    disk = disks[0]
    put(disk["flat"], 3 * 1024 * 1024, pattern(11, CHUNK))
    double.write(fault__query_blocks=fault)
    warnings = []
    report = export_through_the_engine(library, client, estate, disk, str(tmp_path / "repo"), warnings)
    assert report["bytes_read"] == disk["sectors"] * SECTOR  # every chunk read ...
    assert report["zero_chunks"] == 15 and report["new_chunks"] == 1  # ... the zeros not stored
    [warning] = warnings
    assert disk["path"] in warning and "read in full" in warning
    if fault == "unsupported":
        assert ("VixDiskLib_QueryAllocatedBlocks failed: The operation is not supported (VIX error 6); this "
                "datastore cannot list allocated blocks (VDDK can on VMFS and vSAN); read the whole disk") in warning
    else:
        assert "reports every block" in warning
        assert double.calls("QueryAllocatedBlocks")[-1]["numBlocks"] == 1


def test_allocated_blocks_that_can_tell_are_used(library, client, estate, double, disks, tmp_path):
    disk = disks[0]
    put(disk["flat"], 3 * 1024 * 1024, pattern(11, CHUNK))
    warnings = []
    report = export_through_the_engine(library, client, estate, disk, str(tmp_path / "repo"), warnings)
    assert report["bytes_read"] == 1024 * 1024 and warnings == []


# -- item 9: VDDK's log comes through three callbacks, from VDDK's threads ----------------------------------------
def test_warnings_arrive_through_the_warning_callback_from_a_background_thread(library, client, estate, double,
                                                                               disks, caplog):
    caplog.set_level("DEBUG", logger="vmcrypt.backup.vddk")
    with connect(library, client, estate, transports=["san", "nbdssl"]) as conn:
        conn.open_disk(disks[0]["path"]).close()
    records = [r for r in caplog.records if r.name == "vmcrypt.backup.vddk" and r.getMessage().startswith("VixDisk")]
    san = [r for r in records if "cannot use mode san" in r.getMessage()]
    echoed = [r for r in records if "ConnectEx to" in r.getMessage()]
    assert san and all(r.levelname == "WARNING" for r in san)
    assert echoed and all(r.levelname == "INFO" for r in echoed)
    assert all(r.thread != threading.main_thread().ident for r in san + echoed)


# -- item 5: PrepareForAccess / EndAccess around the snapshot's whole life ---------------------------------------
def test_access_is_prepared_once_around_every_connection_of_a_backup(library, client, estate, double, disks):
    target = SessionTarget.from_client(client, estate["vms"][VM_NAME]["moid"])
    library.prepare_for_access(target)           # before the snapshot is created
    try:
        for disk in disks:                       # one connection per disk, none toggles access itself
            with connect(library, client, estate, manage_access=False) as conn:
                conn.open_disk(disk["path"]).close()
    finally:
        library.end_access(target)               # after the snapshot is removed
    calls = [c["call"] for c in double.calls() if c["call"] in ("PrepareForAccess", "ConnectEx", "EndAccess")]
    assert calls == ["PrepareForAccess", "ConnectEx", "ConnectEx", "EndAccess"]
    assert [c["accessPrepared"] for c in double.calls("ConnectEx")] == [1, 1]
    assert all(c["identity"] == "vmcrypt.backup" and c["keyGiven"] == 1
               for c in double.calls() if c["call"] in ("PrepareForAccess", "EndAccess"))
    with connect(library, client, estate, manage_access=False) as conn:
        pass
    assert double.calls("ConnectEx")[-1]["accessPrepared"] == 0


def test_prepare_for_access_retries_while_the_method_is_already_disabled(library, client, estate, double, caplog):
    double.write(fault__access_busy=2)  # another backup, or a crashed one, holds the VM
    target = SessionTarget.from_client(client, estate["vms"][VM_NAME]["moid"])
    pauses = []
    library.prepare_for_access(target, delay=60.0, sleep=pauses.append)
    library.end_access(target)
    assert pauses == [60.0, 60.0]
    assert [c["result"] for c in double.calls("PrepareForAccess")] == [5, 5, 0]
    assert any("MethodAlreadyDisabledFault" in r.getMessage() for r in caplog.records)


def test_prepare_for_access_gives_up_after_its_attempts(library, client, estate, double):
    double.write(fault__access_busy=5)
    target = SessionTarget.from_client(client, estate["vms"][VM_NAME]["moid"])
    with pytest.raises(VddkError) as caught:
        library.prepare_for_access(target, attempts=3, delay=0, sleep=lambda seconds: None)
    assert caught.value.code == 5
    expected = ("preparing access to %s (%s) (RelocateVM_Task disabled for the backup), 3 attempts: "
                "VixDiskLib_PrepareForAccess failed" % (client.hostname, target.vm_moref))
    assert str(caught.value).startswith(expected)
    assert str(caught.value).endswith("VixDiskLib_EndAccess with the same identity re-enables it")
    assert len(double.calls("PrepareForAccess")) == 3


# -- items 1, 6 and 9 in processes of their own ------------------------------------------------------------------
def run_python(body, double, env=None, check=True):
    """Run PRELUDE and ``body`` in a new interpreter without LD_LIBRARY_PATH (unless ``env`` sets it)."""
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path),
                       VMCRYPT_VDDK_DOUBLE_CONFIG=double.config_path, VMCRYPT_VDDK_LIBDIR=DOUBLE_LIBDIR)
    environment.pop("LD_LIBRARY_PATH", None)
    environment.update(env or {})
    completed = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(body)], env=environment,
                               capture_output=True, text=True, timeout=120, check=False)
    if check:
        assert completed.returncode == 0, completed.stderr
    return completed


LIB64 = os.path.join(DOUBLE_LIBDIR, "lib64")
PRELUDE = """
import json, logging, os, sys, threading
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import process
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
"""


def test_without_lib64_on_ld_library_path_from_the_start_initex_fails_with_the_fix(double):
    completed = run_python("""
        try:
            VddkLibrary.get()
        except VddkError as error:
            print(error)
    """, double)
    assert completed.stdout.strip() == (
        "initialising VDDK from %s: VixDiskLib_InitEx failed: Unknown error (VIX error 1); VDDK could not load "
        "its own libraries: <libdir>/lib64 must be on LD_LIBRARY_PATH when the process starts "
        "(vddk/process.py ensure_library_path)" % DOUBLE_LIBDIR)
    assert "Failed to load libvixDiskLibVim.so.8" in completed.stderr
    # Setting it once the process runs is too late: the loader read it at start.
    completed = run_python("""
        os.environ["LD_LIBRARY_PATH"] = %r
        try:
            VddkLibrary.get()
        except VddkError as error:
            print(error.code)
    """ % LIB64, double)
    assert completed.stdout.strip() == "1"


def test_ensure_library_path_runs_the_program_again_with_it(double):
    completed = run_python("""
        print("started", os.getpid(), os.environ.get("LD_LIBRARY_PATH"), flush=True)
        ready = process.ensure_library_path()
        VddkLibrary.get()
        print("ready", os.getpid(), ready, os.environ.get("LD_LIBRARY_PATH"), process.MARKER in os.environ)
    """, double, env={"LD_LIBRARY_PATH": "/opt/other"})
    first, second, ready = completed.stdout.split("\n")[:3]
    assert first.split()[2] == "/opt/other"
    assert second.split()[2] == LIB64 + ":/opt/other" and first.split()[1] == second.split()[1]  # same process
    # In the new run VDDK loaded, and its children get the caller's variable back.
    assert ready.split()[2:] == [LIB64, "/opt/other", "False"]
    [init] = double.calls("InitEx")
    assert init["result"] == 0 and init["mainThread"] == 1


def test_a_program_read_from_standard_input_is_not_re_executed(double):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), VMCRYPT_VDDK_LIBDIR=DOUBLE_LIBDIR)
    environment.pop("LD_LIBRARY_PATH", None)
    script = PRELUDE + "\ntry:\n    process.ensure_library_path()\nexcept VddkError as error:\n    print(error)\n"
    completed = subprocess.run([sys.executable, "-"], input=script, env=environment, capture_output=True,
                               text=True, timeout=60, check=True)
    assert "it was read from standard input" in completed.stdout


def test_initex_once_from_the_main_thread_and_exit_at_the_end(double):
    completed = run_python("""
        library = VddkLibrary.get()
        assert VddkLibrary.get() is library
        library.exit()
        try:
            VddkLibrary.get()
        except VddkError as error:
            print(error)
    """, double, env={"LD_LIBRARY_PATH": LIB64})
    assert completed.stdout.strip() == ("VDDK from %s was shut down (VixDiskLib_Exit) in this process and cannot "
                                        "be initialised again; use it from a new process" % DOUBLE_LIBDIR)
    assert [c["call"] for c in double.calls()] == ["InitEx", "Exit"]
    # Without an explicit exit(), Exit runs when the interpreter exits, on the main thread.
    run_python("VddkLibrary.get()\n", double, env={"LD_LIBRARY_PATH": LIB64})
    assert [(c["call"], c["mainThread"]) for c in double.calls()][2:] == [("InitEx", 1), ("Exit", 1)]
    # And a first use from another thread is refused before InitEx.
    completed = run_python("""
        failures = []
        def worker():
            try:
                VddkLibrary.get()
            except VddkError as error:
                failures.append(str(error))
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        print(failures[0])
    """, double, env={"LD_LIBRARY_PATH": LIB64})
    assert completed.stdout.startswith("VDDK must be initialised from the main thread")
    assert len(double.calls("InitEx")) == 2


def test_the_double_refuses_initex_after_exit(double):
    completed = run_python("""
        from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader, structs
        api = loader.load()
        log = structs.LogFunc(lambda fmt, args: None)
        print(api.VixDiskLib_InitEx(7, 0, log, log, log, api.libdir.encode(), None))
        api.VixDiskLib_Exit()
        try:
            api.VixDiskLib_InitEx(7, 0, log, log, log, api.libdir.encode(), None)
        except VddkError as error:
            print(error.code)
    """, double, env={"LD_LIBRARY_PATH": LIB64})
    assert completed.stdout.split() == ["0", "1"]
    assert double.calls("InitEx")[-1]["refused"].startswith("VixDiskLib_InitEx called after VixDiskLib_Exit")


def test_free_connect_params_leaves_the_callers_strings_alone(double):
    completed = run_python("""
        import ctypes
        from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader, structs
        api = loader.load()
        name = ctypes.create_string_buffer(b"vcenter.example")
        params = api.VixDiskLib_AllocateConnectParams()
        params.contents.serverName = ctypes.cast(name, ctypes.c_char_p)
        params.contents.credType = structs.VIXDISKLIB_CRED_SESSIONID
        params.contents.creds.sessionId.cookie = ctypes.cast(name, ctypes.c_char_p)
        api.VixDiskLib_FreeConnectParams(params)
        print(name.value.decode())
    """, double, env={"LD_LIBRARY_PATH": LIB64}, check=False)
    assert (completed.returncode, completed.stdout.strip()) == (0, "vcenter.example"), completed.stderr


@pytest.mark.parametrize("pipelining", ["False", "True"])
def test_a_module_respawns_itself_with_lib64_and_the_controller_keeps_its_environment(vcsim, estate, double, disks,
                                                                                      tmp_path, pipelining):
    # AnsiballZ hands the module its arguments inside the payload (on stdin when pipelining); the module
    # runs again through Ansible's respawn with lib64 on LD_LIBRARY_PATH, inside the module process only.
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
    from playbook import run_playbook
    from vsphere_env import vmware_env

    repository = str(tmp_path / "repo")
    Repository.create(repository, Credential.from_password("double-test-password"), chunk_size=256 * 1024)
    double.snapshots = ["*"]
    double.write()
    env = vmware_env(vcsim)
    env.update(VMCRYPT_REPOSITORY_PASSWORD="double-test-password", VMCRYPT_VDDK_LIBDIR=DOUBLE_LIBDIR,
               VMCRYPT_VDDK_DOUBLE_CONFIG=double.config_path, ANSIBLE_PIPELINING=pipelining)
    assert LIB64 not in os.environ.get("LD_LIBRARY_PATH", "")
    run = run_playbook(tmp_path, [{"name": "export", "vmcrypt.backup.disk_export": {
        "name": VM_NAME, "repository": repository, "transports": ["nbdssl"], "disks": ["2001"]}}], env=env)
    assert run["export"]["_status"] == "ok", run.output
    assert [c["result"] for c in double.calls("InitEx")] == [0]
    assert double.calls()[-1]["call"] == "Exit"  # at the end of the module run
    assert LIB64 not in os.environ.get("LD_LIBRARY_PATH", "")
