# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VddkConnection: one VixDiskLib connection to a VM (and snapshot) in vCenter.

Credentials are the vSphere session's cookie (VIXDISKLIB_CRED_SESSIONID),
never a password; the cookie lives in memory VDDK reads, is masked in VDDK's
log lines and is zeroed when the connection ends.  Opening brackets the
connection with PrepareForAccess/EndAccess, as the guide asks, so vCenter
does not relocate the VM while its disks are read or written.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import logging

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import library as vddk_library
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.disk import VddkDisk
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

LOGGER = logging.getLogger("vmcrypt.backup.vddk")
DEFAULT_IDENTITY = "vmcrypt.backup"
DEFAULT_TRANSPORTS = ("hotadd", "nbdssl")


class _Strings:
    """NUL-terminated copies whose addresses go into the C structure; wipe() zeroes them."""

    def __init__(self):
        self._buffers = []

    def add(self, text):
        if text is None:
            return None
        buffer = ctypes.create_string_buffer(text.encode("utf-8"))
        self._buffers.append(buffer)
        return ctypes.cast(buffer, ctypes.c_char_p)

    def wipe(self):
        for buffer in self._buffers:
            ctypes.memset(buffer, 0, ctypes.sizeof(buffer))
        self._buffers = []


def _known_transports(transports):
    transports = list(transports or ())
    unknown = [mode for mode in transports if mode not in s.TRANSPORTS]
    if not transports or unknown:
        raise InvalidArgumentError("VDDK transport modes must be some of %s, got %s"
                                   % (", ".join(s.TRANSPORTS), ", ".join(transports) or "none"))
    return transports


