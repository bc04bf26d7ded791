# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VDDK disk as the export and import engines see it: byte offsets, one connection per opening.

The engines call ``open()`` again to resume after a lost connection, so each
opening makes a fresh VddkConnection (PrepareForAccess, ConnectEx) and opens
the disk on it; ``close()`` closes both whatever happened.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import VIXDISKLIB_SECTOR_SIZE

SECTOR = VIXDISKLIB_SECTOR_SIZE


class VddkDiskEndpoint:
    """``connect()`` returns an unopened VddkConnection; ``path`` is the disk's "[datastore] dir/disk.vmdk"."""

    def __init__(self, connect, path, read_only=True):
        self.connect = connect
        self.path = path
        self.read_only = read_only

    def open(self):
        connection = self.connect().open()
        try:
            disk = connection.open_disk(self.path, read_only=self.read_only)
        except BaseException:
            connection.close()
            raise
        return OpenVddkDisk(connection, disk)


class OpenVddkDisk:
    def __init__(self, connection, disk):
        self.connection = connection
        self.disk = disk

    @property
    def transport_mode(self):
        return self.disk.transport_mode

    @property
    def capacity(self):
        return self.disk.capacity_sectors * SECTOR

    def allocated_extents(self):
        """[(offset, length)] in bytes, or None when this VDDK cannot tell."""
        if not self.disk.supports_allocated_blocks:
            return None
        return [(start * SECTOR, count * SECTOR) for start, count in self.disk.allocated_blocks()]

    def read(self, offset, length):
        buffer = bytearray(length)
        self.disk.read(offset // SECTOR, buffer)
        return bytes(buffer)

    def write(self, offset, data):
        self.disk.write(offset // SECTOR, data)

    def close(self):
        try:
            self.disk.close()
        finally:
            self.connection.close()
