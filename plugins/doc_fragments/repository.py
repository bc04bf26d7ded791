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
  repository_sync:
    description:
      - How a task that stores data (M(vmcrypt.backup.disk_export), the NVRAM of M(vmcrypt.backup.metadata_capture))
        flushes the chunk files it writes to stable storage. Other modules ignore it.
      - V(filesystem) publishes chunk files unflushed and flushes the repository's file system once (C(syncfs))
        before the disk is recorded, as Proxmox Backup Server's C(sync-level=filesystem) does. A crash before that
        flush leaves a marker under C(unflushed/); the next backup reads the chunk files written since it and moves
        the damaged ones to C(quarantine/), so no backup ever names a chunk the crash lost.
      - V(file) flushes every chunk file and its folder before publishing it, and costs more CPU and waiting per
        chunk. Use it where C(syncfs) does not reach the storage (some FUSE file systems).
    type: str
    choices: [filesystem, file]
    default: filesystem
notes:
  - A wrong password or key file fails the task with a one-line message and leaves the repository untouched.
  - All modules of the C(vmcrypt.backup.repository) action group accept these options, so a play can set
    them once under C(module_defaults).
requirements:
  - cryptography >= 41.0
  - zstandard >= 0.22
"""
