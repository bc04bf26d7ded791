# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain library objects from a module's parameters: the only place that reads ``module.params`` shapes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.specs import KEY_FILE_ENV, PASSWORD_ENV
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository, credential_from
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


def repository_secret_from_env(params, environ=None):
    """(password, key file) of the options, else of the environment (options win over the environment)."""
    environ = os.environ if environ is None else environ
    password = params.get("repository_password")
    key_file = params.get("repository_key_file")
    if not password and not key_file:
        password = environ.get(PASSWORD_ENV) or None
        if not password:
            key_file = environ.get(KEY_FILE_ENV) or None
    return password, key_file


def credential_from_params(params, environ=None):
    password, key_file = repository_secret_from_env(params, environ)
    return credential_from(password=password, key_file=key_file)


def open_repository(params):
    return Repository.open(params["repository"], credential_from_params(params))


@contextlib.contextmanager
def repository_and_vm_session(params):
    """(repository, client, finder, VM) for the ``with`` block: the repository key is derived while the session logs in.

    Deriving a password's key (scrypt, about 0.4 s, outside the GIL) and
    logging in and finding the VM (round trips) overlap instead of adding up.
    The repository is still checked before the caller changes anything in
    vSphere, and its error (a wrong password, a missing repository) wins over
    a vSphere error when both fail, as when it was opened first.
    """
    executor = ThreadPoolExecutor(max_workers=1)
    opening = executor.submit(open_repository, params)
    executor.shutdown(wait=False)
    try:
        with vm_session(params) as (client, finder, vm):
            yield opening.result(), client, finder, vm
    except BaseException:
        opening.result()  # raises the repository's own error first, if it has one
        raise


def pass_on_repository_warnings(module, repository):
    """What the repository noticed (a key slot skipped, ...) as task warnings."""
    for warning in repository.warnings:
        module.warn(warning)
