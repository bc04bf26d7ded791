"""Benchmark: where the time of an export and an import goes, stage by stage, on one image.

    .venv/bin/python bench/stage_bench.py --image IMAGE [--threads 1,2] [--json FILE]

Each stage of the pipeline runs alone over the image's allocated 4 MiB chunks
(the chunks ``disk_export`` reads: SEEK_DATA/SEEK_HOLE, as the VDDK double's
QueryAllocatedBlocks), with the repository's own functions, so a reader sees
which stage bounds each figure of ``disk_transfer_bench.py``:

export: ``read`` (pread of a chunk into a new buffer, page cache warm: what
the VDDK double costs before any network), ``hash`` (HMAC-SHA256 chunk id),
``compress`` (zstd level 1, the repository's level), ``encrypt`` (AES-256-GCM
with a per-file HKDF key: ``envelope.seal`` minus compression), ``write
direct`` (the chunk file written as the repository writes it on ext4, XFS
and Btrfs: ``direct_io.write_to``, past the page cache, kept until the end),
``write`` (a chunk file written through the page cache and removed after
the import stages read it, so its pages are reused warm: cheaper than the
fresh pages a real export's page-cache writes need) and ``fsync`` (a flush
per chunk file, ``repository_sync: file``);
import: ``file read`` (the chunk files), ``decrypt`` (AES-GCM), ``decompress``
(zstd), ``hash`` again (the id check), ``write`` (pwrite into a target file).

Each stage is timed single-threaded (CPU seconds of this process and wall time)
and, for the CPU stages, across ``--threads`` workers.  Beside them the floor
of the issue: ``zstd -1 -T<cpus> | openssl enc -aes-256-ctr`` over the same
allocated bytes (a file holding only them, made once next to the image), the
cost of compressing and encrypting alone on this machine.
"""
import argparse
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
COLLECTIONS = os.path.join(REPO_ROOT, ".build", "collections")
MIB = 1 << 20
CHUNK = 4 * MIB


def allocated_extents(path):
    """[(offset, length)] of the data runs of a sparse file."""
    extents, position = [], 0
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        while position < size:
            try:
                data = os.lseek(fd, position, os.SEEK_DATA)
            except OSError:
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            extents.append((data, hole - data))
            position = hole
    finally:
        os.close(fd)
    return extents


