# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError


class TransferError(VmcryptError):
    """A disk could not be read or written, after the retries allowed."""


def retry_predicate(retryable):
    """``retryable`` as a function of an error: a predicate already, or exception types."""
    if callable(retryable) and not isinstance(retryable, type):
        return retryable
    types = (retryable,) if isinstance(retryable, type) else tuple(retryable)
    return lambda error: isinstance(error, types)
