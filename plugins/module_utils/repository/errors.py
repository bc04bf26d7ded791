# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the backup repository.  One line each, never a secret."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError, VmcryptError


class RepositoryError(VmcryptError):
    """Base of every repository failure."""


class RepositoryNotFoundError(RepositoryError, NotFoundError):
    """No repository at the given location."""


class RepositoryExistsError(RepositoryError):
    """A repository (or other data) already exists where one should be created."""


class UnsupportedFormatError(RepositoryError):
    """The repository or one of its files has a format version this code cannot read."""


class WrongKeyError(RepositoryError):
    """No key slot opens with the password or key file given."""


class KeySlotError(RepositoryError):
    """A key slot cannot be added or removed as asked."""


class IntegrityError(RepositoryError):
    """A file failed authentication: tampered, truncated or written by another repository."""


class MissingDataError(RepositoryError):
    """A file the repository refers to is absent."""


class RepositoryFullError(RepositoryError):
    """The backend ran out of space; nothing half-written was left visible."""


class BackendError(RepositoryError):
    """The storage backend failed (I/O error, permission)."""


class LockedError(RepositoryError):
    """Another process holds a lock that conflicts with the operation."""


class BackupNotFoundError(RepositoryError, NotFoundError):
    """No committed or staged backup with that id."""


class UnsafeFileError(IntegrityError):
    """A repository path is a link, a FIFO, a device or larger than its kind can be: never followed or read."""
