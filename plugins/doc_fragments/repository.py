# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where the encrypted backup repository is and how to unlock it.
    DOCUMENTATION = r"""
options:
  repository:
    description:
      - Path of the backup repository directory, local or on a mounted NFS or SMB share.
      - The format is described in C(docs/repository-format.md) of the collection.
    type: path
    required: true
  repository_password:
    description:
      - Password that opens a key slot of the repository.
      - If neither this nor O(repository_key_file) is set, the value of the
        E(VMCRYPT_REPOSITORY_PASSWORD) environment variable is used.
      - Never returned, logged or put on a command line; prefer the environment variable or Ansible Vault.
    type: str
  repository_key_file:
    description:
      - File whose contents (16 bytes to 1 MiB, used as is) open a key-file slot of the repository.
      - If neither this nor O(repository_password) is set, the value of the
        E(VMCRYPT_REPOSITORY_KEY_FILE) environment variable is used.
      - Mutually exclusive with O(repository_password).
    type: path
notes:
  - A wrong password or key file fails the task with a one-line message and leaves the repository untouched.
  - All modules of the C(vmcrypt.backup.repository) action group accept these options, so a play can set
    them once under C(module_defaults).
requirements:
  - cryptography >= 41.0
  - zstandard >= 0.22
"""
