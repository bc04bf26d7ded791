"""The ctypes layouts equal VDDK 7.x/8.x vixDiskLib.h on x86_64 (LP64).

The expected offsets are literals worked out from the header by hand:
pointers and long are 8 bytes and 8-aligned, enums and uint32 4 bytes,
uint64 8-aligned.  The double's C header is compiled and must agree too.
"""
import ctypes
import os
import subprocess

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# VixDiskLibConnectParams: vmxSpec, serverName, thumbPrint (3 pointers: 0, 8, 16),
# long reserved1 (24), enum credType (32, then 4 bytes padding), the creds union
# of at most 3 pointers (40..64), uint32 port (64), uint32 nfcHostPort (68),
# char *reserved3 (72), char reserved4[8] (80), void *reserved5 (88), the spec
# union of 3 pointers (96..120), enum specType (120), padded to 128.
CONNECT_PARAMS = {"vmxSpec": 0, "serverName": 8, "thumbPrint": 16, "reserved1": 24, "credType": 32,
                  "creds": 40, "port": 64, "nfcHostPort": 68, "reserved3": 72, "reserved4": 80,
                  "reserved5": 88, "spec": 96, "specType": 120}
# VixDiskLibInfo: two geometries of 3 uint32 (0, 12), uint64 capacity (24),
# enum adapterType (32), int numLinks (36), two pointers (40, 48), the two
# uint32 sector sizes VDDK 7.0 added (56, 60): 64 bytes.
INFO = {"biosGeo": 0, "physGeo": 12, "capacity": 24, "adapterType": 32, "numLinks": 36,
        "parentFileNameHint": 40, "uuid": 48, "logicalSectorSize": 56, "physicalSectorSize": 60}


def offsets(structure):
    return dict((field[0], getattr(structure, field[0]).offset) for field in structure._fields_)


def test_connect_params_layout():
    assert offsets(s.VixDiskLibConnectParams) == CONNECT_PARAMS
    assert ctypes.sizeof(s.VixDiskLibConnectParams) == 128
    assert ctypes.sizeof(s.VixDiskLibCreds) == 24
    assert offsets(s.VixDiskLibUidPasswdCreds) == {"userName": 0, "password": 8}
    assert offsets(s.VixDiskLibSessionIdCreds) == {"cookie": 0, "userName": 8, "key": 16}
    assert s.VixDiskLibCreds.ticketId.offset == 0
    assert ctypes.sizeof(s.VixDiskLibSpec) == 24


def test_info_geometry_and_block_layouts():
    assert offsets(s.VixDiskLibInfo) == INFO
    assert ctypes.sizeof(s.VixDiskLibInfo) == 64
    assert offsets(s.VixDiskLibGeometry) == {"cylinders": 0, "heads": 4, "sectors": 8}
    assert ctypes.sizeof(s.VixDiskLibGeometry) == 12
    assert offsets(s.VixDiskLibBlock) == {"offset": 0, "length": 8}
    assert ctypes.sizeof(s.VixDiskLibBlock) == 16
    # uint32 numBlocks, then blocks[] aligned for uint64.
    assert offsets(s.VixDiskLibBlockList) == {"numBlocks": 0, "blocks": 8}
    assert ctypes.sizeof(s.VixDiskLibBlockList) == 24


def test_constants_match_the_header():
    assert (s.VIX_OK, s.VIX_E_FILE_NOT_FOUND, s.VIX_E_NOT_SUPPORTED) == (0, 4, 6)
    assert (s.VIXDISKLIB_SECTOR_SIZE, s.VIXDISKLIB_MIN_CHUNK_SIZE, s.VIXDISKLIB_MAX_CHUNK_NUMBER) == (512, 128, 524288)
    assert (s.VIXDISKLIB_FLAG_OPEN_UNBUFFERED, s.VIXDISKLIB_FLAG_OPEN_SINGLE_LINK,
            s.VIXDISKLIB_FLAG_OPEN_READ_ONLY) == (1, 2, 4)
    assert (s.VIXDISKLIB_CRED_UID, s.VIXDISKLIB_CRED_SESSIONID, s.VIXDISKLIB_CRED_TICKETID,
            s.VIXDISKLIB_CRED_SSPI, s.VIXDISKLIB_CRED_UNKNOWN) == (1, 2, 3, 4, 256)
    assert ctypes.sizeof(s.VixError) == 8


PROBE = r'''
#include <stddef.h>
#include <stdio.h>
#include "vddk_abi.h"
#define P(t, f) printf(#t "." #f " %zu\n", offsetof(t, f))
int main(void) {
    P(VixDiskLibConnectParams, vmxSpec); P(VixDiskLibConnectParams, serverName);
    P(VixDiskLibConnectParams, thumbPrint); P(VixDiskLibConnectParams, reserved1);
    P(VixDiskLibConnectParams, credType); P(VixDiskLibConnectParams, creds);
    P(VixDiskLibConnectParams, port); P(VixDiskLibConnectParams, nfcHostPort);
    P(VixDiskLibConnectParams, reserved3); P(VixDiskLibConnectParams, reserved4);
    P(VixDiskLibConnectParams, reserved5); P(VixDiskLibConnectParams, spec);
    P(VixDiskLibConnectParams, specType);
    P(VixDiskLibInfo, biosGeo); P(VixDiskLibInfo, physGeo); P(VixDiskLibInfo, capacity);
    P(VixDiskLibInfo, adapterType); P(VixDiskLibInfo, numLinks); P(VixDiskLibInfo, parentFileNameHint);
    P(VixDiskLibInfo, uuid); P(VixDiskLibInfo, logicalSectorSize); P(VixDiskLibInfo, physicalSectorSize);
    printf("sizeof.VixDiskLibConnectParams %zu\nsizeof.VixDiskLibInfo %zu\nsizeof.VixDiskLibBlockList %zu\n",
           sizeof(VixDiskLibConnectParams), sizeof(VixDiskLibInfo), sizeof(VixDiskLibBlockList));
    return 0;
}
'''


def test_the_double_is_compiled_with_the_same_layout(tmp_path):
    source = tmp_path / "probe.c"
    source.write_text(PROBE)
    binary = str(tmp_path / "probe")
    subprocess.run(["gcc", "-I", os.path.join(REPO_ROOT, "tests", "vddk_double"), "-o", binary, str(source)],
                   check=True)
    printed = subprocess.run([binary], check=True, capture_output=True, text=True).stdout.split("\n")
    found = dict(line.split(" ") for line in printed if line)
    expected = dict(("VixDiskLibConnectParams." + k, str(v)) for k, v in CONNECT_PARAMS.items())
    expected.update(("VixDiskLibInfo." + k, str(v)) for k, v in INFO.items())
    expected.update({"sizeof.VixDiskLibConnectParams": "128", "sizeof.VixDiskLibInfo": "64",
                     "sizeof.VixDiskLibBlockList": "24"})
    assert found == expected


@pytest.mark.parametrize("value, name", [(1, "ide"), (3, "scsi-lsilogic"), (256, "unknown")])
def test_adapter_names(value, name):
    assert s.ADAPTER_TYPES[value] == name
