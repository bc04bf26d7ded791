# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VddkLibrary: VixDiskLib_InitEx once per process, Exit at its end, and VDDK's log lines.

The guide asks for InitEx once per process, at the beginning, and Exit at
the end.  ``get()`` calls InitEx the first time, from the main thread only,
and registers Exit to run when the interpreter exits; after Exit (``exit()``
or interpreter exit) this process cannot use VDDK again: ``get()`` says so
instead of calling InitEx a second time, which VDDK does not support.

VDDK's log, warning and panic callbacks are routed to the Python logger
``vmcrypt.backup.vddk`` (INFO, WARNING, ERROR); VDDK calls them from its own
threads.  Every line passes through ``redact()`` first: the secrets that
connections register (session cookies, keys) and anything shaped like a
password or cookie assignment are replaced by asterisks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import atexit
import ctypes
import logging
import os
import re
import threading
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

LOGGER = logging.getLogger("vmcrypt.backup.vddk")
# Who PrepareForAccess/EndAccess name as the application holding the VM (at most 50 characters).
DEFAULT_IDENTITY = "vmcrypt.backup"
# The guide's sample retries PrepareForAccess ten times, a minute apart.
ACCESS_ATTEMPTS = 10
ACCESS_RETRY_DELAY = 60.0
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
    _exited_from = None  # the libdir whose VDDK was shut down in this process
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
            if cls._exited_from is not None:
                raise VddkError("VDDK from %s was shut down (VixDiskLib_Exit) in this process and cannot be "
                                "initialised again; use it from a new process" % cls._exited_from)
            if cls._instance is not None:
                if not libdir and not os.environ.get(loader.LIBDIR_ENV):
                    return cls._instance
                wanted = loader.resolve_libdir(libdir)
                if wanted != cls._instance.libdir:
                    raise VddkError("VDDK from %s is already initialised in this process; cannot also use %s"
                                    % (cls._instance.libdir, wanted))
                return cls._instance
            if threading.current_thread() is not threading.main_thread():
                raise VddkError("VDDK must be initialised from the main thread (VixDiskLib_InitEx); call "
                                "VddkLibrary.get() before starting threads")
            api = loader.load(libdir)
            router = _LogRouter()
            try:
                api.VixDiskLib_InitEx(API_MAJOR, API_MINOR, router.info, router.warning, router.panic,
                                      api.libdir.encode("utf-8"), None)
            except VddkError as error:
                raise error.in_context("initialising VDDK from %s" % api.libdir)
            cls._instance = cls(api, router)
            atexit.register(cls._exit_at_interpreter_exit)
            return cls._instance

    @classmethod
    def _exit_at_interpreter_exit(cls):
        instance = cls._instance
        if instance is not None:
            instance.exit()

    def exit(self):
        """VixDiskLib_Exit, after every connection is closed; VDDK cannot be used again in this process."""
        with self._lock:
            if self.initialized:
                self.api.VixDiskLib_Exit()
                self.initialized = False
                VddkLibrary._exited_from = self.libdir
                if VddkLibrary._instance is self:
                    VddkLibrary._instance = None

    def prepare_for_access(self, target, identity=DEFAULT_IDENTITY, attempts=ACCESS_ATTEMPTS,
                           delay=ACCESS_RETRY_DELAY, sleep=time.sleep):
        """VixDiskLib_PrepareForAccess for the VM of ``target`` (vddk.params.SessionTarget).

        Call it before the backup snapshot is created; every successful call
        needs its ``end_access()``, after the snapshot is removed.  As in the
        guide's sample, a refusal is retried (``attempts`` times, ``delay``
        seconds apart: ten minutes for a Storage vMotion to finish) unless it
        cannot change by waiting.
        """
        from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import access
        access.prepare_for_access(self.api, target, identity, attempts, delay, sleep)

    def end_access(self, target, identity=DEFAULT_IDENTITY):
        """VixDiskLib_EndAccess: after the disks are closed and the snapshot removed (also after a crash)."""
        from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import access
        access.end_access(self.api, target, identity)
