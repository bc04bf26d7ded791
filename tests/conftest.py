"""Make the collection importable as ansible_collections.vmcrypt.backup.

`make collection` links the checkout into .build/collections; unit tests
import module_utils through that path, exactly as Ansible ships them.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, ".build", "collections")
if not os.path.isdir(os.path.join(COLLECTIONS_PATH, "ansible_collections", "vmcrypt", "backup")):
    raise RuntimeError("run `make collection` first: %s is missing" % COLLECTIONS_PATH)
sys.path.insert(0, COLLECTIONS_PATH)
