# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where repository files live.

The format only needs a handful of operations on named files: ``put``
(atomic, whole file), ``get``, ``exists``, ``list``, ``delete``, ``rename``
and ``stat``.  Names are relative, slash separated paths such as
``chunks/ab/ab12...``.  ``LocalBackend`` implements them on a local or
mounted (NFS/SMB) directory; an object store backend can implement the same
class without touching the format code.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import errno
import functools
import os
import stat as stat_module
import uuid

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import direct_io
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackendError,
    MissingDataError,
    RepositoryFullError,
    UnsafeFileError,
)

TEMP_PREFIX = ".tmp-"
# What a read returns at most when the caller names no smaller limit.
DEFAULT_MAX_READ = 1 << 30


class Backend(object):
    """The interface every backend offers; all names are relative paths."""

    location = None

    def put(self, name, data, overwrite=True, durable=True, uncached=False):
        """Store ``data`` under ``name`` atomically: readers see all or nothing.

        With ``overwrite=False`` an existing file is left alone and False is
        returned (chunks are content addressed, so either copy is right).
        ``durable=False`` skips the flush to stable storage, for files that
        are worthless after a power loss anyway (lock files) or that a later
        ``sync`` flushes (chunk files, ``flush.py``).  ``uncached=True`` asks
        for the data to bypass caches where the storage allows (chunk files:
        written once, read rarely; ``direct_io.py``).
        """
        raise NotImplementedError

    def sync(self):
        """Flush everything written to the repository's storage so far to stable storage."""
        raise NotImplementedError

    def get(self, name, max_size=None, uncached=False):
        """The bytes of regular file ``name``; a link, FIFO, device or a file above ``max_size`` is refused.

        ``uncached=True``: read past caches where the storage allows (chunk files, ``direct_io.py``).
        """
        raise NotImplementedError

    def exists(self, name):
        raise NotImplementedError

    def list(self, prefix, irregular=None):
        """Names of the regular files directly below folder ``prefix`` (no temp files).

        Links, FIFOs and devices are never listed; their names are appended
        to ``irregular`` when it is a list.
        """
        raise NotImplementedError

    def walk(self, prefix):
        """Names of every file below ``prefix``, recursively (no temp files)."""
        raise NotImplementedError

    def walk_modified(self, prefix, since):
        """Names of the files below ``prefix`` (recursively, no temp files) modified at or after
        ``since``, by the storage's clock."""
        raise NotImplementedError

    def delete(self, name):
        """Remove ``name``; a missing file is not an error."""
        raise NotImplementedError

    def rename(self, source, target):
        raise NotImplementedError

    def stat(self, name):
        """(size in bytes, modification time by the storage's clock) of regular file ``name``."""
        raise NotImplementedError

    def touch(self, name):
        """Set the modification time of regular file ``name`` to the storage's now, without rewriting it."""
        raise NotImplementedError

    def now(self):
        """The storage's clock: the modification time of a file created for the purpose."""
        raise NotImplementedError

    def list_dirs(self, prefix):
        """Names of the folders directly below folder ``prefix``."""
        raise NotImplementedError

    def delete_dir(self, prefix):
        """Remove an empty folder; a missing or non-empty one is left alone."""
        raise NotImplementedError

    def temp_files(self):
        """Names of temporary files left by interrupted writers."""
        raise NotImplementedError

    def delete_temp(self, name):
        """Remove a temporary file named by ``temp_files``."""
        raise NotImplementedError

    def is_repository_root_usable(self):
        """True when a repository may be created here (nothing there, empty, or only
        the ``keys`` of a creation that stopped before writing ``config``)."""
        raise NotImplementedError

    def total_size(self, prefix):
        """(file count, bytes) below ``prefix`` ("" for the whole repository)."""
        raise NotImplementedError


class _AlreadyThere(Exception):
    pass


class _Entry(object):
    """One name of a folder listing: what it is, read while the folder was open."""

    __slots__ = ("name", "file", "dir", "size", "mtime")

    def __init__(self, name, is_file, is_dir, size, mtime=0.0):
        self.name = name
        self.file = is_file
        self.dir = is_dir
        self.size = size
        self.mtime = mtime

    def is_file(self, follow_symlinks=False):  # pylint: disable=unused-argument
        return self.file

    def is_dir(self, follow_symlinks=False):  # pylint: disable=unused-argument
        return self.dir


def _check_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InvalidArgumentError("invalid repository file name %r" % name)
    return parts


def _os_error(error, action, name):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RepositoryFullError("no space left in the repository while %s %s" % (action, name))
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        return UnsafeFileError("repository path %s is a link or not a folder where a folder belongs; "
                               "the repository never follows links" % name)
    return BackendError("I/O error while %s %s: %s" % (action, name, error.strerror or error))


