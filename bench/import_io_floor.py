"""The disk work of a restore alone: the chunk files read past the page cache while the target is written.

    .venv/bin/python bench/import_io_floor.py REPOSITORY ALLOCATED_FILE TARGET [--threads 4]

disk_import reads a repository's chunk files (direct, cold) and writes the
target disk (the VDDK double: direct) on the same disk here.  This does both
at once with no decoding: ``dd oflag=direct`` of the image's allocated bytes
into the target while threads read every chunk file with the repository's
own direct reads (``direct_io.read_from``).  Its time is the floor of the
import on this machine's disk; disk_transfer_bench.py times it as a step.
"""
import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build", "collections")


def read_all(root, threads):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import direct_io

    names = [os.path.join(folder, name) for folder, _dirs, files in os.walk(root) for name in files]

    def read(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            blob = direct_io.read_from(fd, os.fstat(fd).st_size)
            if blob is None:  # a file system without direct I/O: as the repository would
                blob = os.read(fd, os.fstat(fd).st_size + 1)
            return len(blob)
        finally:
            os.close(fd)
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return sum(pool.map(read, names))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("repository")
    parser.add_argument("allocated_file")
    parser.add_argument("target")
    parser.add_argument("--threads", type=int, default=4, help="reading threads (default 4, as disk_import here)")
    args = parser.parse_args()
    writer = subprocess.Popen(["dd", "if=" + args.allocated_file, "of=" + args.target, "bs=4M", "oflag=direct",
                               "conv=notrunc", "status=none"])
    read = read_all(os.path.join(args.repository, "chunks"), args.threads)
    if writer.wait() != 0:
        raise SystemExit("dd failed")
    print("read %d bytes of chunk files while writing %s" % (read, args.allocated_file))


if __name__ == "__main__":
    main()
