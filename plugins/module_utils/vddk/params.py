# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VixDiskLibConnectParams for one VM in vCenter, on a vSphere session, filled and wiped.

ConnectEx, PrepareForAccess and EndAccess all take these parameters.  The
credentials are ``VIXDISKLIB_CRED_SESSIONID``: the session's cookie, its user
name and its key (``UserSession.key``, the "session key" of the VDDK
reference), never a password.  Every known working caller fills all three, and
VDDK crashes on a NULL it expects, so none may be missing.  The strings live
in buffers this module owns for as long as the parameters are used, and are
zeroed afterwards; VDDK's FreeConnectParams frees only the structure.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import library as vddk_library
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError


class SessionTarget:
    """Where and as whom VDDK connects: vCenter, its thumbprint, a VM, a session."""

    def __init__(self, server, thumbprint, vm_moref, session_cookie, user_name, session_key, port=443,
                 nfc_host_port=0):
        if not server:
            raise InvalidArgumentError("VDDK needs the vCenter server name")
        if not thumbprint:
            raise InvalidArgumentError("VDDK needs vCenter's SHA-1 certificate thumbprint")
        if not vm_moref or not vm_moref.startswith("vm-"):
            raise InvalidArgumentError("VDDK needs the VM's moref (vm-N), got %r" % (vm_moref,))
        if not session_cookie:
            raise InvalidArgumentError("VDDK needs a logged-in vSphere session (its cookie); none was given")
        if not user_name or not session_key:
            raise InvalidArgumentError("VDDK needs the session's user name and key with its cookie "
                                       "(VIXDISKLIB_CRED_SESSIONID); %s missing"
                                       % " and ".join(name for name, value in (("user name", user_name),
                                                                               ("key", session_key)) if not value))
        self.server = server
        self.port = int(port)
        self.thumbprint = thumbprint
        self.vm_moref = vm_moref
        self.user_name = user_name
        self.nfc_host_port = int(nfc_host_port or 0)
        self._cookie = session_cookie
        self._key = session_key

    @classmethod
    def from_client(cls, client, vm_moref, nfc_host_port=0):
        """The target of a logged-in VsphereClient's session (host, port, thumbprint, cookie, user, key)."""
        session = client.content.sessionManager.currentSession
        if session is None:
            raise InvalidArgumentError("the vSphere session of %s is not logged in" % client.hostname)
        return cls(client.hostname, client.server_thumbprint(), vm_moref, client.session_cookie, session.userName,
                   session.key, port=client.port, nfc_host_port=nfc_host_port)

    @property
    def secrets(self):
        return (self._cookie, self._key)

    def describe(self):
        return "%s (%s)" % (self.server, self.vm_moref)


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


class ConnectParams:
    """AllocateConnectParams filled for a SessionTarget; ``free()`` (or ``with``) frees and wipes it."""

    def __init__(self, api, target):
        self._api = api
        self.target = target
        self.pointer = api.VixDiskLib_AllocateConnectParams()
        if not self.pointer:
            raise VddkError("VixDiskLib_AllocateConnectParams returned no memory")
        for secret in target.secrets:
            vddk_library.register_secret(secret)
        self._strings = _Strings()
        cookie, key = target.secrets
        fields = self.pointer.contents
        fields.vmxSpec = self._strings.add("moref=%s" % target.vm_moref)
        fields.serverName = self._strings.add(target.server)
        fields.thumbPrint = self._strings.add(target.thumbprint)
        fields.credType = s.VIXDISKLIB_CRED_SESSIONID
        fields.creds.sessionId.cookie = self._strings.add(cookie)
        fields.creds.sessionId.userName = self._strings.add(target.user_name)
        fields.creds.sessionId.key = self._strings.add(key)
        fields.port = target.port
        fields.nfcHostPort = target.nfc_host_port
        fields.specType = s.VIXDISKLIB_SPEC_VMX

    def free(self):
        pointer, self.pointer = self.pointer, None
        if pointer:
            # Our pointers are cleared first, so nothing can reach the wiped buffers through the structure.
            fields = pointer.contents
            fields.vmxSpec = fields.serverName = fields.thumbPrint = None
            fields.creds.sessionId.cookie = fields.creds.sessionId.userName = fields.creds.sessionId.key = None
            self._api.VixDiskLib_FreeConnectParams(pointer)
            self._strings.wipe()
            for secret in self.target.secrets:
                vddk_library.forget_secret(secret)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.free()
        return False
