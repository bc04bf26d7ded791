# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VddkLibrary: VixDiskLib_InitEx once per process, and VDDK's log lines.

VDDK's log, warning and panic callbacks are routed to the Python logger
``vmcrypt.backup.vddk``.  Every line passes through ``redact()`` first:
the secrets that connections register (session cookies, keys) and anything
shaped like a password or cookie assignment are replaced by asterisks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import logging
import os
import re
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

LOGGER = logging.getLogger("vmcrypt.backup.vddk")
# The VDDK API version this binding is written against (InitEx major.minor).
API_MAJOR = 7
API_MINOR = 0
MASK = "********"
_SECRET_PATTERN = re.compile(r"(?i)((?:password|passwd|cookie|vmware_soap_session|ticket|key)\s*[=:]\s*)"
                             r"(\"[^\"]*\"|'[^']*'|[^\s,;]+)")
_SECRETS = {}
_SECRETS_LOCK = threading.Lock()
_LINE_LIMIT = 4096


def register_secret(value):
    """Mask value in every VDDK log line until forget_secret(value)."""
    if value:
        with _SECRETS_LOCK:
            _SECRETS[value] = _SECRETS.get(value, 0) + 1


def forget_secret(value):
    if value:
        with _SECRETS_LOCK:
            count = _SECRETS.get(value, 0) - 1
            if count > 0:
                _SECRETS[value] = count
            else:
                _SECRETS.pop(value, None)


def redact(text):
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return _SECRET_PATTERN.sub(lambda match: match.group(1) + MASK, text)


def _libc_vsnprintf():
    libc = ctypes.CDLL(None)
    function = libc.vsnprintf
    function.restype = ctypes.c_int
    function.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    return function


class _LogRouter:
    """The three C callbacks; kept referenced for as long as VDDK may call them."""

    def __init__(self):
        self._vsnprintf = _libc_vsnprintf()
        self.info = s.LogFunc(self._make(logging.INFO))
        self.warning = s.LogFunc(self._make(logging.WARNING))
        self.panic = s.LogFunc(self._make(logging.ERROR))

    def format(self, fmt, va_list):
        buffer = ctypes.create_string_buffer(_LINE_LIMIT)
        self._vsnprintf(buffer, _LINE_LIMIT, fmt, va_list)
        return buffer.value.decode("utf-8", "replace").rstrip()

    def _make(self, level):
        def callback(fmt, va_list):
            try:
                if LOGGER.isEnabledFor(level) and fmt:
                    LOGGER.log(level, "%s", redact(self.format(fmt, va_list)))
            except Exception:  # an exception must never unwind into C
                pass
        return callback


class VddkLibrary:
    """The initialised VDDK of this process; get() it, never construct it."""

    _instance = None
    _lock = threading.Lock()

    def __init__(self, api, router):
        self.api = api
        self._router = router
        self.initialized = True

    @property
    def libdir(self):
        return self.api.libdir

    @classmethod
    def get(cls, libdir=None):
        """Load VDDK (option vddk_libdir or VMCRYPT_VDDK_LIBDIR) and InitEx it, once per process."""
        with cls._lock:
            if cls._instance is not None and cls._instance.initialized:
                if not libdir and not os.environ.get(loader.LIBDIR_ENV):
                    return cls._instance
                wanted = loader.resolve_libdir(libdir)
                if wanted != cls._instance.libdir:
                    raise VddkError("VDDK from %s is already initialised in this process; cannot also use %s"
                                    % (cls._instance.libdir, wanted))
                return cls._instance
            api = loader.load(libdir)
            router = _LogRouter()
            try:
                api.VixDiskLib_InitEx(API_MAJOR, API_MINOR, router.info, router.warning, router.panic,
                                      api.libdir.encode("utf-8"), None)
            except VddkError as error:
                raise error.in_context("initialising VDDK from %s" % api.libdir)
            cls._instance = cls(api, router)
            return cls._instance

    def exit(self):
        """VixDiskLib_Exit; a later get() initialises again."""
        with self._lock:
            if self.initialized:
                self.api.VixDiskLib_Exit()
                self.initialized = False
                if VddkLibrary._instance is self:
                    VddkLibrary._instance = None
