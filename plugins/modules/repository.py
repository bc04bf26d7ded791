#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: repository
short_description: Create or open the encrypted backup repository and manage its key slots
version_added: 0.1.0
description:
  - Creates an encrypted, deduplicating backup repository in an empty or absent directory, or opens an
    existing one, and reports its format version, chunk size, key slots, size and backup count.
  - Data is encrypted with random data keys (AES-256-GCM); each key slot wraps them with a key derived from a
    password (scrypt) or from a key file (HKDF-SHA256). Adding or removing a slot never re-encrypts data.
  - Idempotent. Creating an existing repository opens it; adding a slot that the given credential already
    opens changes nothing; removing an absent slot changes nothing.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.repository
options:
  state:
    description:
      - V(present) creates the repository when it does not exist, then reports it.
      - V(opened) requires an existing repository and only reports it (and changes key slots if asked).
    type: str
    choices: [present, opened]
    default: present
  chunk_size:
    description:
      - Size of the fixed, disk-aligned chunks of a new repository, a power of two from V(4KiB) to V(64MiB).
      - Accepts bytes or a number with a binary unit (V(4MiB), V(512KiB)).
      - Fixed at creation; giving a different size for an existing repository fails. Defaults to V(4MiB).
    type: str
  add_key_slot:
    description:
      - Add a key slot that opens the repository with another password or key file.
      - The repository is opened with O(repository_password) or O(repository_key_file) first.
    type: dict
    suboptions:
      password:
        description: Password of the new slot. Mutually exclusive with O(add_key_slot.key_file).
        type: str
      key_file:
        description: Key file of the new slot (16 bytes to 1 MiB). Mutually exclusive with O(add_key_slot.password).
        type: path
      label:
        description: A one-line label to tell slots apart (for example the team or site holding the key).
        type: str
        default: ""
  remove_key_slot:
    description:
      - Id or unique label of a key slot to remove. The last slot cannot be removed.
      - Runs after O(add_key_slot), so one task can rotate a password.
    type: str
notes:
  - Supports check mode; a repository that does not exist yet is reported as it would be created.
attributes:
  check_mode:
    description:
      - Can run in check mode and report whether the repository would be created and which key slot
        would be added or removed, without writing anything.
    support: full
"""

EXAMPLES = r"""
- name: Create the repository (password from VMCRYPT_REPOSITORY_PASSWORD)
  vmcrypt.backup.repository:
    repository: /backups/repo
    chunk_size: 4MiB

- name: Add a recovery key file slot for the DR site
  vmcrypt.backup.repository:
    repository: /backups/repo
    add_key_slot:
      key_file: /etc/vmcrypt/dr.key
      label: dr-site

- name: Rotate the password
  vmcrypt.backup.repository:
    repository: /backups/repo
    state: opened
    repository_password: "{{ old_repository_password }}"
    add_key_slot:
      password: "{{ new_repository_password }}"
      label: ops-2026
    remove_key_slot: ops-2025
"""

RETURN = r"""
created:
  description: Whether the repository was (or in check mode would be) created by this task.
  returned: always
  type: bool
key_slot_added:
  description: Id of the slot added (or C(would-add) in check mode); null when none was added.
  returned: always
  type: str
  sample: 3fa2c1d0
key_slot_removed:
  description: Id of the slot removed; null when none was removed.
  returned: always
  type: str
repository:
  description:
    - Facts about the repository. Nothing secret.
    - When check mode would create the repository, what only the creation decides is null.
  returned: always
  type: dict
  contains:
    location:
      description: Absolute path of the repository.
      type: str
    repository_id:
      description: Random id of the repository; null when check mode would create it.
      type: str
    created:
      description: When the repository was created (UTC, ISO 8601); null when check mode would create it.
      type: str
    format_version:
      description: Repository format version.
      type: int
      sample: 2
    chunk_size:
      description: Chunk size in bytes.
      type: int
      sample: 4194304
    cipher:
      description: Data cipher; null when check mode would create the repository.
      type: str
      sample: AES-256-GCM
    chunk_id:
      description: How chunk ids are computed (keyed hash of the cleartext); null when check mode would create the
        repository.
      type: str
      sample: HMAC-SHA256
    compression:
      description: Chunk compression; null when check mode would create the repository.
      type: str
      sample: zstd
    key_slots:
      description: Key slots; empty when check mode would create the repository.
      type: list
      elements: dict
      contains:
        id:
          description: Slot id.
          type: str
        kind:
          description: V(password) or V(key_file).
          type: str
        label:
          description: Label given when the slot was added.
          type: str
        created:
          description: When the slot was added (UTC, ISO 8601).
          type: str
        kdf:
          description: Key derivation parameters (C(name), C(n), C(r), C(p)), without the salt.
          type: dict
    opened_with_slot:
      description: Id of the slot the credential opened; null when check mode would create the repository.
      type: str
    size_bytes:
      description: Bytes used by the repository; null when check mode would create the repository.
      type: int
    chunk_count:
      description: Number of stored chunks; null when check mode would create the repository.
      type: int
    chunk_bytes:
      description: Bytes used by the stored chunks; null when check mode would create the repository.
      type: int
    backup_count:
      description: Number of committed backups; null when check mode would create the repository.
      type: int
    staged_count:
      description: Number of staged (uncommitted) backups; null when check mode would create the repository.
      type: int
    quarantined_count:
      description: Number of chunks set aside in quarantine; null when check mode would create the repository.
      type: int
error_type:
  description:
    - On failure, the name of the error's class, for example C(RepositoryNotFoundError), C(WrongKeyError),
      C(KeySlotError).
  returned: failure
  type: str
  sample: WrongKeyError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import credential_from_params
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.lifecycle import STATES, ensure_repository
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import parse_size


def _slot_credential(spec):
    if not spec:
        return None
    if spec["key_file"]:
        return Credential.from_key_file(spec["key_file"])
    return Credential.from_password(spec["password"])


def run(module):
    params = module.params
    new_slot = params["add_key_slot"]
    return ensure_repository(
        params["repository"], credential_from_params(params), state=params["state"],
        chunk_size=None if params["chunk_size"] is None else parse_size(params["chunk_size"]),
        add_slot=_slot_credential(new_slot), add_slot_label=new_slot["label"] if new_slot else "",
        remove_slot=params["remove_key_slot"], dry_run=module.check_mode, warn=module.warn)


def main():
    run_module(run, groups=("repository",), options=dict(
        state=dict(type="str", choices=list(STATES), default="present"),
        chunk_size=dict(type="str"),
        add_key_slot=dict(type="dict", no_log=False, options=dict(
            password=dict(type="str", no_log=True),
            key_file=dict(type="path", no_log=False),
            label=dict(type="str", default=""),
        ), mutually_exclusive=[("password", "key_file")], required_one_of=[("password", "key_file")]),
        remove_key_slot=dict(type="str", no_log=False),
    ))


if __name__ == "__main__":
    main()
