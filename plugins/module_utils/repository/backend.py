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

import errno
import os
import uuid

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    BackendError,
    MissingDataError,
    RepositoryFullError,
)

TEMP_PREFIX = ".tmp-"


class Backend(object):
    """The interface every backend offers; all names are relative paths."""

    location = None

    def put(self, name, data, overwrite=True, durable=True):
        """Store ``data`` under ``name`` atomically: readers see all or nothing.

        With ``overwrite=False`` an existing file is left alone and False is
        returned (chunks are content addressed, so either copy is right).
        ``durable=False`` skips the flush to stable storage, for files that
        are worthless after a power loss anyway (lock files).
        """
        raise NotImplementedError

    def get(self, name):
        raise NotImplementedError

    def exists(self, name):
        raise NotImplementedError

    def list(self, prefix):
        """Names of the files directly below folder ``prefix`` (no temp files)."""
        raise NotImplementedError

    def walk(self, prefix):
        """Names of every file below ``prefix``, recursively (no temp files)."""
        raise NotImplementedError

    def delete(self, name):
        """Remove ``name``; a missing file is not an error."""
        raise NotImplementedError

    def rename(self, source, target):
        raise NotImplementedError

    def stat(self, name):
        """(size in bytes, modification time as epoch seconds) of ``name``."""
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


def _check_name(name):
    parts = name.split("/")
    if not name or name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise InvalidArgumentError("invalid repository file name %r" % name)
    return parts


def _os_error(error, action, name):
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return RepositoryFullError("no space left in the repository while %s %s" % (action, name))
    return BackendError("I/O error while %s %s: %s" % (action, name, error.strerror or error))


class LocalBackend(Backend):
    """A directory on a local or mounted file system."""

    def __init__(self, root, fsync=True):
        self.root = os.path.abspath(root)
        self.location = self.root
        self.fsync = fsync
        self._made_dirs = set()

    def _path(self, name):
        return os.path.join(self.root, *_check_name(name))

    def _ensure_dir(self, directory):
        if directory in self._made_dirs:
            return
        try:
            os.makedirs(directory, mode=0o700)
        except OSError as error:
            if error.errno != errno.EEXIST:
                raise
        self._made_dirs.add(directory)

    def _fsync_dir(self, directory):
        if not self.fsync:
            return
        try:
            fd = os.open(directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass  # some network file systems refuse fsync on directories
        finally:
            os.close(fd)

    def put(self, name, data, overwrite=True, durable=True):
        path = self._path(name)
        directory = os.path.dirname(path)
        if not overwrite and os.path.exists(path):
            return False
        temp = os.path.join(directory, TEMP_PREFIX + uuid.uuid4().hex)
        try:
            self._ensure_dir(directory)
            try:
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as error:
                if error.errno != errno.ENOENT:
                    raise
                # the folder was removed since we made it (by us or another process)
                self._made_dirs.discard(directory)
                self._ensure_dir(directory)
                fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                if self.fsync and durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if overwrite or not self._link(temp, path):
                os.rename(temp, path)
            else:
                os.unlink(temp)
        except _AlreadyThere:
            os.unlink(temp)
            return False
        except OSError as error:
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise _os_error(error, "writing", name)
        if durable:
            self._fsync_dir(directory)
        return True

    @staticmethod
    def _link(temp, path):
        """Publish ``temp`` at ``path`` only if ``path`` is absent (True when linked).

        Hard links give an atomic "create if absent"; file systems without
        them (some SMB mounts) fall back to rename, which is still correct for
        content-addressed files.
        """
        try:
            os.link(temp, path)
        except OSError as error:
            if error.errno == errno.EEXIST:
                raise _AlreadyThere()
            if error.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                return False
            raise
        return True

    def get(self, name):
        try:
            with open(self._path(name), "rb") as handle:
                return handle.read()
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise MissingDataError("repository file %s is missing" % name)
            raise _os_error(error, "reading", name)

    def exists(self, name):
        return os.path.exists(self._path(name))

    def list(self, prefix):
        path = self._path(prefix)
        try:
            entries = sorted(os.listdir(path))
        except OSError as error:
            if error.errno == errno.ENOENT:
                return []
            raise _os_error(error, "listing", prefix)
        return [prefix + "/" + entry for entry in entries if not entry.startswith(TEMP_PREFIX)]

    def list_dirs(self, prefix):
        """Names of the folders directly below folder ``prefix``."""
        path = self._path(prefix)
        try:
            entries = sorted(os.listdir(path))
        except OSError as error:
            if error.errno == errno.ENOENT:
                return []
            raise _os_error(error, "listing", prefix)
        return [prefix + "/" + entry for entry in entries if os.path.isdir(os.path.join(path, entry))]

    def walk(self, prefix):
        base = self._path(prefix)
        names = []
        for directory, _subdirs, files in os.walk(base):
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            for entry in files:
                if not entry.startswith(TEMP_PREFIX):
                    names.append(relative + "/" + entry)
        return sorted(names)

    def delete(self, name):
        try:
            os.unlink(self._path(name))
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise _os_error(error, "deleting", name)

    def delete_dir(self, prefix):
        """Remove an empty folder; a missing one is not an error."""
        path = self._path(prefix)
        self._made_dirs.discard(path)
        try:
            os.rmdir(path)
        except OSError as error:
            if error.errno not in (errno.ENOENT, errno.ENOTEMPTY):
                raise _os_error(error, "deleting", prefix)

    def rename(self, source, target):
        target_path = self._path(target)
        try:
            self._ensure_dir(os.path.dirname(target_path))
            os.rename(self._path(source), target_path)
        except OSError as error:
            raise _os_error(error, "renaming", source)
        self._fsync_dir(os.path.dirname(target_path))

    def stat(self, name):
        try:
            result = os.stat(self._path(name))
        except OSError as error:
            if error.errno == errno.ENOENT:
                raise MissingDataError("repository file %s is missing" % name)
            raise _os_error(error, "reading", name)
        return result.st_size, result.st_mtime

    def temp_files(self):
        names = []
        for directory, _subdirs, files in os.walk(self.root):
            relative = os.path.relpath(directory, self.root).replace(os.sep, "/")
            for entry in files:
                if entry.startswith(TEMP_PREFIX):
                    names.append(entry if relative == "." else relative + "/" + entry)
        return names

    def delete_temp(self, name):
        """Remove a temporary file named by ``temp_files``."""
        try:
            os.unlink(os.path.join(self.root, *name.split("/")))
        except OSError as error:
            if error.errno != errno.ENOENT:
                raise _os_error(error, "deleting", name)

    def is_repository_root_usable(self):
        """True when a repository may be created here: nothing there, an empty
        directory, or only the ``keys`` folder of a creation that stopped before
        writing ``config``."""
        if not os.path.exists(self.root):
            return True
        if not os.path.isdir(self.root):
            return False
        entries = os.listdir(self.root)
        if entries == ["keys"]:
            keys = os.path.join(self.root, "keys")
            return os.path.isdir(keys) and all(os.path.isfile(os.path.join(keys, name)) for name in os.listdir(keys))
        return not entries

    def total_size(self, prefix):
        """(file count, bytes) below ``prefix``."""
        count = 0
        size = 0
        for directory, _subdirs, files in os.walk(self._path(prefix) if prefix else self.root):
            for entry in files:
                if entry.startswith(TEMP_PREFIX):
                    continue
                try:
                    size += os.stat(os.path.join(directory, entry)).st_size
                    count += 1
                except OSError:
                    pass
        return count, size
