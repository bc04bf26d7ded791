# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VddkConnection: one VixDiskLib connection to a VM (and snapshot) in vCenter.

Credentials are the vSphere session's cookie, user name and key
(VIXDISKLIB_CRED_SESSIONID, see ``params``), never a password; they live in
memory VDDK reads only while the connection is open, are masked in VDDK's
log lines and are zeroed when it ends.

PrepareForAccess/EndAccess belong around the backup snapshot's whole life
(``VddkLibrary.prepare_for_access`` / ``end_access``, placed by the backup
workflow).  A connection made with ``manage_access=True`` (the default until
every workflow places them) brackets itself with them instead.

VDDK does not fail ConnectEx or Open when no requested transport mode can be
used: Open falls back to another mode (NBDSSL).  So after Open the mode
really used is compared with the modes this connection was given, and a disk
opened over any other mode is closed again and refused (VddkTransportError).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import logging

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.disk import DEFAULT_MAX_REQUEST, VddkDisk
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError, VddkTransportError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import DEFAULT_IDENTITY
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.params import ConnectParams, SessionTarget

LOGGER = logging.getLogger("vmcrypt.backup.vddk")
DEFAULT_TRANSPORTS = ("hotadd", "nbdssl")


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
    no policy, sends them as they are, and refuses a disk VDDK opened over
    any other mode.  ``max_request`` bounds each Read/Write (bytes).
    """

    def __init__(self, library, server, thumbprint, vm_moref, session_cookie, snapshot_moref=None, port=443,
                 transports=DEFAULT_TRANSPORTS, read_only=True, user_name=None, session_key=None,
                 identity=DEFAULT_IDENTITY, nfc_host_port=0, manage_access=True, max_request=DEFAULT_MAX_REQUEST):
        self.target = SessionTarget(server, thumbprint, vm_moref, session_cookie, user_name, session_key, port=port,
                                    nfc_host_port=nfc_host_port)
        self.library = library
        self.snapshot_moref = snapshot_moref
        self.read_only = bool(read_only)
        self.identity = identity
        self.manage_access = manage_access
        self.max_request = max_request
        self.transports = _known_transports(transports)
        self._params = None
        self._handle = None
        self._prepared = False

    @classmethod
    def from_client(cls, library, client, vm_moref, snapshot_moref=None, **options):
        """A connection on a logged-in VsphereClient's session (its host, port, thumbprint, cookie, user, key)."""
        target = SessionTarget.from_client(client, vm_moref, nfc_host_port=options.pop("nfc_host_port", 0))
        return cls.for_target(library, target, snapshot_moref=snapshot_moref, **options)

    @classmethod
    def for_target(cls, library, target, snapshot_moref=None, **options):
        cookie, key = target.secrets
        return cls(library, target.server, target.thumbprint, target.vm_moref, cookie, snapshot_moref=snapshot_moref,
                   port=target.port, user_name=target.user_name, session_key=key,
                   nfc_host_port=target.nfc_host_port, **options)

    # Kept as attributes of the connection for callers and messages.
    server = property(lambda self: self.target.server)
    port = property(lambda self: self.target.port)
    thumbprint = property(lambda self: self.target.thumbprint)
    vm_moref = property(lambda self: self.target.vm_moref)
    user_name = property(lambda self: self.target.user_name)

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

    def open(self):
        """(PrepareForAccess, when it manages access, then) ConnectEx; on failure nothing stays open."""
        if self._handle is not None:
            return self
        api = self.library.api
        self._params = ConnectParams(api, self.target)
        identity = self.identity.encode("utf-8")
        try:
            if self.manage_access:
                api.VixDiskLib_PrepareForAccess(self._params.pointer, identity)
                self._prepared = True
            handle = s.VixDiskLibConnection()
            api.VixDiskLib_ConnectEx(self._params.pointer, b"\x01" if self.read_only else b"\x00",
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
        """Disconnect, (EndAccess,) Cleanup, free; every step runs, the first error is returned."""
        api = self.library.api
        first = None
        steps = []
        if self._handle is not None:
            handle, self._handle = self._handle, None
            steps.append(("disconnecting", lambda: api.VixDiskLib_Disconnect(handle)))
        params = self._params
        if params is not None and params.pointer:
            if self._prepared:
                self._prepared = False
                identity = self.identity.encode("utf-8")
                steps.append(("ending access", lambda: api.VixDiskLib_EndAccess(params.pointer, identity)))
            steps.append(("cleaning up", lambda: self._cleanup(params.pointer)))
        for what, step in steps:
            try:
                step()
            except VddkError as error:
                LOGGER.warning("VDDK %s %s: %s", what, self.describe(), error)
                first = first or error.in_context("%s %s" % (what, self.describe()))
        self._params = None
        if params is not None:
            params.free()
        return first

    def _cleanup(self, pointer):
        cleaned, remaining = ctypes.c_uint32(0), ctypes.c_uint32(0)
        self.library.api.VixDiskLib_Cleanup(pointer, ctypes.byref(cleaned), ctypes.byref(remaining))
        if cleaned.value or remaining.value:
            LOGGER.info("VDDK cleanup for %s: %d cleaned up, %d remaining",
                        self.describe(), cleaned.value, remaining.value)

    def close(self):
        error = self._teardown()
        if error is not None:
            raise error

    def open_disk(self, path, read_only=None, unbuffered=False):
        """A VddkDisk for "[datastore] dir/disk.vmdk", opened over one of this connection's modes.

        Read-only unless the connection is read-write.  A disk VDDK opened
        over a mode that is not one of ``transports`` (its fallback) is
        closed and refused with VddkTransportError.
        """
        if self._handle is None:
            raise VddkError("VDDK connection to %s is not open" % self.describe())
        read_only = self.read_only if read_only is None else bool(read_only)
        if not read_only and self.read_only:
            raise InvalidArgumentError("cannot open %s read-write on a read-only VDDK connection" % path)
        flags = s.VIXDISKLIB_FLAG_OPEN_READ_ONLY if read_only else 0
        if unbuffered:
            flags |= s.VIXDISKLIB_FLAG_OPEN_UNBUFFERED
        try:
            disk = VddkDisk.open(self.library.api, self._handle, path, flags, max_request=self.max_request)
        except VddkError as error:
            if error.code == s.VIX_E_FAIL and error.function == "VixDiskLib_Open":
                raise type(error)("%s (thumbprint given: %s)" % (error, self.thumbprint), code=error.code,
                                  raw=error.raw, text=error.text, function=error.function)
            raise
        mode = disk.transport_mode
        if mode not in self.transports:
            try:
                disk.close()
            except VddkError as error:
                LOGGER.warning("VDDK closing %s after a refused fallback: %s", path, error)
            raise VddkTransportError(
                "VDDK opened %s over %s, which is not one of the allowed transport modes (%s): none of them "
                "could reach the disk from here and VDDK fell back; the disk is not %s over %s"
                % (path, mode or "an unknown mode", ", ".join(self.transports), "read" if read_only else "written",
                   mode or "it"), code=None, function="VixDiskLib_GetTransportMode")
        return disk

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc_value, traceback):
        error = self._teardown()
        if error is not None and exc_type is None:
            raise error
        return False
