# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AsyncWrites: the writes of one VDDK handle, several in flight (WriteAsync, then Wait).

One synchronous Write at a time leaves the target idle while the caller
prepares the next request, and over NBD/NBDSSL for a whole network round
trip.  WriteAsync queues a request and returns VIX_ASYNC; VDDK calls the
completion callback later, on a thread of its own; Wait returns when every
request of the handle has completed (nbdkit's VDDK plugin works the same
way).  How many are worth keeping in flight depends on the transport and
on VDDK's own asynchronous NFC buffering (``vixDiskLib.nfcAio.Session.*``
in its configuration file); four is our default, enough to hide the round
trips the benchmark gives NBDSSL (docs/performance.md) while bounding the
memory held for requests in flight.

The caller's buffer must stay untouched until its callback has run: each
request keeps a reference to it until then.  The callback only records the
result under a lock; errors become exceptions on the caller's thread, at
its next ``submit`` or at ``wait``.  Requests that failed or never
completed stay listed by ``unfinished()`` so a caller that reconnects can
write them again (writes are idempotent).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

DEFAULT_WRITES_IN_FLIGHT = 4
FUNCTION = "VixDiskLib_WriteAsync"


class AsyncWrites:
    """Asynchronous writes on ``handle`` of the disk at ``path``, at most ``depth`` requests in flight."""

    def __init__(self, api, handle, path, depth=DEFAULT_WRITES_IN_FLIGHT):
        self._api = api
        self._handle = handle
        self.path = path
        self.depth = max(1, int(depth))
        self._lock = threading.Condition()
        self._in_flight = {}  # token: (start sector, sectors, buffer, byte offset in it)
        self._failed = []  # (start sector, sectors, buffer, byte offset, raw VixError), in order of failure
        self._next_token = 1
        # Kept as an attribute: VDDK holds the C pointer for as long as requests are queued.
        self._callback = s.CompletionCB(self._completed)

    def _completed(self, token, raw):
        """VDDK's completion callback (its thread): record, wake the caller, never raise."""
        with self._lock:
            request = self._in_flight.pop(token, None)
            if request is not None and raw != s.VIX_OK:
                self._failed.append(request + (raw,))
            self._lock.notify_all()

    def _failure(self):
        """The first failed request as a VddkError with VDDK's text, or None."""
        if not self._failed:
            return None
        sector, sectors, _buffer, _offset, raw = self._failed[0]
        return VddkError.from_vix(FUNCTION, raw, self._api.error_text(raw)).in_context(
            "writing %d sectors at sector %d of %s" % (sectors, sector, self.path))

    def submit(self, requests, buffer, address):
        """Queue each (start sector, sectors, byte offset) of ``buffer`` (at C ``address``).

        Raises the first failure of an earlier request instead of queueing
        more.  A submit that raises is to be redone whole by the caller (on a
        new handle); only the requests of submits that returned are its
        business to list in ``unfinished()``.
        """
        for sector, sectors, offset in requests:
            with self._lock:
                while len(self._in_flight) >= self.depth and not self._failed:
                    self._lock.wait()
                error = self._failure()
                if error is not None:
                    raise error
                token = self._next_token
                self._next_token += 1
                self._in_flight[token] = (sector, sectors, buffer, offset)
            raw = self._api.VixDiskLib_WriteAsync(self._handle, sector, sectors, address + offset, self._callback,
                                                  token)
            if raw != s.VIX_ASYNC:
                with self._lock:
                    self._in_flight.pop(token, None)
                error = VddkError.from_vix(FUNCTION, raw, self._api.error_text(raw))
                raise error.in_context("writing %d sectors at sector %d of %s" % (sectors, sector, self.path))

    def wait(self):
        """Until every queued request has completed; raises the first failure."""
        try:
            self._api.VixDiskLib_Wait(self._handle)
        except VddkError as error:
            raise error.in_context("waiting for the writes to %s" % self.path)
        with self._lock:
            while self._in_flight and not self._failed:  # Wait returned before a callback ran
                self._lock.wait(0.1)
            error = self._failure()
        if error is not None:
            raise error

    def drain(self):
        """wait() for closing: failures stay in ``unfinished()`` instead of being raised."""
        with self._lock:
            if not self._in_flight:
                return
        try:
            self.wait()
        except VddkError:
            pass

    def unfinished(self):
        """[(start sector, bytes-like)] of every request not known to be written, in sector order."""
        with self._lock:
            requests = [(sector, sectors, buffer, offset) for sector, sectors, buffer, offset, _raw in self._failed]
            requests.extend(self._in_flight.values())
        return [(sector, memoryview(buffer)[offset:offset + sectors * s.VIXDISKLIB_SECTOR_SIZE])
                for sector, sectors, buffer, offset in sorted(requests, key=lambda request: request[0])]
