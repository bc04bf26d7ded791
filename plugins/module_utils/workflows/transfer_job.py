# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What disk_export and disk_import share: the VM, its proxy, and which transports they may use."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from concurrent.futures import Future

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import vm_crypto_facts_of
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError, PermissionDeniedError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.access import AccessCheck


def checked_max_retries(max_retries):
    """How many reconnections a transfer may make: a whole number, at least 0."""
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidArgumentError("max_retries must be a whole number, at least 0, not %r" % (max_retries,))
    return max_retries


def reconnect_cures(error):
    """The VDDK errors a new connection can cure (a lost connection), not disk I/O errors."""
    return isinstance(error, VddkError) and error.retryable


class CheckedTransports:
    """Transports a job may use, why the others may not, and the encryption facts behind that."""

    def __init__(self, allowed, refused, vm_encrypted, proxy_encrypted):
        self.allowed = allowed
        self.refused = refused
        self.vm_encrypted = vm_encrypted
        self.proxy_encrypted = proxy_encrypted


class TransferJob:
    """A VDDK transfer of one VM's disks, with the repository and the vSphere session it uses.

    ``repository`` may be a future of the repository (``open_repository_in_background``):
    the job waits for it at its first use, so deriving a password's key also
    overlaps the job's first vSphere round trips (facts, the access check),
    which only read.  Every job uses the repository before it changes
    anything, so a wrong password still changes nothing.
    """

    phase = None  # "backup" or "restore", for the privilege check

    def __init__(self, client, finder, repository, vm, options, proxy_vm=None, warn=None):
        self.client = client
        self.finder = finder
        self._repository = repository
        self.vm = vm
        self.proxy_vm = proxy_vm
        self.options = options
        self._warn = warn

    @property
    def repository(self):
        """The repository, waited for here if it is still being opened (it raises what opening raised)."""
        if isinstance(self._repository, Future):
            self._repository = self._repository.result()
        return self._repository

    def warn(self, text):
        if self._warn:
            self._warn(text)

    def facts_of(self, vm):
        return vm_crypto_facts_of(self.client, self.finder, vm)

    def check_transports(self):
        """The access decision for the phase, before anything is created.

        A refusal here leaves nothing to undo: no snapshot, no staged backup, no write.
        """
        result, decision = AccessCheck(self.client, self.finder).run(self.phase, self.options.transports, vm=self.vm,
                                                                     proxy_vm=self.proxy_vm)
        if decision.refused_all:
            raise PermissionDeniedError(decision.refusal_message())
        return CheckedTransports(decision.allowed_transports, decision.refused, result["vm_encrypted"],
                                 result["proxy_encrypted"])