def allocated_chunks(path, chunk=CHUNK):
    """Sorted offsets of the chunks any data run touches."""
    touched = set()
    for offset, length in allocated_extents(path):
        touched.update(range(offset // chunk, (offset + length - 1) // chunk + 1))
    return [number * chunk for number in sorted(touched)]


def allocated_copy(image, target):
    """A file holding only the image's allocated bytes (for the zstd | openssl floor); made once."""
    stamp = "%d-%d" % (os.path.getsize(image), int(os.path.getmtime(image)))
    if os.path.exists(target) and open(target + ".stamp").read() == stamp:
        return target
    with open(image, "rb") as source, open(target, "wb") as out:
        for offset, length in allocated_extents(image):
            source.seek(offset)
            while length:
                data = source.read(min(length, 16 * MIB))
                out.write(data)
                length -= len(data)
    with open(target + ".stamp", "w") as handle:
        handle.write(stamp)
    return target


def floor_command(cpus):
    """The floor as a ``sh -c`` script whose ``$0`` is the file of allocated bytes (output dropped)."""
    return 'zstd -q -1 -T%d -c "$0" | openssl enc -aes-256-ctr -pbkdf2 -pass pass:bench-floor > /dev/null' % cpus


def floor(allocated_file, cpus):
    """(wall seconds, command) of ``zstd -1 -T<cpus> | openssl enc -aes-256-ctr`` over the allocated bytes."""
    command = floor_command(cpus)
    subprocess.run(["cat", allocated_file], stdout=subprocess.DEVNULL, check=True)  # page cache warm
    started = time.perf_counter()
    subprocess.run(["sh", "-c", command, allocated_file], check=True)
    return time.perf_counter() - started, command.replace('"$0"', allocated_file)


class Timer:
    def __init__(self):
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *_exc):
        self.wall += time.perf_counter() - self._wall
        self.cpu += time.process_time() - self._cpu


def stages(image, threads, workdir):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import direct_io, envelope

    offsets = allocated_chunks(image)
    key = os.urandom(32)
    encryption_key = os.urandom(32)

    class Keys:  # envelope's view of DataKeys: a per-file AES-GCM from HKDF
        def file_aead(self, salt):
            from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import hkdf_sha256, FILE_KEY_INFO
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            return AESGCM(hkdf_sha256(encryption_key, salt, FILE_KEY_INFO))
    keys = Keys()
    chunk_dir = os.path.join(workdir, "chunks")
    direct_dir = os.path.join(workdir, "chunks-direct")
    os.makedirs(chunk_dir, exist_ok=True)
    os.makedirs(direct_dir, exist_ok=True)
    direct_dir_fd = os.open(direct_dir, os.O_RDONLY)
    target = os.path.join(workdir, "target.img")
    with open(target, "wb") as handle:
        handle.truncate(os.path.getsize(image))
    timers = dict((name, Timer()) for name in (
        "export: read", "export: hash", "export: compress", "export: encrypt",
        "export: write chunk file, direct (the repository's way)", "export: write chunk file, page cache",
        "export: fsync chunk file", "import: read chunk file", "import: decrypt", "import: decompress",
        "import: hash", "import: write target"))
    nbytes = dict.fromkeys(timers, 0)
    source = os.open(image, os.O_RDONLY)
    out = os.open(target, os.O_WRONLY)
    try:
        for number, offset in enumerate(offsets):
            with timers["export: read"]:  # as the VDDK endpoint: a new buffer per chunk, handed on as it is
                buffer = bytearray(CHUNK)
                got = os.preadv(source, [buffer], offset)
                data = buffer if got == CHUNK else buffer[:got]
            nbytes["export: read"] += got
            with timers["export: hash"]:
                hmac.new(key, data, hashlib.sha256).digest()
            nbytes["export: hash"] += got
            with timers["export: compress"]:
                payload, flags = envelope.compress_if_it_pays(data)
            nbytes["export: compress"] += got
            with timers["export: encrypt"]:
                sealed = envelope.seal(keys, envelope.MAGIC_CHUNK, b"c" * 32, payload, compress=False)
            nbytes["export: encrypt"] += len(payload)
            with timers["export: write chunk file, direct (the repository's way)"]:
                leaf = "%06d" % number
                fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=direct_dir_fd)
                small = len(sealed) < direct_io.MIN_SIZE
                if small or not direct_io.write_to(fd, sealed):
                    os.write(fd, sealed)  # what the repository does with small files, or where O_DIRECT is refused
                os.close(fd)
            nbytes["export: write chunk file, direct (the repository's way)"] += len(sealed)
            name = os.path.join(chunk_dir, "%06d" % number)
            with timers["export: write chunk file, page cache"]:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                os.write(fd, sealed)
            nbytes["export: write chunk file, page cache"] += len(sealed)
            with timers["export: fsync chunk file"]:
                os.fsync(fd)
                os.close(fd)
            nbytes["export: fsync chunk file"] += len(sealed)
            with timers["import: read chunk file"]:
                with open(name, "rb") as handle:
                    blob = handle.read()
            nbytes["import: read chunk file"] += len(blob)
            with timers["import: decrypt"]:
                plain = keys.file_aead(blob[8:24]).decrypt(blob[24:36], blob[36:], blob[:8] + b"c" * 32)
            nbytes["import: decrypt"] += len(plain)
            with timers["import: decompress"]:
                if flags & envelope.FLAG_ZSTD:
                    plain = envelope._decompressor().decompress(plain, max_output_size=CHUNK)
            nbytes["import: decompress"] += len(plain)
            with timers["import: hash"]:
                hmac.new(key, plain, hashlib.sha256).digest()
            nbytes["import: hash"] += len(plain)
            with timers["import: write target"]:
                os.pwrite(out, plain, offset)
            nbytes["import: write target"] += len(plain)
            os.unlink(name)
    finally:
        os.close(source)
        os.close(out)
        os.close(direct_dir_fd)
        os.unlink(target)
        shutil.rmtree(direct_dir, ignore_errors=True)
    rows = []
    for name, timer in timers.items():
        rows.append({"stage": name, "threads": 1, "bytes": nbytes[name], "wall_s": round(timer.wall, 3),
                     "cpu_s": round(timer.cpu, 3), "mib_per_s": round(nbytes[name] / MIB / timer.wall, 1)})
    # the CPU stages across threads: all of them release the GIL
    sample = []
    with open(image, "rb") as handle:
        for offset in offsets[::max(1, len(offsets) // 128)][:128]:
            handle.seek(offset)
            sample.append(handle.read(CHUNK))
    sealed_sample = [envelope.seal(keys, envelope.MAGIC_CHUNK, b"c" * 32, data) for data in sample]
    work = {
        "hash": lambda data: hmac.new(key, data, hashlib.sha256).digest(),
        "compress + encrypt (seal)": lambda data: envelope.seal(keys, envelope.MAGIC_CHUNK, b"c" * 32, data),
        "decrypt + decompress (open)": lambda blob: envelope.open_sealed(
            keys, envelope.MAGIC_CHUNK, b"c" * 32, blob, "chunk", max_size=CHUNK),
    }
    sample_bytes = sum(len(data) for data in sample)
    for count in threads:
        for name, function in work.items():
            items = sealed_sample if name.startswith("decrypt") else sample
            with ThreadPoolExecutor(count) as pool:
                started = time.perf_counter()
                list(pool.map(function, items * 2))
                wall = time.perf_counter() - started
            rows.append({"stage": "sample: " + name, "threads": count, "bytes": 2 * sample_bytes,
                         "wall_s": round(wall, 3), "cpu_s": None,
                         "mib_per_s": round(2 * sample_bytes / MIB / wall, 1)})
    return rows, len(offsets)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="a sparse disk image")
    parser.add_argument("--threads", default="1,%d" % (os.cpu_count() or 1), help="worker counts for the CPU stages")
    parser.add_argument("--workdir", help="where chunk files and the target go (default: a temp dir)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    workdir = tempfile.mkdtemp(prefix="vmcrypt-stage-bench-", dir=args.workdir)
    try:
        allocated_file = allocated_copy(args.image, args.image + ".allocated")
        allocated = os.path.getsize(allocated_file)
        floor_s, floor_command = floor(allocated_file, cpus)
        rows, chunks = stages(args.image, [int(value) for value in args.threads.split(",")], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print("image %s: %d allocated MiB in %d chunks of 4 MiB" % (args.image, allocated // MIB, chunks))
    print("floor: %.2f s, %.1f MiB/s of allocated bytes: %s" % (floor_s, allocated / MIB / floor_s, floor_command))
    print("| stage | threads | MiB | wall s | CPU s | MiB/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        cpu = "-" if row["cpu_s"] is None else "%.2f" % row["cpu_s"]
        print("| %s | %d | %.0f | %.2f | %s | %.1f |"
              % (row["stage"], row["threads"], row["bytes"] / MIB, row["wall_s"], cpu, row["mib_per_s"]))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"image": args.image, "allocated_bytes": allocated, "chunks": chunks, "floor_seconds": floor_s,
                       "floor_command": floor_command, "stages": rows, "cpus": cpus,
                       "load": open("/proc/loadavg").read().split()[:3]}, handle, indent=1)


if __name__ == "__main__":
    main()