class VddkConnection:
    """A connection to one VM's disks; use as a context manager.

    ``vm_moref`` is the VM's managed object id ("vm-42"), ``snapshot_moref``
    the backup snapshot's ("snapshot-7", None to reach the live disks, as a
    restore does).  ``transports`` is the order of preference, already
    decided by the access check (``workflows/access.py``): the binding holds
    no policy and only refuses names VDDK does not know.
    """

    def __init__(self, library, server, thumbprint, vm_moref, session_cookie, snapshot_moref=None, port=443,
                 transports=DEFAULT_TRANSPORTS, read_only=True, user_name=None, session_key=None, identity=DEFAULT_IDENTITY, nfc_host_port=0):
        if not server:
            raise InvalidArgumentError("VDDK needs the vCenter server name")
        if not thumbprint:
            raise InvalidArgumentError("VDDK needs vCenter's SHA-1 certificate thumbprint")
        if not vm_moref or not vm_moref.startswith("vm-"):
            raise InvalidArgumentError("VDDK needs the VM's moref (vm-N), got %r" % (vm_moref,))
        if not session_cookie:
            raise InvalidArgumentError("VDDK needs a logged-in vSphere session (its cookie); none was given")
        self.library = library
        self.server = server
        self.port = int(port)
        self.thumbprint = thumbprint
        self.vm_moref = vm_moref
        self.snapshot_moref = snapshot_moref
        self.read_only = bool(read_only)
        self.identity = identity
        self.user_name = user_name
        self.nfc_host_port = int(nfc_host_port or 0)
        self.transports = _known_transports(transports)
        self._cookie = session_cookie
        self._key = session_key
        self._strings = None
        self._params = None
        self._handle = None
        self._prepared = False

    @classmethod
    def from_client(cls, library, client, vm_moref, snapshot_moref=None, **options):
        """A connection on a logged-in VsphereClient's session (its host, port, cookie, thumbprint)."""
        return cls(library, client.hostname, client.server_thumbprint(), vm_moref, client.session_cookie,
                   snapshot_moref=snapshot_moref, port=client.port, **options)

    @property
    def transport_modes(self):
        """The modes string ConnectEx receives, e.g. "nbdssl:hotadd"."""
        return ":".join(self.transports)

    @property
    def connected(self):
        return self._handle is not None

    def describe(self):
        where = "%s (%s" % (self.server, self.vm_moref)
        if self.snapshot_moref:
            where += ", snapshot %s" % self.snapshot_moref
        return where + ")"

    def _build_params(self):
        api = self.library.api
        params = api.VixDiskLib_AllocateConnectParams()
        if not params:
            raise VddkError("VixDiskLib_AllocateConnectParams returned no memory")
        strings = _Strings()
        fields = params.contents
        fields.vmxSpec = strings.add("moref=%s" % self.vm_moref)
        fields.serverName = strings.add(self.server)
        fields.thumbPrint = strings.add(self.thumbprint)
        fields.credType = s.VIXDISKLIB_CRED_SESSIONID
        fields.creds.sessionId.cookie = strings.add(self._cookie)
        fields.creds.sessionId.userName = strings.add(self.user_name)
        fields.creds.sessionId.key = strings.add(self._key)
        fields.port = self.port
        fields.nfcHostPort = self.nfc_host_port
        fields.specType = s.VIXDISKLIB_SPEC_VMX
        return params, strings

    def _free_params(self):
        params, self._params = self._params, None
        if params:
            # FreeConnectParams frees the strings it points to: they are ours.
            fields = params.contents
            fields.vmxSpec = fields.serverName = fields.thumbPrint = None
            fields.creds.sessionId.cookie = fields.creds.sessionId.userName = None
            fields.creds.sessionId.key = None
            self.library.api.VixDiskLib_FreeConnectParams(params)
        if self._strings is not None:
            self._strings.wipe()
            self._strings = None

    def open(self):
        """PrepareForAccess, then ConnectEx; on failure nothing stays open."""
        if self._handle is not None:
            return self
        api = self.library.api
        vddk_library.register_secret(self._cookie)
        vddk_library.register_secret(self._key)
        self._params, self._strings = self._build_params()
        identity = self.identity.encode("utf-8")
        try:
            api.VixDiskLib_PrepareForAccess(self._params, identity)
            self._prepared = True
            handle = s.VixDiskLibConnection()
            api.VixDiskLib_ConnectEx(self._params, b"\x01" if self.read_only else b"\x00",
                                     self.snapshot_moref.encode("utf-8") if self.snapshot_moref else None,
                                     self.transport_modes.encode("utf-8"), ctypes.byref(handle))
            self._handle = handle
        except VddkError as error:
            self._teardown()
            raise error.in_context("connecting to %s over %s" % (self.describe(), self.transport_modes))
        except BaseException:
            self._teardown()
            raise
        LOGGER.info("VDDK connected to %s, transports %s", self.describe(), self.transport_modes)
        return self

    def _teardown(self):
        """Disconnect, EndAccess, Cleanup, free; every step runs, the first error is returned."""
        api = self.library.api
        first = None
        steps = []
        if self._handle is not None:
            handle, self._handle = self._handle, None
            steps.append(("disconnecting", lambda: api.VixDiskLib_Disconnect(handle)))
        if self._prepared and self._params:
            self._prepared = False
            params = self._params
            identity = self.identity.encode("utf-8")
            steps.append(("ending access", lambda: api.VixDiskLib_EndAccess(params, identity)))
            steps.append(("cleaning up", lambda: self._cleanup(params)))
        for what, step in steps:
            try:
                step()
            except VddkError as error:
                LOGGER.warning("VDDK %s %s: %s", what, self.describe(), error)
                first = first or error.in_context("%s %s" % (what, self.describe()))
        self._free_params()
        vddk_library.forget_secret(self._cookie)
        vddk_library.forget_secret(self._key)
        return first

    def _cleanup(self, params):
        cleaned, remaining = ctypes.c_uint32(0), ctypes.c_uint32(0)
        self.library.api.VixDiskLib_Cleanup(params, ctypes.byref(cleaned), ctypes.byref(remaining))
        if cleaned.value or remaining.value:
            LOGGER.info("VDDK cleanup for %s: %d cleaned up, %d remaining",
                        self.describe(), cleaned.value, remaining.value)

    def close(self):
        error = self._teardown()
        if error is not None:
            raise error

    def open_disk(self, path, read_only=None, unbuffered=False):
        """A VddkDisk for "[datastore] dir/disk.vmdk"; read-only unless the connection is read-write."""
        if self._handle is None:
            raise VddkError("VDDK connection to %s is not open" % self.describe())
        read_only = self.read_only if read_only is None else bool(read_only)
        if not read_only and self.read_only:
            raise InvalidArgumentError("cannot open %s read-write on a read-only VDDK connection" % path)
        flags = s.VIXDISKLIB_FLAG_OPEN_READ_ONLY if read_only else 0
        if unbuffered:
            flags |= s.VIXDISKLIB_FLAG_OPEN_UNBUFFERED
        return VddkDisk.open(self.library.api, self._handle, path, flags)

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc_value, traceback):
        error = self._teardown()
        if error is not None and exc_type is None:
            raise error
        return False
