"""Helpers for the repository tests: small, fast repositories (4 KiB chunks, cheap scrypt)."""
import os

CHUNK = 4096
FAST_SCRYPT = {"n": 1024, "r": 8, "p": 1}
PASSWORD = "correct horse battery staple"


def blocks_of(data, chunk=CHUNK):
    return [(offset, data[offset:offset + chunk]) for offset in range(0, len(data), chunk)]


def backup(repo, vm, disks, metadata=None, secrets=None, nvram=None, base=None, change_ids=None):
    """Stage and commit one backup of ``disks`` ({key: bytes}); returns the Manifest."""
    staged = repo.start_backup(vm, base_backup_id=base)
    if metadata is not None:
        staged.put_metadata(metadata, secrets=secrets)
    if nvram is not None:
        staged.put_nvram(nvram)
    for key, data in disks.items():
        with staged.open_disk(key, len(data), base_backup_id=base) as writer:
            writer.write_blocks(blocks_of(data), threads=2)
            writer.set_change_id((change_ids or {}).get(key))
    return staged.commit()


def read_back(repo, backup_id, key):
    return b"".join(data for _offset, data in repo.read_disk(backup_id, key))


def files_of(root):
    """{relative path: (size, mtime_ns, bytes)} of every file below root."""
    result = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                result[os.path.relpath(path, root)] = (os.stat(path).st_mtime_ns, handle.read())
    return result
