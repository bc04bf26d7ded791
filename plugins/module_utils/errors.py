# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception family of the collection.

Library code raises these; a module catches ``VmcryptError`` once and turns it
into a failed task with ``str(error)`` as the message.  Messages are one line
and never contain secrets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class VmcryptError(Exception):
    """Base of every error the collection reports to a user.

    ``details`` are result fields the failed task carries beside the message
    (a verify report, for example); never secrets.
    """

    def __init__(self, *args, **kwargs):
        self.details = kwargs.pop("details", None) or {}
        super(VmcryptError, self).__init__(*args, **kwargs)


class InvalidArgumentError(VmcryptError):
    """The caller's input cannot be acted on (bad combination, bad value)."""


class VsphereConnectionError(VmcryptError):
    """vCenter could not be reached, or its TLS certificate was refused."""


class AuthenticationError(VmcryptError):
    """vCenter refused the credentials."""


class NotFoundError(VmcryptError):
    """A named inventory object (VM, folder, datacenter, policy) is absent."""


class VmExistsError(VmcryptError):
    """A VM of the name asked for exists already (and replacing it was not asked for)."""


class AmbiguousError(VmcryptError):
    """A name matched several objects; the message lists them."""


class TaskError(VmcryptError):
    """A vSphere task failed or did not finish in time."""


class PermissionDeniedError(VmcryptError):
    """The account lacks privileges, or a transport was refused by policy."""


class VsphereFaultError(VmcryptError):
    """vCenter refused a call with a fault the code did not expect at that point."""
