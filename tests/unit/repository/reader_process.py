"""A restore run as a separate process: what disk_import does, into a slow in-memory target.

usage: reader_process.py COLLECTIONS REPO PASSWORD BACKUP_ID DISK_KEY
Prints "progress" after the third block written, waits for a line on stdin,
then prints "restored <sha256 of the target>".
"""
import hashlib
import sys


class SlowTarget(object):
    def __init__(self, capacity):
        self.data = bytearray(capacity)
        self.writes = 0

    def write(self, offset, data):
        self.data[offset:offset + len(data)] = data
        self.writes += 1
        if self.writes == 3:
            print("progress", flush=True)
            sys.stdin.readline()

    def close(self):
        pass


def main():
    collections, path, password, backup_id, key = sys.argv[1:6]
    sys.path.insert(0, collections)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
    from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.restore import import_disk
    repo = Repository.open(path, Credential.from_password(password))
    target = SlowTarget(repo.read_manifest(backup_id).disk_index(key).capacity)
    with repo.reading("restore backup %s" % backup_id):  # as DiskImportJob.run does
        import_disk(lambda: target, repo, backup_id, key, threads=1)
    print("restored", hashlib.sha256(bytes(target.data)).hexdigest(), flush=True)


if __name__ == "__main__":
    main()
