# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain library objects from a module's parameters: with repository_params.py, the only place that reads ``module.params`` shapes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import open_repository_in_background
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder, VmSelector


def client_from_params(params):
    return VsphereClient(hostname=params["hostname"], username=params["username"], password=params["password"],
                         port=params["port"], validate_certs=params["validate_certs"])


def selector_from_params(params):
    """The VmSelector the VM options (and cluster, where a module has it) describe."""
    return VmSelector(name=params["name"], uuid=params["uuid"], moid=params["moid"],
                      use_instance_uuid=params["use_instance_uuid"], datacenter=params["datacenter"],
                      folder=params["folder"], cluster=params.get("cluster"))


@contextlib.contextmanager
def vm_session(params):
    """(client, finder, the one VM the options name), logged in for the ``with`` block."""
    with client_from_params(params) as client:
        finder = VmFinder(client)
        yield client, finder, finder.find_one(selector_from_params(params))


@contextlib.contextmanager
def _repository_beside(params, session, opening=None, wait=True):
    """(repository, what ``session(params)`` yields): the repository key is derived while the session logs in.

    Deriving a password's key (scrypt, about 0.35 s, outside the GIL) and
    logging in (round trips, longer against a real vCenter than against the
    simulator) overlap instead of adding up.  The repository is still
    checked before the caller changes anything in vSphere, and its error (a
    wrong password, a missing repository) wins over a vSphere error when
    both fail, as when it was opened first.  ``opening`` is a future of
    ``open_repository_in_background`` started earlier still.  With
    ``wait=False`` the future itself is yielded, for a caller that waits for
    it at its first use, before it changes anything (``TransferJob``).
    """
    opening = opening or open_repository_in_background(params)
    try:
        with session(params) as values:
            yield opening.result() if wait else opening, values
    except BaseException:
        opening.result()  # raises the repository's own error first, if it has one
        raise


@contextlib.contextmanager
def repository_and_client(params, opening=None):
    """(repository, logged-in client) for the ``with`` block, the key derived during the login (see above)."""
    with _repository_beside(params, client_from_params, opening) as (repository, client):
        yield repository, client


@contextlib.contextmanager
def repository_and_vm_session(params, opening=None, wait=True):
    """(repository, client, finder, VM) for the ``with`` block, the key derived while the session logs in and
    finds the VM (``_repository_beside``; ``wait=False`` yields the repository's future)."""
    with _repository_beside(params, vm_session, opening, wait) as (repository, (client, finder, vm)):
        yield repository, client, finder, vm
