# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing chunk files past the page cache (Linux ``O_DIRECT``).

A chunk file is written once and read rarely, at a restore or a verify days
later.  Through the page cache, a backup of terabytes evicts everything the
backup proxy had cached and pays, per 4 KiB, for a fresh page and a copy
into it; on this project's benchmark machine that kernel time was a third
of a full export's CPU (``docs/performance.md``).  Written directly, the
data goes from one reused, aligned buffer per thread to the disk.

Only on the local file systems known to take direct I/O of any aligned
size (ext2/3/4, XFS, Btrfs); elsewhere (NFS and SMB, where a direct write is
a synchronous round trip to the server; tmpfs, which refuses it; FUSE) and
whenever the kernel refuses (``EINVAL``), the caller writes through the page
cache as before.  Direct I/O does not make a file durable: its size and
block allocation are metadata, flushed by the same ``syncfs`` or ``fsync``
as any file (``flush.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import mmap
import os
import threading

# statfs(2) f_type of the file systems direct writes are used on (linux/magic.h)
DIRECT_FILE_SYSTEMS = {
    0xEF53: "ext2/ext3/ext4",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
}
# Offsets, lengths and buffer addresses of direct I/O must be multiples of the logical block size,
# at most 4096 on the disks these file systems sit on; a file's real size is set afterwards.
ALIGNMENT = 4096
# Smaller files (block patches of a few sectors, the NVRAM) go through the page cache: padding and a second
# descriptor cost more than they save.
MIN_SIZE = 64 * 1024

_buffers = threading.local()


def file_system_type(fd):
    """statfs(2) ``f_type`` of the file system holding ``fd``, or None where it cannot be asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fstatfs = libc.fstatfs
    except (OSError, AttributeError):
        return None
    buffer = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux; f_type comes first
    if fstatfs(fd, buffer) != 0:
        return None
    return ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF


def usable_on(fd):
    """True when files of the file system holding folder descriptor ``fd`` may be written directly."""
    return hasattr(os, "O_DIRECT") and file_system_type(fd) in DIRECT_FILE_SYSTEMS


def _aligned_buffer(size):
    """This thread's page-aligned buffer of at least ``size`` bytes (an anonymous map, kept for reuse)."""
    buffer = getattr(_buffers, "buffer", None)
    if buffer is None or len(buffer) < size:
        if buffer is not None:
            buffer.close()
        buffer = _buffers.buffer = mmap.mmap(-1, size)
    return buffer


def write_file(name, dir_fd, data, flags):
    """Write ``data`` into the new, empty file ``name`` of folder ``dir_fd`` directly; True when done.

    False when the kernel refuses direct I/O here: nothing was written, and
    the caller writes the file its own way.  Other errors (no space, I/O)
    are raised.
    """
    size = len(data)
    padded = -(-size // ALIGNMENT) * ALIGNMENT
    try:
        fd = os.open(name, os.O_WRONLY | os.O_DIRECT | flags, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    try:
        buffer = _aligned_buffer(padded)
        view = memoryview(buffer)
        try:
            view[:size] = data
            view[size:padded] = bytes(padded - size)
            done = 0
            while done < padded:
                try:
                    done += os.write(fd, view[done:padded])
                except OSError as error:
                    if error.errno != errno.EINVAL or done:
                        raise
                    return False
        finally:
            view.release()
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
    return True