def _read_up_to(fd, count):
    """At most ``count`` bytes from ``fd``'s position: fewer only at the end of the file."""
    chunks = []
    remaining = count
    while remaining > 0:
        data = os.read(fd, min(remaining, 1 << 24))
        if not data:
            break
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


def _syncfs(fd):
    """syncfs(2) of the file system holding ``fd``; where the C library lacks it, sync(2) of all of them.

    Linux reports write-back errors of the file system through syncfs since 5.8;
    before that, and through sync(2), an error is not seen here.
    """
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is None:
        os.sync()
        return
    if syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


SYNC_FILE_RANGE_WRITE = 2  # linux/fs.h: start writing the dirty pages out, do not wait


@functools.lru_cache(maxsize=None)
def _sync_file_range():
    function = getattr(_libc(), "sync_file_range", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
        function.restype = ctypes.c_int
    return function


def _start_writeback(fd):
    """Have the kernel start writing ``fd``'s dirty pages now, without waiting (Linux's sync_file_range).

    Only a head start: the file counts as unflushed until ``sync``.  But the
    disk then works while the export computes, and that one flush at the end
    finds little left to write.  An error here shows again at the flush.
    """
    function = _sync_file_range()
    if function is not None:
        function(fd, 0, 0, SYNC_FILE_RANGE_WRITE)


_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _NOFOLLOW | _CLOEXEC


class LocalBackend(Backend):
    """A directory on a local or mounted file system.

    The root may itself be a link (an administrator's choice); below it
    nothing is ever followed: folders are opened one component at a time
    with ``O_NOFOLLOW`` and files are named relative to their folder's
    descriptor, so a link planted anywhere in the repository is neither
    read, listed, written through nor deleted through.
    """

    def __init__(self, root, fsync=True):
        self.root = os.path.abspath(root)
        self.location = self.root
        self.fsync = fsync
        self.direct_io = None  # whether uncached files are written and read with O_DIRECT; decided at the first one

    def sync(self):
        """One ``syncfs`` of the repository's file system (nothing when ``fsync`` is off)."""
        if not self.fsync:
            return
        try:
            fd = os.open(self.root, os.O_RDONLY | _CLOEXEC)
        except OSError as error:
            raise _os_error(error, "flushing", self.root)
        try:
            _syncfs(fd)
        except OSError as error:
            raise _os_error(error, "flushing", self.root)
        finally:
            os.close(fd)

    def _open_dir(self, parts, create=False):
        """A descriptor of folder ``root/parts...``; ENOENT when absent (``create`` makes it)."""
        if create and not os.path.isdir(self.root):
            try:
                os.makedirs(self.root, mode=0o700)
            except OSError as error:
                if error.errno != errno.EEXIST:
                    raise
        fd = os.open(self.root, os.O_RDONLY | _CLOEXEC)
        try:
            for part in parts:
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    if error.errno != errno.ENOENT or not create:
                        raise
                    try:
                        os.mkdir(part, 0o700, dir_fd=fd)
                    except OSError as made:
                        if made.errno != errno.EEXIST:
                            raise
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    @staticmethod
    def _regular(info, name, max_size=None):
        if not stat_module.S_ISREG(info.st_mode):
            raise UnsafeFileError("repository file %s is not a regular file (a link, FIFO, device or folder); "
                                  "it is never read or followed" % name)
        if max_size is not None and info.st_size > max_size:
            raise UnsafeFileError("repository file %s has %d bytes, more than the %d it may have"
                                  % (name, info.st_size, max_size))
        return info

    def _fsync_dir(self, fd):
        if not self.fsync:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some network file systems refuse fsync on directories

    def put(self, name, data, overwrite=True, durable=True, uncached=False):
        parts = _check_name(name)
        leaf = parts[-1]
        temp = TEMP_PREFIX + uuid.uuid4().hex
        dfd = None
        created = False
        try:
            dfd = self._open_dir(parts[:-1], create=True)
            if not overwrite and self._lexists(leaf, dfd):
                return False
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dfd)
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise
                # the folder was removed since we opened it (by us or another process)
                os.close(dfd)
                dfd = None
                dfd = self._open_dir(parts[:-1], create=True)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dfd)
            created = True
            try:
                direct = uncached and self._write_direct(fd, dfd, data)
                view = memoryview(b"" if direct else data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync and durable:
                    os.fsync(fd)
                elif direct:
                    pass  # a direct write leaves no dirty pages to start writing out
                elif self.fsync:
                    _start_writeback(fd)
            finally:
                os.close(fd)
            if overwrite or not self._link(temp, leaf, dfd):
                os.rename(temp, leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
            else:
                os.unlink(temp, dir_fd=dfd)
            created = False
            if durable:
                self._fsync_dir(dfd)
        except _AlreadyThere:
            os.unlink(temp, dir_fd=dfd)
            return False
        except OSError as error:
            if created:
                try:
                    os.unlink(temp, dir_fd=dfd)
                except OSError:
                    pass
            raise _os_error(error, "writing", name)
        finally:
            if dfd is not None:
                os.close(dfd)
        return True

    def _direct_usable(self, dfd):
        if self.direct_io is None:
            self.direct_io = direct_io.usable_on(dfd)
        return self.direct_io

    def _write_direct(self, fd, dfd, data):
        """Write the new file at ``fd`` past the page cache if this file system takes it; False: write it as usual."""
        if len(data) < direct_io.MIN_SIZE or not self._direct_usable(dfd):
            return False
        if direct_io.write_to(fd, data):
            return True
        self.direct_io = False  # refused here: every later file goes through the page cache
        return False

    def _read_direct(self, fd, dfd, size, limit):
        """The file at ``fd`` read past the page cache if this file system takes it; None: read it as usual."""
        if size < direct_io.MIN_SIZE or not self._direct_usable(dfd):
            return None
        blob = direct_io.read_from(fd, limit)
        if blob is None:
            self.direct_io = False
        return blob

    @staticmethod
    def _lexists(leaf, dfd):
        try:
            os.stat(leaf, dir_fd=dfd, follow_symlinks=False)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return False
            raise
        return True

    @staticmethod
    def _link(temp, leaf, dfd):
        """Publish ``temp`` at ``leaf`` only if ``leaf`` is absent (True when linked).

        Hard links give an atomic "create if absent"; file systems without
        them (some SMB mounts) fall back to rename, which is still correct for
        content-addressed files.
        """
        try:
            os.link(temp, leaf, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise _AlreadyThere()
            if error.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                return False
            raise
        return True

    def _at(self, name, action, body, missing=None):
        """Run ``body(leaf, folder descriptor)`` for ``name``; a missing folder or file calls ``missing``."""
        parts = _check_name(name)
        try:
            dfd = self._open_dir(parts[:-1])
        except OSError as error:
            if error.errno == errno.ENOENT and missing is not None:
                return missing()
            raise _os_error(error, action, name)
        try:
            return body(parts[-1], dfd)
        except OSError as error:
            if error.errno == errno.ENOENT and missing is not None:
                return missing()
            raise _os_error(error, action, name)
        finally:
            os.close(dfd)

    def _missing(self, name):
        def raise_missing():
            raise MissingDataError("repository file %s is missing" % name)
        return raise_missing

    def get(self, name, max_size=None, uncached=False):
        limit = DEFAULT_MAX_READ if max_size is None else max_size

        def read(leaf, dfd):
            self._regular(os.stat(leaf, dir_fd=dfd, follow_symlinks=False), name, limit)
            fd = os.open(leaf, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC, dir_fd=dfd)
            try:
                size = self._regular(os.fstat(fd), name, limit).st_size
                blob = self._read_direct(fd, dfd, size, limit) if uncached else None
                if blob is None:
                    blob = _read_up_to(fd, limit + 1)
            finally:
                os.close(fd)
            if len(blob) > limit:
                raise UnsafeFileError("repository file %s grew beyond the %d bytes it may have" % (name, limit))
            return blob
        return self._at(name, "reading", read, self._missing(name))

    def exists(self, name):
        def regular(leaf, dfd):
            return stat_module.S_ISREG(os.stat(leaf, dir_fd=dfd, follow_symlinks=False).st_mode)
        return self._at(name, "reading", regular, lambda: False)

    def _scan(self, prefix, stat_files=False):
        """[_Entry] directly below folder ``prefix`` ("" is the root), sorted; [] when it is absent.

        The kinds come from the folder listing (``lstat`` where it is silent):
        a link is a link, never what it points to.
        """
        parts = _check_name(prefix) if prefix else []
        try:
            dfd = self._open_dir(parts)
        except OSError as error:
            if error.errno == errno.ENOENT:
                return []
            raise _os_error(error, "listing", prefix or ".")
        result = []
        try:
            with os.scandir(dfd) as entries:
                for entry in entries:
                    try:
                        is_file = entry.is_file(follow_symlinks=False)
                        info = entry.stat(follow_symlinks=False) if stat_files and is_file else None
                        result.append(_Entry(entry.name, is_file, entry.is_dir(follow_symlinks=False),
                                             info.st_size if info else 0, info.st_mtime if info else 0.0))
                    except OSError:
                        continue  # removed while listing
        except OSError as error:
            raise _os_error(error, "listing", prefix or ".")
        finally:
            os.close(dfd)
        return sorted(result, key=lambda entry: entry.name)

    @staticmethod
    def _join(prefix, entry):
        return prefix + "/" + entry if prefix else entry

    def list(self, prefix, irregular=None):
        names = []
        for entry in self._scan(prefix):
            if entry.name.startswith(TEMP_PREFIX):
                continue
            if entry.is_file(follow_symlinks=False):
                names.append(self._join(prefix, entry.name))
            elif irregular is not None and not entry.is_dir(follow_symlinks=False):
                irregular.append(self._join(prefix, entry.name))
        return names

    def list_dirs(self, prefix):
        """Names of the folders directly below folder ``prefix`` (never links to folders)."""
        return [self._join(prefix, entry.name) for entry in self._scan(prefix) if entry.is_dir(follow_symlinks=False)]

    def _walk(self, prefix, temp, stat_files=False):
        """Regular files below ``prefix``, recursively, not entering links: ``temp`` picks temporary or other files."""
        found = []
        pending = [prefix]
        while pending:
            folder = pending.pop()
            for entry in self._scan(folder, stat_files):
                if entry.is_dir(follow_symlinks=False):
                    pending.append(self._join(folder, entry.name))
                elif entry.is_file(follow_symlinks=False) and entry.name.startswith(TEMP_PREFIX) == temp:
                    found.append((self._join(folder, entry.name), entry))
        return sorted(found, key=lambda pair: pair[0])

    def walk(self, prefix):
        return [name for name, _entry in self._walk(prefix, temp=False)]

    def walk_modified(self, prefix, since):
        return [name for name, entry in self._walk(prefix, temp=False, stat_files=True) if entry.mtime >= since]

    def delete(self, name):
        """Remove ``name`` (a link is removed itself, never what it points to); a missing file is not an error."""
        self._at(name, "deleting", lambda leaf, dfd: os.unlink(leaf, dir_fd=dfd), lambda: None)

    def delete_dir(self, prefix):
        """Remove an empty folder; a missing or non-empty one (or a link) is left alone."""
        def remove(leaf, dfd):
            try:
                os.rmdir(leaf, dir_fd=dfd)
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
        self._at(prefix, "deleting", remove, lambda: None)

    def rename(self, source, target):
        source_parts = _check_name(source)
        target_parts = _check_name(target)
        source_fd = target_fd = None
        try:
            source_fd = self._open_dir(source_parts[:-1])
            target_fd = self._open_dir(target_parts[:-1], create=True)
            os.rename(source_parts[-1], target_parts[-1], src_dir_fd=source_fd, dst_dir_fd=target_fd)
            self._fsync_dir(target_fd)
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise MissingDataError("repository file %s is missing" % source)
            raise _os_error(error, "renaming", source)
        finally:
            for fd in (source_fd, target_fd):
                if fd is not None:
                    os.close(fd)

    def stat(self, name):
        def lstat(leaf, dfd):
            info = self._regular(os.stat(leaf, dir_fd=dfd, follow_symlinks=False), name)
            return info.st_size, info.st_mtime
        return self._at(name, "reading", lstat, self._missing(name))

    def touch(self, name):
        def touch(leaf, dfd):
            self._regular(os.stat(leaf, dir_fd=dfd, follow_symlinks=False), name)
            os.utime(leaf, dir_fd=dfd, follow_symlinks=False)  # no times: the storage sets its own now
        self._at(name, "touching", touch, self._missing(name))

    def now(self):
        temp = TEMP_PREFIX + uuid.uuid4().hex
        try:
            dfd = self._open_dir([], create=True)
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, 0o600, dir_fd=dfd)
                try:
                    return os.fstat(fd).st_mtime
                finally:
                    os.close(fd)
                    os.unlink(temp, dir_fd=dfd)
            finally:
                os.close(dfd)
        except OSError as error:
            raise _os_error(error, "reading the clock of", self.root)

    def temp_files(self):
        return [name for name, _entry in self._walk("", temp=True)]

    def delete_temp(self, name):
        """Remove a temporary file named by ``temp_files``."""
        self.delete(name)

    def is_repository_root_usable(self):
        """True when a repository may be created here: nothing there, an empty
        directory, or only the ``keys`` folder of a creation that stopped before
        writing ``config``."""
        if not os.path.exists(self.root):
            return True
        if not os.path.isdir(self.root):
            return False
        entries = self._scan("")
        if [entry.name for entry in entries] == ["keys"]:
            if not entries[0].is_dir(follow_symlinks=False):
                return False
            return all(entry.is_file(follow_symlinks=False) for entry in self._scan("keys"))
        return not entries

    def total_size(self, prefix):
        """(file count, bytes) of the regular files below ``prefix``."""
        count = 0
        size = 0
        for _name, entry in self._walk(prefix, temp=False, stat_files=True):
            size += entry.size
            count += 1
        return count, size
