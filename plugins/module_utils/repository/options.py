# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository options every repository module shares (doc fragment ``vmcrypt.backup.repository``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import InvalidRequestError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository, credential_from

PASSWORD_ENV = "VMCRYPT_REPOSITORY_PASSWORD"
KEY_FILE_ENV = "VMCRYPT_REPOSITORY_KEY_FILE"
_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]?)(i?B)?\s*$", re.IGNORECASE)


# A repository opens with a password or a key file, not both.
REPOSITORY_MUTUALLY_EXCLUSIVE = [("repository_password", "repository_key_file")]


def repository_argument_spec(**extra):
    spec = {
        "repository": {"type": "path", "required": True},
        "repository_password": {"type": "str", "no_log": True},
        "repository_key_file": {"type": "path", "no_log": False},
    }
    spec.update(extra)
    return spec


def credential_from_params(params, environ=None):
    """The credential from the options, else from the environment (options win over the environment)."""
    environ = os.environ if environ is None else environ
    password = params.get("repository_password")
    key_file = params.get("repository_key_file")
    if not password and not key_file:
        password = environ.get(PASSWORD_ENV) or None
        if not password:
            key_file = environ.get(KEY_FILE_ENV) or None
    return credential_from(password=password, key_file=key_file)


def open_repository(params):
    return Repository.open(params["repository"], credential_from_params(params))


def parse_size(value):
    """Bytes from ``4194304``, ``4M``, ``4MiB`` or ``64KiB`` (binary units)."""
    if isinstance(value, int):
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise InvalidRequestError("%r is not a size (examples: 4MiB, 512KiB, 1048576)" % (value,))
    number, unit = int(match.group(1)), match.group(2).upper()
    return number * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]
