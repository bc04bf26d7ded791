# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VDDK 7.x/8.x ABI: constants, structures and function types.

Layouts follow vixDiskLib.h of VDDK 7.0 and 8.0 (x86_64, LP64): ``long``
and pointers are 8 bytes, enums 4.  tests/unit/vddk checks every offset.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes

VixError = ctypes.c_uint64

VIX_OK = 0
VIX_E_FAIL = 1
VIX_E_OUT_OF_MEMORY = 2
VIX_E_INVALID_ARG = 3
VIX_E_FILE_NOT_FOUND = 4
VIX_E_NOT_SUPPORTED = 6
VIX_E_FILE_ERROR = 7
VIX_E_FILE_READ_ONLY = 11
VIX_E_FILE_NAME_INVALID = 22
VIX_E_AUTHENTICATION_FAIL = 35
VIX_E_VM_NOT_FOUND = 4000
VIX_E_SNAPSHOT_NOTFOUND = 13003
VIX_E_HOST_TCP_CONN_LOST = 14011
VIX_E_DISK_NOINIT = 16001
VIX_E_DISK_NOIO = 16002
VIX_E_DISK_OUTOFRANGE = 16007
VIX_E_CANNOT_CONNECT_TO_HOST = 18000
# Not an error: ReadAsync/WriteAsync queued the request; its callback gives the result.
VIX_ASYNC = 25000

VIXDISKLIB_SECTOR_SIZE = 512
VIXDISKLIB_MIN_CHUNK_SIZE = 128
VIXDISKLIB_MAX_CHUNK_NUMBER = 512 * 1024

VIXDISKLIB_FLAG_OPEN_UNBUFFERED = 1
VIXDISKLIB_FLAG_OPEN_SINGLE_LINK = 2
VIXDISKLIB_FLAG_OPEN_READ_ONLY = 4
VIXDISKLIB_FLAG_OPEN_COMPRESSION_ZLIB = 16
VIXDISKLIB_FLAG_OPEN_COMPRESSION_FASTLZ = 32
VIXDISKLIB_FLAG_OPEN_COMPRESSION_SKIPZ = 64

VIXDISKLIB_CRED_UID = 1
VIXDISKLIB_CRED_SESSIONID = 2
VIXDISKLIB_CRED_TICKETID = 3
VIXDISKLIB_CRED_SSPI = 4
VIXDISKLIB_CRED_UNKNOWN = 256

VIXDISKLIB_SPEC_VMX = 0
VIXDISKLIB_SPEC_VSTORAGE_OBJECT = 1

ADAPTER_TYPES = {1: "ide", 2: "scsi-buslogic", 3: "scsi-lsilogic", 256: "unknown"}

# The transport mode names VDDK knows for a vSphere disk, as ConnectEx takes them (joined by ":").
# The one list of the collection: option choices, the access decision and the catalog use it.
# ("file", VDDK's local-disk mode, never reaches a vSphere disk and is not offered.)
TRANSPORTS = ("nbdssl", "hotadd", "nbd", "san")


class VixDiskLibUidPasswdCreds(ctypes.Structure):
    _fields_ = [("userName", ctypes.c_char_p), ("password", ctypes.c_char_p)]


class VixDiskLibSessionIdCreds(ctypes.Structure):
    _fields_ = [("cookie", ctypes.c_char_p), ("userName", ctypes.c_char_p), ("key", ctypes.c_char_p)]


class VixDiskLibCreds(ctypes.Union):
    # ticketId points to an opaque structure VDDK owns.
    _fields_ = [("uid", VixDiskLibUidPasswdCreds), ("sessionId", VixDiskLibSessionIdCreds),
                ("ticketId", ctypes.c_void_p)]


class VixDiskLibVStorageObjectSpec(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char_p), ("datastoreMoRef", ctypes.c_char_p), ("ssId", ctypes.c_char_p)]


class VixDiskLibSpec(ctypes.Union):
    _fields_ = [("vStorageObjSpec", VixDiskLibVStorageObjectSpec)]


class VixDiskLibConnectParams(ctypes.Structure):
    # Allocated by VixDiskLib_AllocateConnectParams, so a VDDK that grows the
    # structure at its end still gets all of it.
    _fields_ = [
        ("vmxSpec", ctypes.c_char_p),
        ("serverName", ctypes.c_char_p),
        ("thumbPrint", ctypes.c_char_p),
        ("reserved1", ctypes.c_long),
        ("credType", ctypes.c_int),
        ("creds", VixDiskLibCreds),
        ("port", ctypes.c_uint32),
        ("nfcHostPort", ctypes.c_uint32),
        ("reserved3", ctypes.c_char_p),
        ("reserved4", ctypes.c_char * 8),
        ("reserved5", ctypes.c_void_p),
        ("spec", VixDiskLibSpec),
        ("specType", ctypes.c_int),
    ]


class VixDiskLibGeometry(ctypes.Structure):
    _fields_ = [("cylinders", ctypes.c_uint32), ("heads", ctypes.c_uint32), ("sectors", ctypes.c_uint32)]


class VixDiskLibInfo(ctypes.Structure):
    # logicalSectorSize and physicalSectorSize exist since VDDK 7.0.
    _fields_ = [
        ("biosGeo", VixDiskLibGeometry),
        ("physGeo", VixDiskLibGeometry),
        ("capacity", ctypes.c_uint64),
        ("adapterType", ctypes.c_int),
        ("numLinks", ctypes.c_int),
        ("parentFileNameHint", ctypes.c_char_p),
        ("uuid", ctypes.c_char_p),
        ("logicalSectorSize", ctypes.c_uint32),
        ("physicalSectorSize", ctypes.c_uint32),
    ]


class VixDiskLibBlock(ctypes.Structure):
    # Both in sectors.
    _fields_ = [("offset", ctypes.c_uint64), ("length", ctypes.c_uint64)]


class VixDiskLibBlockList(ctypes.Structure):
    # numBlocks entries follow from blocks onwards (a C flexible array).
    _fields_ = [("numBlocks", ctypes.c_uint32), ("blocks", VixDiskLibBlock * 1)]


# void VixDiskLibGenericLogFunc(const char *fmt, va_list args): va_list is
# passed as a pointer on x86_64 (an array type) and aarch64 (a large struct).
LogFunc = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_void_p)
# void VixDiskLibCompletionCB(void *cbData, VixError result), called on a VDDK thread.
CompletionCB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, VixError)

VixDiskLibConnection = ctypes.c_void_p
VixDiskLibHandle = ctypes.c_void_p
