# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing and reading chunk files past the page cache (Linux ``O_DIRECT``).

A chunk file is written once and read rarely, at a restore or a verify days
later.  Through the page cache, a backup of terabytes evicts everything the
backup proxy had cached and pays, per 4 KiB, for a fresh page and a copy
into it; on this project's benchmark machine that kernel time was a third
of a full export's CPU (``docs/performance.md``), and a restore paid it
again reading.  Directly, the data moves between one reused, aligned
buffer per thread and the disk.

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
import fcntl
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
# Smaller files (block patches of a few sectors, the NVRAM) go through the page cache: padding and switching
# the descriptor cost more than they save.
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


def _aligned_buffer(size, purpose):
    """This thread's page-aligned buffer for ``purpose`` of at least ``size`` bytes (an anonymous map, reused)."""
    buffer = getattr(_buffers, purpose, None)
    if buffer is None or len(buffer) < size:
        if buffer is not None:
            buffer.close()
        buffer = mmap.mmap(-1, size)
        setattr(_buffers, purpose, buffer)
    return buffer


def _aligned(size):
    return -(-size // ALIGNMENT) * ALIGNMENT


def _set_direct(fd, on):
    """Switch ``O_DIRECT`` on or off for an open descriptor; False when the file system refuses it (EINVAL)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)
    except OSError as error:
        if error.errno == errno.EINVAL:
            return False
        raise
    return True


def write_to(fd, data):
    """Write ``data`` directly into the new, empty file open for writing at ``fd``; True when done.

    False when the kernel refuses direct I/O here: nothing was written and
    ``fd`` is as it was, for the caller's own write.  Other errors (no
    space, I/O) are raised.
    """
    size = len(data)
    padded = _aligned(size)
    if not _set_direct(fd, True):
        return False
    view = memoryview(_aligned_buffer(padded, "write"))
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
                _set_direct(fd, False)
                return False
    finally:
        view.release()
    os.ftruncate(fd, size)
    return True


def read_from(fd, limit):
    """The bytes of the file open for reading at ``fd`` (at its start), read directly: at most ``limit`` + 1.

    None when the kernel refuses direct I/O here: nothing was read and
    ``fd`` is as it was, for the caller's own read.  More than ``limit``
    bytes back means the file grew beyond what it may hold: the caller
    refuses it.  Other errors are raised.
    """
    wanted = _aligned(limit + 1)
    if not _set_direct(fd, True):
        return None
    view = memoryview(_aligned_buffer(wanted, "read"))
    try:
        done = 0
        while done < wanted:
            try:
                got = os.readv(fd, [view[done:wanted]])
            except OSError as error:
                if error.errno != errno.EINVAL or done:
                    raise
                _set_direct(fd, False)
                return None
            if got <= 0:
                break
            done += got
            if done % ALIGNMENT:
                break  # a short read ends at the end of the file
        return bytes(view[:done])
    finally:
        view.release()
