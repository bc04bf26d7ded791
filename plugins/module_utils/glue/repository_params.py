# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository from a module's parameters, without importing anything of vSphere.

Kept apart from ``glue.params`` so that a module can start deriving the
repository key (scrypt: about 0.3 s, outside the GIL) before it imports
pyVmomi and the workflows, and the two overlap (``open_repository_in_background``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.specs import KEY_FILE_ENV, PASSWORD_ENV
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.flush import DEFAULT_SYNC_LEVEL, check_sync_level
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository, credential_from


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
    repository = Repository.open(params["repository"], credential_from_params(params))
    repository.sync_level = check_sync_level(params.get("repository_sync") or DEFAULT_SYNC_LEVEL)
    return repository


def open_repository_in_background(params):
    """A future of ``open_repository(params)``, started now on a thread of its own.

    Its ``result()`` raises what opening raised (a wrong password, a missing
    repository); the caller decides when that must be known.
    """
    executor = ThreadPoolExecutor(max_workers=1)
    try:
        return executor.submit(open_repository, params)
    finally:
        executor.shutdown(wait=False)


def pass_on_repository_warnings(module, repository):
    """What the repository noticed (a key slot skipped, ...) as task warnings."""
    for warning in repository.warnings:
        module.warn(warning)
