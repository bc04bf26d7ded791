# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the VDDK binding: one family, one line each, never a secret."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError

# What a user can do about the codes a backup meets most often.
HINTS = {
    1: "VDDK gives no reason; look at its log lines (logger vmcrypt.backup.vddk, -vvv)",
    2: "VDDK or the host's NFC server could not allocate memory for the request",
    3: "VDDK refused an argument; with session credentials it needs the cookie, the user name and the key",
    4: "the disk path or its datastore is not visible to this VDDK connection",
    5: "another backup, or a crashed one, still holds the VM (RelocateVM_Task disabled); VixDiskLib_EndAccess "
       "with the same identity re-enables it",
    6: "the operation is not supported here",
    35: "the vSphere session was refused; log in again",
    4000: "the VM moref is not known to vCenter",
    13003: "the snapshot moref is not a snapshot of this VM",
    14011: "the connection to the host was lost; reconnect and resume",
    16002: "the host could not read or write the disk",
    18000: "check the server name and that the certificate thumbprint is current",
}

# Where a code means something particular for one function.
FUNCTION_HINTS = {
    ("VixDiskLib_InitEx", 1): "VDDK could not load its own libraries: <libdir>/lib64 must be on LD_LIBRARY_PATH "
                              "when the process starts (vddk/process.py ensure_library_path)",
    ("VixDiskLib_Open", 1): "check the thumbprint: VDDK meets vCenter's certificate only when it opens a disk "
                            "and reports a thumbprint that does not match as this unknown error",
    ("VixDiskLib_QueryAllocatedBlocks", 6): "this datastore cannot list allocated blocks (VDDK can on VMFS and "
                                            "vSAN); read the whole disk",
    ("VixDiskLib_Read", 2): "the request was too large for the host's NFC server; lower max_request",
    ("VixDiskLib_Write", 2): "the request was too large for the host's NFC server; lower max_request",
    ("VixDiskLib_WriteAsync", 2): "the request was too large for the host's NFC server; lower max_request",
}

# Codes after which a new connection may succeed where the old one failed:
# host connection lost (36), TCP connection refused / socket error / lost
# (14009-14011).
RETRYABLE_CODES = frozenset((36, 14009, 14010, 14011))


class VddkError(VmcryptError):
    """A VDDK call failed, or VDDK cannot be used here.

    code is the VIX error code (the low 16 bits of VixError), raw the
    whole 64-bit value, text VDDK's own message for it; all are None
    when the failure happened before VDDK was called.
    """

    def __init__(self, message, code=None, raw=None, text=None, function=None):
        super(VddkError, self).__init__(message)
        self.code = code
        self.raw = raw
        self.text = text
        self.function = function

    @property
    def retryable(self):
        """Whether reconnecting (Disconnect, ConnectEx, Open) and retrying may succeed."""
        return self.code in RETRYABLE_CODES

    @classmethod
    def from_vix(cls, function, raw, text, context=None):
        code = raw & 0xFFFF
        message = "%s failed: %s (VIX error %d)" % (function, text or "no error text", code)
        if context:
            message = "%s: %s" % (context, message)
        hint = FUNCTION_HINTS.get((function, code), HINTS.get(code))
        if hint:
            message = "%s; %s" % (message, hint)
        return cls(message, code=code, raw=raw, text=text, function=function)

    def in_context(self, context):
        """The same error, its message prefixed with what was being done."""
        return type(self)("%s: %s" % (context, self), code=self.code, raw=self.raw, text=self.text,
                          function=self.function)


class VddkNotInstalledError(VddkError):
    """No usable libvixDiskLib under the configured directory."""


class VddkTransportError(VddkError):
    """VDDK opened a disk over a transport mode the access decision did not allow (a fallback)."""
