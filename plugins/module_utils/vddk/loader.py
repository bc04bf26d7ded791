# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find libvixDiskLib under a VDDK directory and bind its functions.

Nothing is loaded at import: ``load()`` is called when a disk is needed,
so a missing VDDK is a one-line error saying what to install, not an
ImportError.  Every function gets argtypes and restype; those returning a
VixError get an errcheck that raises VddkError with VDDK's own text.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import os
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError, VddkNotInstalledError

LIBDIR_ENV = "VMCRYPT_VDDK_LIBDIR"
# Newest first.  VDDK 7.0 ships .so.7, 8.0 ships .so.8; .so.9 is tried for
# the next major release, whose ABI for these calls is expected to hold.
SUPPORTED_SONAMES = (("libvixDiskLib.so.9", 9), ("libvixDiskLib.so.8", 8), ("libvixDiskLib.so.7", 7))
OLD_SONAMES = ("libvixDiskLib.so.6", "libvixDiskLib.so.5")
INSTALL_HINT = ("install VDDK 7.0 or newer from Broadcom/VMware, extracted so that "
                "<libdir>/lib64/libvixDiskLib.so.N exists, and set option vddk_libdir or %s" % LIBDIR_ENV)

P = ctypes.POINTER
ConnectParamsP = P(s.VixDiskLibConnectParams)

# name: (restype, argtypes, returns a VixError, optional)
# Optional symbols, as nbdkit treats them, are looked up and may be absent:
# they appeared in VDDK 6.0 (Flush, WriteAsync, Wait) and 6.7
# (QueryAllocatedBlocks, FreeBlockList), and a stripped or future build may
# lack them.  WriteAsync returns VIX_ASYNC, not VIX_OK, when it succeeds, so
# its result is checked by its caller, not by errcheck.
FUNCTIONS = {
    "VixDiskLib_InitEx": (s.VixError, [ctypes.c_uint32, ctypes.c_uint32, s.LogFunc, s.LogFunc, s.LogFunc,
                                       ctypes.c_char_p, ctypes.c_char_p], True, False),
    "VixDiskLib_Exit": (None, [], False, False),
    "VixDiskLib_GetErrorText": (ctypes.c_void_p, [s.VixError, ctypes.c_char_p], False, False),
    "VixDiskLib_FreeErrorText": (None, [ctypes.c_void_p], False, False),
    "VixDiskLib_AllocateConnectParams": (ConnectParamsP, [], False, False),
    "VixDiskLib_FreeConnectParams": (None, [ConnectParamsP], False, False),
    "VixDiskLib_PrepareForAccess": (s.VixError, [ConnectParamsP, ctypes.c_char_p], True, False),
    "VixDiskLib_EndAccess": (s.VixError, [ConnectParamsP, ctypes.c_char_p], True, False),
    "VixDiskLib_Cleanup": (s.VixError, [ConnectParamsP, P(ctypes.c_uint32), P(ctypes.c_uint32)], True, False),
    "VixDiskLib_ConnectEx": (s.VixError, [ConnectParamsP, ctypes.c_char, ctypes.c_char_p, ctypes.c_char_p,
                                          P(s.VixDiskLibConnection)], True, False),
    "VixDiskLib_Disconnect": (s.VixError, [s.VixDiskLibConnection], True, False),
    "VixDiskLib_Open": (s.VixError, [s.VixDiskLibConnection, ctypes.c_char_p, ctypes.c_uint32,
                                     P(s.VixDiskLibHandle)], True, False),
    "VixDiskLib_Close": (s.VixError, [s.VixDiskLibHandle], True, False),
    "VixDiskLib_GetTransportMode": (ctypes.c_char_p, [s.VixDiskLibHandle], False, False),
    "VixDiskLib_GetInfo": (s.VixError, [s.VixDiskLibHandle, P(P(s.VixDiskLibInfo))], True, False),
    "VixDiskLib_FreeInfo": (None, [P(s.VixDiskLibInfo)], False, False),
    "VixDiskLib_Read": (s.VixError, [s.VixDiskLibHandle, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p],
                        True, False),
    "VixDiskLib_Write": (s.VixError, [s.VixDiskLibHandle, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p],
                         True, False),
    "VixDiskLib_WriteAsync": (s.VixError, [s.VixDiskLibHandle, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p,
                                           s.CompletionCB, ctypes.c_void_p], False, True),
    "VixDiskLib_Wait": (s.VixError, [s.VixDiskLibHandle], True, True),
    "VixDiskLib_Flush": (s.VixError, [s.VixDiskLibHandle], True, True),
    "VixDiskLib_QueryAllocatedBlocks": (s.VixError, [s.VixDiskLibHandle, ctypes.c_uint64, ctypes.c_uint64,
                                                     ctypes.c_uint64, P(P(s.VixDiskLibBlockList))], True, True),
    "VixDiskLib_FreeBlockList": (s.VixError, [P(s.VixDiskLibBlockList)], True, True),
}


