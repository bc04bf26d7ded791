# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VDDK disk as the export and import engines see it: byte offsets, one connection per opening.

The engines call ``open()`` again to resume after a lost connection, so each
opening makes a fresh VddkConnection (ConnectEx) and opens the disk on it;
``close()`` closes both whatever happened.

Several disks may be transferred at once, each by its own thread on its own
connection and handle (a VDDK handle is never shared between threads).
Connecting, opening and closing are serialised across threads by one lock:
VDDK's programming guide asks that VixDiskLib_Open and VixDiskLib_Close not
run concurrently (nbdkit's VDDK plugin takes the same lock); reads and
writes on different handles run in parallel.

QueryAllocatedBlocks is a hint, not a promise: on storage other than VMFS and
vSAN it fails, or answers one extent covering the whole disk.  Either way the
disk is read in full (chunks of zeros are still not stored: the repository
keeps them as zero chunks) and ``warn`` says why.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import (
    VIXDISKLIB_MIN_CHUNK_SIZE,
    VIXDISKLIB_SECTOR_SIZE,
)

SECTOR = VIXDISKLIB_SECTOR_SIZE
LOGGER = logging.getLogger("vmcrypt.backup.vddk")
# ConnectEx, Open, Close and Disconnect of every thread go through this lock.
OPEN_CLOSE_LOCK = threading.Lock()


class VddkDiskEndpoint:
    """``connect()`` returns an unopened VddkConnection; ``path`` is the disk's "[datastore] dir/disk.vmdk".

    ``warn(text)`` receives what the user should know (a full read instead of
    allocated blocks); without it the text goes to the vmcrypt.backup.vddk logger.
    """

    def __init__(self, connect, path, read_only=True, warn=None):
        self.connect = connect
        self.path = path
        self.read_only = read_only
        self.warn = warn or (lambda text: LOGGER.warning("%s", text))

    def open(self):
        with OPEN_CLOSE_LOCK:
            connection = self.connect().open()
            try:
                disk = connection.open_disk(self.path, read_only=self.read_only)
            except BaseException:
                connection.close()
                raise
        return OpenVddkDisk(connection, disk, self.warn)


class OpenVddkDisk:
    def __init__(self, connection, disk, warn=None):
        self.connection = connection
        self.disk = disk
        self.warn = warn or (lambda text: LOGGER.warning("%s", text))

    @property
    def transport_mode(self):
        return self.disk.transport_mode

    @property
    def capacity(self):
        return self.disk.capacity_sectors * SECTOR

    def allocated_extents(self):
        """[(offset, length)] in bytes, or None when VDDK cannot tell (then read the whole disk)."""
        if not self.disk.supports_allocated_blocks:
            return None
        try:
            blocks = self.disk.allocated_blocks()
        except VddkError as error:
            if error.retryable:  # a lost connection is the engine's to resume, not a reason to read everything
                raise
            self.warn("%s cannot list its allocated blocks, so it is read in full (zero chunks are still not "
                      "stored): %s" % (self.disk.path, error))
            return None
        capacity = self.disk.capacity_sectors
        if capacity > VIXDISKLIB_MIN_CHUNK_SIZE and blocks == [(0, capacity)]:
            self.warn("VDDK reports every block of %s allocated, as it does on storage other than VMFS and vSAN; "
                      "the disk is read in full (zero chunks are still not stored)" % self.disk.path)
            return None
        return [(start * SECTOR, count * SECTOR) for start, count in blocks]

    def read(self, offset, length):
        """A new bytearray of ``length`` bytes: VDDK reads into it, and it is handed on as it is, not copied."""
        buffer = bytearray(length)
        self.disk.read(offset // SECTOR, buffer)
        return buffer

    def write(self, offset, data):
        """Queue the write (VDDK WriteAsync where it has it); ``finish_writes`` waits for them all."""
        self.disk.queue_write(offset // SECTOR, data)

    def finish_writes(self):
        self.disk.wait_writes()

    def unfinished_writes(self):
        """[(offset, data)] queued and not known to be written: what a new handle must write again."""
        return [(sector * SECTOR, data) for sector, data in self.disk.unfinished_writes()]

    def close(self):
        with OPEN_CLOSE_LOCK:
            try:
                self.disk.close()
            finally:
                self.connection.close()
