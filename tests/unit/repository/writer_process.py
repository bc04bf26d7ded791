"""A backup writer run as a separate process by the crash and concurrency tests.

usage: writer_process.py COLLECTIONS REPO PASSWORD VM_NAME SEED BLOCKS [BASE]
Prints "staged <id>" after start, "progress" after the first disk blocks, then
"committed <id>" at the end.  Disk data is derived from SEED so the parent can
rebuild it.

Environment: VMCRYPT_TEST_CLOCK_SKEW=<seconds> makes this host's clock
(``time.time``) that much behind; VMCRYPT_TEST_PAUSE=1 makes the writer wait
for a line on stdin after "progress".
"""
import os
import random
import sys
import time

CHUNK = 4096


def disk_data(seed, blocks):
    rng = random.Random(seed)
    return b"".join(rng.getrandbits(8 * CHUNK).to_bytes(CHUNK, "little") if rng.random() < 0.8 else bytes(CHUNK)
                    for _index in range(blocks))


def main():
    collections, path, password, vm_name, seed, blocks = sys.argv[1:7]
    skew = float(os.environ.get("VMCRYPT_TEST_CLOCK_SKEW", "0"))
    if skew:
        real_time = time.time
        time.time = lambda: real_time() - skew  # this host's clock is behind
    sys.path.insert(0, collections)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
    blocks = int(blocks)
    repo = Repository.open(path, Credential.from_password(password))
    staged = repo.start_backup({"name": vm_name, "uuid": "uuid-" + vm_name})
    print("staged", staged.backup_id, flush=True)
    staged.put_metadata({"key_id": {"key_id": "k-" + vm_name}}, secrets={"encryption.bundle": "bundle-" + vm_name})
    staged.put_nvram(b"nvram-" + vm_name.encode())
    data = disk_data(int(seed), blocks)
    with staged.open_disk("2000", len(data)) as writer:
        for number in range(blocks):
            writer.write(number * CHUNK, data[number * CHUNK:(number + 1) * CHUNK])
            if number == 10:
                print("progress", flush=True)
                if os.environ.get("VMCRYPT_TEST_PAUSE"):
                    sys.stdin.readline()
        writer.set_change_id("52 %s/%d" % (vm_name, blocks))
    item = staged.commit()
    print("committed", item.backup_id, flush=True)


if __name__ == "__main__":
    main()
