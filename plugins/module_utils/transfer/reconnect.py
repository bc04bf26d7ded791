# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disk handle that is reopened after a retryable error, a bounded number of times in all.

Export (reads) and import (writes) resume the same way: close what is left
of the connection, wait longer each time, open a new one, do the same I/O
again.  Errors no reconnect cures name the disk and the offset.

A handle that queues writes (``unfinished_writes()``) may lose some that
were queued before the failing call: when it is closed they are carried
over and written first on the next handle, before the call is redone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.errors import TransferError


class ReconnectingDisk:
    """Handles from ``open_disk()`` for one disk; ``verb`` ("reading", "writing") goes into messages."""

    def __init__(self, open_disk, disk_key, verb, retryable, max_retries, retry_delay, sleep):
        self.open_disk = open_disk
        self.disk_key = disk_key
        self.verb = verb
        self.retryable = retryable
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.sleep = sleep
        self.retries = 0
        self.transport = None
        self._handle = None
        self._carried = []  # (offset, data) queued on a lost handle, not known to be written

    def _retry(self, offset, error):
        self.retries += 1
        if self.retries > self.max_retries:
            raise TransferError("disk %s: %s at offset %d failed after %d retries: %s"
                                % (self.disk_key, self.verb, offset, self.max_retries, error))
        self.close()
        self.sleep(self.retry_delay * (2 ** (self.retries - 1)))

    def call(self, offset, operation):
        """``operation(handle)`` for the I/O at ``offset``, reopening the disk as often as allowed."""
        while True:
            if self._handle is None:
                try:
                    self._handle = self.open_disk()
                except Exception as error:
                    if not self.retryable(error):
                        raise
                    self._retry(offset, error)
                    continue
                self.transport = getattr(self._handle, "transport_mode", None) or self.transport
            try:
                self._write_carried()
                return operation(self._handle)
            except VmcryptError as error:
                if not self.retryable(error):
                    raise TransferError("disk %s: %s at offset %d failed: %s"
                                        % (self.disk_key, self.verb, offset, error))
                self._retry(offset, error)
            except Exception as error:
                if not self.retryable(error):
                    raise
                self._retry(offset, error)

    def _write_carried(self):
        while self._carried:
            offset, data = self._carried[0]
            self._handle.write(offset, data)
            self._carried.pop(0)

    def close(self):
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                handle.close()
            except Exception as error:
                if not self.retryable(error):
                    raise
                # the connection is already gone; a new one may follow
            finally:
                unfinished = getattr(handle, "unfinished_writes", None)
                if unfinished is not None:
                    self._carried = sorted(unfinished() + self._carried, key=lambda item: item[0])
