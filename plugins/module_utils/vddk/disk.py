# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VddkDisk: one open virtual disk — info, sector I/O, allocated blocks.

Reads and writes go straight between VDDK and the caller's buffer (a
bytearray or a writable memoryview of one): nothing is copied on the Python
side.  Offsets and lengths are in sectors of VIXDISKLIB_SECTOR_SIZE bytes.

A buffer larger than ``max_request`` bytes (2 MiB unless told) is read or
written in several requests, each into its own slice of the buffer: the
host's NFC server, which NBD and NBDSSL go through, fails to allocate large
requests ("Failed to allocate the requested ... bytes"), and nbdkit's VDDK
plugin advises at most 2 MiB.

``write`` waits for each request; ``queue_write`` keeps up to
``writes_in_flight`` of them queued (WriteAsync, async_writes.py) and
``wait_writes`` waits for them all.  A VDDK without WriteAsync, or
``writes_in_flight=1``, makes ``queue_write`` a ``write``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.async_writes import (
    DEFAULT_WRITES_IN_FLIGHT,
    AsyncWrites,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

SECTOR = s.VIXDISKLIB_SECTOR_SIZE
DEFAULT_MAX_REQUEST = 2 * 1024 * 1024


class DiskInfo:
    """What VixDiskLib_GetInfo says about a disk, as plain Python values."""

    __slots__ = ("capacity_sectors", "bios_geometry", "physical_geometry", "adapter_type", "num_links",
                 "parent_file_name_hint", "uuid", "logical_sector_size", "physical_sector_size")

    def __init__(self, **values):
        for name in self.__slots__:
            setattr(self, name, values.get(name))

    @property
    def capacity_bytes(self):
        return self.capacity_sectors * SECTOR

    @property
    def adapter_name(self):
        return s.ADAPTER_TYPES.get(self.adapter_type, "unknown(%s)" % self.adapter_type)

    def as_dict(self):
        result = dict((name, getattr(self, name)) for name in self.__slots__)
        result["capacity_bytes"] = self.capacity_bytes
        result["adapter_name"] = self.adapter_name
        return result

    def __eq__(self, other):
        return isinstance(other, DiskInfo) and self.as_dict() == other.as_dict()

    def __repr__(self):
        return "DiskInfo(%s)" % ", ".join("%s=%r" % item for item in sorted(self.as_dict().items()))

    @classmethod
    def from_struct(cls, info):
        def text(value):
            return value.decode("utf-8", "replace") if value else None

        def geometry(geo):
            return (geo.cylinders, geo.heads, geo.sectors)
        return cls(capacity_sectors=info.capacity, bios_geometry=geometry(info.biosGeo),
                   physical_geometry=geometry(info.physGeo), adapter_type=info.adapterType,
                   num_links=info.numLinks, parent_file_name_hint=text(info.parentFileNameHint),
                   uuid=text(info.uuid), logical_sector_size=info.logicalSectorSize or SECTOR,
                   physical_sector_size=info.physicalSectorSize or SECTOR)


def _address(buffer, writable):
    """(C address, keep-alive) of a contiguous bytes-like object, without a copy."""
    view = memoryview(buffer)
    if not view.contiguous:
        raise InvalidArgumentError("VDDK buffers must be contiguous")
    if view.nbytes == 0:
        raise InvalidArgumentError("VDDK buffers must not be empty")
    # pylint takes memoryview.readonly for a method, hence the disable.
    if view.readonly:  # pylint: disable=using-constant-test
        if writable:
            raise InvalidArgumentError("VDDK reads need a writable buffer (bytearray or memoryview of one)")
        if isinstance(buffer, bytes):
            return ctypes.cast(ctypes.c_char_p(buffer), ctypes.c_void_p).value, buffer
        data = view.tobytes()  # read-only and not bytes: the one case that copies
        return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value, data
    anchor = ctypes.c_ubyte.from_buffer(view.cast("B"))
    return ctypes.addressof(anchor), anchor


class VddkDisk:
    """An open disk; use as a context manager, or call close()."""

    def __init__(self, api, handle, path, flags, max_request=DEFAULT_MAX_REQUEST,
                 writes_in_flight=DEFAULT_WRITES_IN_FLIGHT):
        if not max_request or max_request < SECTOR:
            raise InvalidArgumentError("max_request must be at least %d bytes, got %r" % (SECTOR, max_request))
        if not writes_in_flight or writes_in_flight < 1:
            raise InvalidArgumentError("writes_in_flight must be at least 1, got %r" % (writes_in_flight,))
        self._api = api
        self._handle = handle
        self.path = path
        self.read_only = bool(flags & s.VIXDISKLIB_FLAG_OPEN_READ_ONLY)
        self.max_request_sectors = int(max_request) // SECTOR
        self.writes_in_flight = int(writes_in_flight)
        self._writes = None
        self._capacity = None

    @classmethod
    def open(cls, api, connection_handle, path, flags, max_request=DEFAULT_MAX_REQUEST,
             writes_in_flight=DEFAULT_WRITES_IN_FLIGHT):
        handle = s.VixDiskLibHandle()
        try:
            api.VixDiskLib_Open(connection_handle, path.encode("utf-8"), flags, ctypes.byref(handle))
        except VddkError as error:
            raise error.in_context("opening %s" % path)
        return cls(api, handle, path, flags, max_request=max_request, writes_in_flight=writes_in_flight)

    def _live(self):
        if self._handle is None:
            raise VddkError("VDDK disk %s is closed" % self.path)
        return self._handle

    @property
    def transport_mode(self):
        """The mode VDDK chose for this disk: "nbdssl", "hotadd", ..."""
        mode = self._api.VixDiskLib_GetTransportMode(self._live())
        return mode.decode("ascii") if mode else None

    def info(self):
        pointer = ctypes.POINTER(s.VixDiskLibInfo)()
        try:
            self._api.VixDiskLib_GetInfo(self._live(), ctypes.byref(pointer))
        except VddkError as error:
            raise error.in_context("reading the geometry of %s" % self.path)
        try:
            info = DiskInfo.from_struct(pointer.contents)
        finally:
            self._api.VixDiskLib_FreeInfo(pointer)
        self._capacity = info.capacity_sectors
        return info

    @property
    def capacity_sectors(self):
        if self._capacity is None:
            self.info()
        return self._capacity

    def _sectors(self, start_sector, nbytes, verb):
        if start_sector < 0 or nbytes % SECTOR:
            raise InvalidArgumentError("VDDK %s of %s must be whole %d-byte sectors, got %d bytes at sector %d"
                                       % (verb, self.path, SECTOR, nbytes, start_sector))
        return nbytes // SECTOR

    def _requests(self, start_sector, count):
        """(sector, sectors, byte offset in the buffer) of each request of at most max_request."""
        done = 0
        while done < count:
            piece = min(self.max_request_sectors, count - done)
            yield start_sector + done, piece, done * SECTOR
            done += piece

    def read(self, start_sector, buffer):
        """Fill buffer (its length a multiple of 512) from start_sector on; returns buffer."""
        address, anchor = _address(buffer, writable=True)
        count = self._sectors(start_sector, memoryview(buffer).nbytes, "read")
        handle = self._live()
        for sector, sectors, offset in self._requests(start_sector, count):
            try:
                self._api.VixDiskLib_Read(handle, sector, sectors, address + offset)
            except VddkError as error:
                raise error.in_context("reading %d sectors at sector %d of %s" % (sectors, sector, self.path))
        del anchor
        return buffer

    def write(self, start_sector, data):
        """Write data (its length a multiple of 512) from start_sector on."""
        if self.read_only:
            raise InvalidArgumentError("VDDK disk %s is open read-only" % self.path)
        address, anchor = _address(data, writable=False)
        count = self._sectors(start_sector, memoryview(data).nbytes, "write")
        handle = self._live()
        for sector, sectors, offset in self._requests(start_sector, count):
            try:
                self._api.VixDiskLib_Write(handle, sector, sectors, address + offset)
            except VddkError as error:
                raise error.in_context("writing %d sectors at sector %d of %s" % (sectors, sector, self.path))
        del anchor

    @property
    def writes_queue(self):
        """Whether queue_write queues (WriteAsync) rather than waiting for each request."""
        return self.writes_in_flight > 1 and self._api.supports("VixDiskLib_WriteAsync")

    def queue_write(self, start_sector, data):
        """Write data (its length a multiple of 512) from start_sector on, without waiting for it.

        ``data`` must not change until ``wait_writes`` has returned.  Raises
        the failure of an earlier queued write instead of queueing this one.
        """
        if not self.writes_queue:
            self.write(start_sector, data)
            return
        if self.read_only:
            raise InvalidArgumentError("VDDK disk %s is open read-only" % self.path)
        address, anchor = _address(data, writable=False)
        count = self._sectors(start_sector, memoryview(data).nbytes, "write")
        if self._writes is None:
            self._writes = AsyncWrites(self._api, self._live(), self.path, self.writes_in_flight)
        # what the queued requests hold on to: the bytes written (a copy, when one was made), whole
        held = anchor if isinstance(anchor, bytes) else data
        self._writes.submit(self._requests(start_sector, count), held, address)

    def wait_writes(self):
        """Until every queued write has completed; raises the first that failed."""
        if self._writes is not None:
            self._writes.wait()

    def unfinished_writes(self):
        """[(start sector, data)] queued and not known to be written (after a failure, or once closed)."""
        return self._writes.unfinished() if self._writes is not None else []

    def flush(self):
        self.wait_writes()
        if self._api.supports("VixDiskLib_Flush"):
            self._api.VixDiskLib_Flush(self._live())

    @property
    def supports_allocated_blocks(self):
        return self._api.supports("VixDiskLib_QueryAllocatedBlocks")

    def allocated_blocks(self, chunk_sectors=s.VIXDISKLIB_MIN_CHUNK_SIZE):
        """Allocated ranges of the whole disk as [(start_sector, num_sectors)], merged, in order.

        Asked in calls of at most VIXDISKLIB_MAX_CHUNK_NUMBER chunks.  A tail
        shorter than one chunk cannot be asked about and is reported as
        allocated, so a caller that reads what is listed misses nothing.
        """
        if not self.supports_allocated_blocks:
            raise VddkError("this VDDK (%s) has no VixDiskLib_QueryAllocatedBlocks; read the whole disk"
                            % self._api.path, code=s.VIX_E_NOT_SUPPORTED)
        if chunk_sectors < s.VIXDISKLIB_MIN_CHUNK_SIZE or chunk_sectors & (chunk_sectors - 1):
            raise InvalidArgumentError("chunk size must be a power of two of at least %d sectors"
                                       % s.VIXDISKLIB_MIN_CHUNK_SIZE)
        capacity = self.capacity_sectors
        aligned = capacity - capacity % chunk_sectors
        step = chunk_sectors * s.VIXDISKLIB_MAX_CHUNK_NUMBER
        blocks = []
        start = 0
        while start < aligned:
            count = min(step, aligned - start)
            for offset, length in self._query(start, count, chunk_sectors):
                _append(blocks, offset, length)
            start += count
        if aligned < capacity:
            _append(blocks, aligned, capacity - aligned)
        return blocks

    def _query(self, start, count, chunk_sectors):
        pointer = ctypes.POINTER(s.VixDiskLibBlockList)()
        try:
            self._api.VixDiskLib_QueryAllocatedBlocks(self._live(), start, count, chunk_sectors,
                                                      ctypes.byref(pointer))
        except VddkError as error:
            raise error.in_context("listing allocated blocks of %s (sectors %d+%d)" % (self.path, start, count))
        try:
            number = pointer.contents.numBlocks
            first = ctypes.addressof(pointer.contents) + s.VixDiskLibBlockList.blocks.offset
            array = (s.VixDiskLibBlock * number).from_address(first)
            return [(block.offset, block.length) for block in array]
        finally:
            self._api.VixDiskLib_FreeBlockList(pointer)

    def close(self):
        """Close the handle; queued writes are waited for first (their failures: ``unfinished_writes``)."""
        if self._writes is not None and self._handle is not None:
            self._writes.drain()
        handle, self._handle = self._handle, None
        if handle is not None:
            try:
                self._api.VixDiskLib_Close(handle)
            except VddkError as error:
                raise error.in_context("closing %s" % self.path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            self.close()
        except VddkError:
            if exc_type is None:
                raise
        return False


def _append(blocks, offset, length):
    if blocks and blocks[-1][0] + blocks[-1][1] >= offset:
        last_offset, last_length = blocks[-1]
        blocks[-1] = (last_offset, max(last_offset + last_length, offset + length) - last_offset)
    elif length:
        blocks.append((offset, length))