def resolve_libdir(libdir=None):
    """The VDDK directory from the option, else the environment; checked to exist."""
    libdir = libdir or os.environ.get(LIBDIR_ENV)
    if not libdir:
        raise VddkNotInstalledError("VDDK location not set: " + INSTALL_HINT)
    if not os.path.isdir(libdir):
        raise VddkNotInstalledError("VDDK directory %s does not exist: %s" % (libdir, INSTALL_HINT))
    return os.path.abspath(libdir)


def find_library(libdir):
    """(path, major) of the newest supported libvixDiskLib under libdir/lib64."""
    lib64 = os.path.join(libdir, "lib64")
    for soname, major in SUPPORTED_SONAMES:
        path = os.path.join(lib64, soname)
        if os.path.exists(path):
            return path, major
    for soname in OLD_SONAMES:
        if os.path.exists(os.path.join(lib64, soname)):
            raise VddkNotInstalledError("%s/%s is too old (VDDK 6.x is not supported): %s"
                                        % (lib64, soname, INSTALL_HINT))
    raise VddkNotInstalledError("no libvixDiskLib.so.9, .so.8 or .so.7 in %s: %s" % (lib64, INSTALL_HINT))


class VddkApi:
    """The bound functions of one loaded libvixDiskLib (attributes by C name)."""

    def __init__(self, cdll, path, major, libdir):
        self.cdll = cdll
        self.path = path
        self.major = major
        self.libdir = libdir
        for name, (restype, argtypes, checked, optional) in FUNCTIONS.items():
            try:
                function = getattr(cdll, name)
            except AttributeError:
                if optional:
                    setattr(self, name, None)
                    continue
                raise VddkNotInstalledError("%s lacks %s, which every VDDK 7.0 or newer has: %s"
                                            % (path, name, INSTALL_HINT))
            function.restype = restype
            function.argtypes = argtypes
            if checked:
                function.errcheck = self._errcheck
            setattr(self, name, function)

    def supports(self, name):
        """Whether an optional function is usable (with its Free partner)."""
        if name == "VixDiskLib_QueryAllocatedBlocks":
            return self.VixDiskLib_QueryAllocatedBlocks is not None and self.VixDiskLib_FreeBlockList is not None
        if name == "VixDiskLib_WriteAsync":
            return self.VixDiskLib_WriteAsync is not None and self.VixDiskLib_Wait is not None
        return getattr(self, name, None) is not None

    def error_text(self, raw):
        """VDDK's message for a VixError; the returned string is freed after copying."""
        pointer = self.VixDiskLib_GetErrorText(raw, None)
        if not pointer:
            return None
        try:
            return ctypes.string_at(pointer).decode("utf-8", "replace").strip()
        finally:
            self.VixDiskLib_FreeErrorText(pointer)

    def _errcheck(self, result, function, arguments):
        if result != s.VIX_OK:
            raise VddkError.from_vix(function.__name__, result, self.error_text(result))
        return result


_LOADED = {}
_LOCK = threading.Lock()


def load(libdir=None):
    """The bound library under libdir (option, else VMCRYPT_VDDK_LIBDIR); loaded once per process."""
    libdir = resolve_libdir(libdir)
    path, major = find_library(libdir)
    real = os.path.realpath(path)
    with _LOCK:
        if real not in _LOADED:
            try:
                cdll = ctypes.CDLL(path)
            except OSError as error:
                raise VddkNotInstalledError(
                    "cannot load %s (%s): is it complete, and is %s on LD_LIBRARY_PATH for its dependencies? %s"
                    % (path, str(error).splitlines()[0], os.path.dirname(path), INSTALL_HINT))
            _LOADED[real] = VddkApi(cdll, path, major, libdir)
        return _LOADED[real]
