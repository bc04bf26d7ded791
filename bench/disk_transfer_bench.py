"""Benchmark: disk_export and disk_import through the VDDK test double, beside restic.

    make bench-disk-transfer                    # both images of 8 GiB, 64 GiB sparse disk, 3 runs
    .venv/bin/python bench/disk_transfer_bench.py --size-gib 8 --sparse-gib 64 --repeat 3 --images fs,synthetic

Two images, each measured with every step below, side by side in the same run:

- ``fs``: a real file system, ``mkfs.ext4 -d <tree>`` of a tree of real files
  (``--fs-tree``, default /usr: an operating system's programs, libraries and
  data), sized by ``--size-gib``; built once and cached in
  .build/bench-images/ (outside git), rebuilt when the tree's size changes;
- ``synthetic``: the generated mix of incompressible data, log-like text and holes.

What runs is the product path: DiskExportJob / DiskImportJob
(plugins/module_utils/disk_export_job.py, disk_import_job.py) with the
default ExportOptions / ImportOptions (transports ["nbdssl"]), talking to our
own vCenter simulator (tests/integration/vcsim.py) through pyVmomi and to the
VDDK test double (tests/vddk_double, loaded through VMCRYPT_VDDK_LIBDIR) which
serves the simulator's flat files.  The VMs are built by
tests/integration/estate.py's EstateBuilder: encrypted VM home and encrypted
disk 2000 (so the transport rules and ``encrypted`` flags are those of the
product's main case), CBT enabled on the source VMs.

The synthetic image (bench/repository_bench.py ``make_image``: 30% incompressible,
30% log-like text, 40% holes, by 64 MiB region) is written straight into the
source VM's ``-flat.vmdk``; the fs image is copied there (sparse).  Each run,
into fresh repositories:

1. ``cat`` of the flat file to /dev/null (page cache warm): the raw read ceiling,
   reported as allocated bytes / time; then the floor of a pipeline that must
   compress and encrypt, ``zstd -1 -T<cpus> | openssl enc -aes-256-ctr`` over
   a file of the image's allocated bytes; and two write floors of an import:
   ``cp --sparse=always`` of the image into the emptied target disk (through
   the page cache) and ``dd oflag=direct`` of the allocated bytes into it (the
   way the VDDK double writes by default: ESXi's VMFS has no host page cache);
2. vmcrypt full export (disk_export: CBT "*" -> allocated chunks only), then
   the same into another fresh repository with ``repository_sync: file`` (an
   ``fsync`` per chunk file instead of one ``syncfs`` at the end);
3. restic ``backup --stdin`` of the same file (repository version 2, compression auto);
4. the import's disk work alone (bench/import_io_floor.py: our chunk files read
   direct while ``dd oflag=direct`` writes the allocated bytes into the target),
   then the vmcrypt import (disk_import of the full backup into another encrypted VM's
   disk, its flat file emptied first), then the same import again with the
   double told ``write_cache=buffered``: through this machine's page cache,
   as restic writes;
5. restic ``restore latest --target DIR`` (restic 0.14 has no ``--sparse``: it
   writes every byte of the file, holes as zeros); before every restore, ours
   and restic's, the repository's files are dropped from the page cache
   (``posix_fadvise DONTNEED``): a restore reads a repository written long before;
   restic returns with its bytes still dirty in the page cache, so the time to
   ``fsync`` its file is also taken, and added to its restore as a second
   figure: the import's bytes are on the disk when it returns;
5b. vmcrypt export with nothing changed since the full backup (CBT reports no
   change): the fixed cost every export pays before it reads a byte; 5c. the
   same with a repository key file instead of the password (HKDF instead of
   scrypt), to show what deriving the password's key costs each run;
6. 1% of the disk changed in areas spread evenly over it (the old bytes saved
   and put back after the run), a new snapshot, vmcrypt incremental export;
7. a 64 GiB sparse disk (a little data, the rest holes): export and import, for memory.

Where the time of each stage goes (read, hash, compress, encrypt, chunk file
write and fsync; chunk read, decrypt, decompress, hash, target write) comes
from bench/stage_bench.py over the same image, once per image, unless
``--no-stages``.

Each measured step is a child process (our jobs: bench/disk_job.py, which
imports only what a module run does; wall time and peak RSS from wait4 via
repository_bench._measure with ``isolate_rss``: started by a small spawner, so
the figure is not inflated by this large parent; dirty pages flushed first, untimed).  The backup
snapshot is created before the step and removed after it, untimed: in the
simulator, CreateSnapshot hashes the whole flat file for its CBT emulation,
which is not a cost of our pipeline.  Everything else is in the step: Python
start, imports, vCenter login, VM facts, CBT query, VDDK connect/open, the
transfer, the repository commit.
"""
import argparse
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))

from repository_bench import (  # noqa: E402  (bench helpers: image, measurement, restic)
    COLLECTIONS, MIB, PASSWORD, REGION, _dir_size, _measure, make_image, restic_backup_command, restic_env,
    restic_init)
from images import copy_sparse, fs_image  # noqa: E402
from stage_bench import allocated_copy, allocated_extents, floor_command, stages  # noqa: E402

GIB = 1 << 30
# The image: 30% incompressible, 30% compressible text, 40% holes.
IMAGE_MIX = (("random", 0.30), ("text", 0.30), ("hole", 0.40))
# The sparse disk for memory: 1/256 random, 1/256 text (512 MiB of data in 64 GiB), the rest holes.
SPARSE_MIX = (("random", 1 / 256.0), ("text", 1 / 256.0), ("hole", 1 - 2 / 256.0))
DISK_KEY = "2000"
SOURCE, TARGET = "bench-src", "bench-dst"
SPARSE_SOURCE, SPARSE_TARGET = "bench-sparse-src", "bench-sparse-dst"
STEPS = (
    ("cat", "cat of the image (ceiling)"),
    ("floor", "zstd -1 -T<cpus> | openssl enc -aes-256-ctr (floor)"),
    ("write_floor", "cp --sparse=always into the target (write floor)"),
    ("write_floor_direct", "dd oflag=direct into the target (direct write floor)"),
    ("export_full", "vmcrypt disk_export, full"),
    ("export_full_file_sync", "vmcrypt disk_export, full, repository_sync file"),
    ("restic_backup", "restic backup --stdin"),
    ("io_floor_import", "import I/O floor: chunk files read direct + dd oflag=direct, at once"),
    ("import", "vmcrypt disk_import"),
    ("import_buffered", "vmcrypt disk_import, page-cache writes"),
    ("restic_restore", "restic restore"),
    ("restic_restore_durable", "restic restore, then its file fsync'd"),
    ("export_unchanged", "vmcrypt disk_export, nothing changed"),
    ("export_unchanged_key_file", "vmcrypt disk_export, nothing changed, key file"),
    ("export_incremental", "vmcrypt disk_export, incremental 1%"),
    ("export_incremental_key_file", "vmcrypt disk_export, incremental 1%, key file"),
    ("sparse_export", "vmcrypt disk_export, sparse disk"),
    ("sparse_import", "vmcrypt disk_import, sparse disk"),
)
# The steps that are our jobs (Bench.job): their CPU seconds come from Bench.last_cpu.
JOB_STEPS = frozenset(key for key, _label in STEPS if key.startswith(("export", "import", "sparse")))


# -- the simulated estate ----------------------------------------------------------------
class Bench(object):
    def __init__(self, workdir, size, sparse_size):
        import estate
        from vcsim import Vcsim
        from vddk_double_config import DOUBLE_LIB, DOUBLE_LIBDIR, Double

        if not os.path.exists(DOUBLE_LIB):
            raise SystemExit("%s is missing: run `make vddk-double`" % DOUBLE_LIB)
        self.workdir = workdir
        self.libdir = DOUBLE_LIBDIR
        self.last_cpu = {}  # CPU seconds of the last job (user_s, system_s)
        self.vcsim = Vcsim(hosts_per_cluster=1, vms_per_pool=0, datastore_dir=os.path.join(workdir, "datastores"))
        os.makedirs(self.vcsim.datastore_dir, exist_ok=True)
        self.vcsim.start()
        self.si = self.vcsim.connect()
        builder = estate.EstateBuilder(self.si)
        builder.register_key_provider()
        self.vms = {}
        self.objects = {}
        # EstateBuilder.create_vm sizes its disks from estate.DISK_SIZES_KB: the
        # bench's capacities go in there (CreateVM writes the descriptor's
        # "RW <sectors>" line from it; a later ReconfigVM would not).
        saved = estate.DISK_SIZES_KB
        try:
            for name, capacity in ((SOURCE, size), (TARGET, size), (SPARSE_SOURCE, sparse_size),
                                   (SPARSE_TARGET, sparse_size)):
                estate.DISK_SIZES_KB = (capacity // 1024, 1024)
                self.vms[name] = builder.build_vm(name, encrypt=True)
                self.objects[name] = self.si.content.searchIndex.FindChild(builder.vm_folder, name)
        finally:
            estate.DISK_SIZES_KB = saved
        from pyVmomi import vim
        self.vim = vim
        self.wait = estate.wait_for_task
        for name in (SOURCE, SPARSE_SOURCE):
            self.wait(self.objects[name].ReconfigVM_Task(spec=vim.vm.ConfigSpec(changeTrackingEnabled=True)))
        self.double = Double(self.vcsim, {"vms": self.vms}, pathlib.Path(workdir))
        self.double.snapshots = ["*"]
        self.double.settings["log"] = ""  # no call log: one JSON line per read is test tooling, not VDDK
        self.double.write()
        # VDDK (and the double) load their companion libraries by bare name: lib64 on the loader's path
        # from the start, as the modules arrange by respawning themselves.
        self.env = dict(os.environ, VMCRYPT_VDDK_DOUBLE_CONFIG=self.double.config_path,
                        VMCRYPT_VDDK_LIBDIR=self.libdir,
                        LD_LIBRARY_PATH=os.pathsep.join(filter(None, [os.path.join(self.libdir, "lib64"),
                                                                      os.environ.get("LD_LIBRARY_PATH")])))

    def flat_file(self, name):
        disk = [d for d in self.vms[name]["disks"] if str(d["key"]) == DISK_KEY][0]
        datastore, relative = disk["file"][1:].split("] ", 1)
        return os.path.join(self.vcsim.datastores[datastore], relative[:-len(".vmdk")] + "-flat.vmdk")

    def snapshot(self, name):
        return self.wait(self.objects[name].CreateSnapshot_Task(name="bench", description="", memory=False,
                                                                quiesce=False))

    def remove(self, snapshot):
        self.wait(snapshot.RemoveSnapshot_Task(removeChildren=True))

    def job(self, kind, name, repository, snapshot=None, backup_id=None, key_file=None, sync=None):
        spec = {"kind": kind, "vm": self.vms[name]["moid"], "repository": repository, "host": self.vcsim.host,
                "port": self.vcsim.port, "username": self.vcsim.username, "password": self.vcsim.password,
                "repository_password": PASSWORD, "disk": DISK_KEY, "libdir": self.libdir, "snapshot": snapshot,
                "backup_id": backup_id, "key_file": key_file, "sync": sync}
        # the spec holds vCenter's password: the environment, not the command line, carries it
        self.last_cpu = {}
        wall, rss, out = _measure([sys.executable, os.path.join(HERE, "disk_job.py")],
                                  env=dict(self.env, VMCRYPT_BENCH_JOB=json.dumps(spec)), isolate_rss=True,
                                  cpu=self.last_cpu)
        return wall, rss, json.loads(out.strip().splitlines()[-1])

    def export(self, name, repository, key_file=None, sync=None):
        snapshot = self.snapshot(name)
        try:
            return self.job("export", name, repository, snapshot=snapshot._moId, key_file=key_file, sync=sync)
        finally:
            self.remove(snapshot)

    def close(self):
        from pyVim.connect import Disconnect
        Disconnect(self.si)
        self.vcsim.stop()


def allocated_bytes(path):
    """Bytes in data extents of a sparse file (SEEK_DATA / SEEK_HOLE)."""
    return sum(length for _offset, length in allocated_extents(path))


def change_areas(path, size, share, area):
    """Overwrite ``share`` of the file in ``area``-byte areas spread evenly; returns what to put back."""
    count = max(1, int(size * share) // area)
    stride = size // count
    saved = []
    with open(path, "r+b") as handle:
        for number in range(count):
            offset = number * stride + (stride - area) // 2  # mid-stride: not chunk aligned on purpose
            offset -= offset % 4096
            handle.seek(offset)
            saved.append((offset, handle.read(area)))
            handle.seek(offset)
            handle.write(os.urandom(area))
    return saved, count


def _punch_hole(fd, offset, length):
    """Deallocate a range (fallocate PUNCH_HOLE | KEEP_SIZE): what was a hole is a hole again."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if libc.fallocate(fd, 0x02 | 0x01, offset, length) != 0:
        raise OSError(ctypes.get_errno(), "fallocate(PUNCH_HOLE) failed")


def put_back(path, saved, size):
    """Restore the image as generated: the old bytes, and holes where there were holes (all-zero areas)."""
    with open(path, "r+b") as handle:
        for offset, data in saved:
            if data.count(0) == len(data):
                handle.flush()
                _punch_hole(handle.fileno(), offset, len(data))
            else:
                handle.seek(offset)
                handle.write(data)
    os.truncate(path, size)


def evict(*roots):
    """Drop every file below ``roots`` from the page cache: a restore reads a repository written days before."""
    os.sync()  # dirty pages are not dropped
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                fd = os.open(os.path.join(folder, name), os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)


def durable(root):
    """Seconds to fsync every file below ``root``: what a restore left dirty in the page cache."""
    started = time.perf_counter()
    for folder, _dirs, names in os.walk(root):
        for name in names:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    return time.perf_counter() - started


def empty_disk(path, size):
    os.truncate(path, 0)
    os.truncate(path, size)


CHUNK_SIZE = None  # --chunk-size: the repository's chunk size (None: the library default, 4 MiB)


def _fresh_repository(path):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import (
        DEFAULT_CHUNK_SIZE,
        Repository,
    )
    shutil.rmtree(path, ignore_errors=True)
    Repository.create(path, Credential.from_password(PASSWORD), chunk_size=CHUNK_SIZE or DEFAULT_CHUNK_SIZE)


def _key_file_slot(repository, work):
    """A key file (random bytes, 0600) in ``work``, given a key slot of ``repository``; returns its path."""
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository
    path = os.path.join(work, "repository.key")
    if not os.path.exists(path):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(64))
    Repository.open(repository, Credential.from_password(PASSWORD)).add_slot(Credential.from_key_file(path),
                                                                             label="benchmark key file")
    return path


def one_run(bench, restic, size, sparse_size, allocated, change_share, change_area, allocated_file):
    work = bench.workdir
    ours, theirs, restored = (os.path.join(work, name) for name in ("vmcrypt-repo", "restic-repo", "restic-restore"))
    sparse_repo = os.path.join(work, "vmcrypt-sparse-repo")
    source, target = bench.flat_file(SOURCE), bench.flat_file(TARGET)
    steps = {}
    details = {}

    cpu = {}

    def measure(command, **options):
        """_measure, keeping the step's CPU seconds in ``cpu`` for ``record``."""
        cpu.clear()
        return _measure(command, cpu=cpu, **options)

    def record(key, wall, rss, data_bytes, note=""):
        used = bench.last_cpu if key in JOB_STEPS else cpu
        cpu_s = round(used["user_s"] + used["system_s"], 3)
        steps[key] = {"seconds": round(wall, 3), "peak_rss_mib": round(rss / MIB, 1),
                      "bytes": data_bytes, "mib_per_s": round(data_bytes / MIB / wall, 1), "cpu_s": cpu_s}
        print("%-40s %8.2f s %8.1f MiB/s  peak RSS %6.1f MiB  CPU %6.2f s %s"
              % (dict(STEPS)[key], wall, data_bytes / MIB / wall, rss / MIB, cpu_s, note), flush=True)

    # 1. ceiling: cat, page cache warmed by an untimed cat first
    subprocess.run(["cat", source], stdout=subprocess.DEVNULL, check=True)
    wall, rss, _out = measure(["sh", "-c", 'exec cat "$0" > /dev/null', source], isolate_rss=True)
    record("cat", wall, rss, allocated, "(allocated bytes / time; cat reads %.1f GiB)" % (size / GIB))

    # floors: compressing and encrypting the allocated bytes; writing them into the target
    subprocess.run(["cat", allocated_file], stdout=subprocess.DEVNULL, check=True)
    wall, rss, _out = measure(["sh", "-c", floor_command(os.cpu_count() or 1), allocated_file], isolate_rss=True)
    record("floor", wall, rss, allocated)
    empty_disk(target, size)
    wall, rss, _out = measure(["cp", "--sparse=always", source, target], isolate_rss=True)
    record("write_floor", wall, rss, allocated, "(then sync, untimed)")
    empty_disk(target, size)
    wall, rss, _out = measure(["dd", "if=" + allocated_file, "of=" + target, "bs=4M", "oflag=direct", "conv=notrunc",
                               "status=none"], isolate_rss=True)
    record("write_floor_direct", wall, rss, allocated, "(the allocated bytes, contiguous)")

    # 2. full export
    _fresh_repository(ours)
    wall, rss, result = bench.export(SOURCE, ours)
    [disk] = result["disks"]
    details["export_full"] = disk
    record("export_full", wall, rss, allocated,
           "(read %d MiB, pipeline %.2f s)" % (disk["bytes_read"] // MIB, disk["duration_seconds"]))
    full_id = result["backup_id"]
    full_repository_bytes = _dir_size(ours)  # the same content as restic's: one full backup of the image

    # 2b. the same with every chunk file flushed by itself (repository_sync: file), into a repository of its own
    file_sync_repo = os.path.join(work, "vmcrypt-file-sync-repo")
    _fresh_repository(file_sync_repo)
    wall, rss, result = bench.export(SOURCE, file_sync_repo, sync="file")
    details["export_full_file_sync"] = result["disks"][0]
    record("export_full_file_sync", wall, rss, allocated, "(pipeline %.2f s)" % result["disks"][0]["duration_seconds"])
    shutil.rmtree(file_sync_repo, ignore_errors=True)

    # 3. restic backup of the same bytes
    for path in (theirs, restored):
        shutil.rmtree(path, ignore_errors=True)
    env = restic_env(work, theirs)
    restic_init(restic, env)
    wall, rss, _out = measure(restic_backup_command(restic), env=env, stdin_path=source, isolate_rss=True)
    record("restic_backup", wall, rss, allocated, "(reads %.1f GiB from stdin)" % (size / GIB))

    # 4a. the import's disk work alone: our chunk files read (direct, cold) while the allocated bytes are written
    empty_disk(target, size)
    evict(ours)
    wall, rss, _out = measure([sys.executable, os.path.join(HERE, "import_io_floor.py"), ours, allocated_file, target],
                              isolate_rss=True)
    record("io_floor_import", wall, rss, allocated, "(reads the repository, writes the allocated bytes)")

    # 4. import into the other encrypted VM's (emptied) disk; every restore reads its repository cold
    empty_disk(target, size)
    evict(ours)
    wall, rss, result = bench.job("import", TARGET, ours, backup_id=full_id)
    [disk] = result["disks"]
    details["import"] = disk
    record("import", wall, rss, allocated, "(wrote %d MiB)" % (disk.get("bytes_written", 0) // MIB))
    same = subprocess.run(["cmp", "-s", source, target], check=False).returncode == 0
    details["import_identical"] = same
    if not same:
        raise SystemExit("the imported disk differs from the source: these figures would be meaningless")

    # 4b. the same import with the double writing through this machine's page cache, as restic does
    empty_disk(target, size)
    evict(ours)
    bench.double.write(write_cache="buffered")
    try:
        wall, rss, result = bench.job("import", TARGET, ours, backup_id=full_id)
    finally:
        bench.double.write(write_cache="direct")
    details["import_buffered"] = result["disks"][0]
    record("import_buffered", wall, rss, allocated, "(wrote %d MiB)" % (result["disks"][0].get("bytes_written", 0) // MIB))

    # 5. restic restore
    evict(theirs)
    wall, rss, _out = measure([restic, "restore", "latest", "--target", restored, "--quiet"], env=env,
                              isolate_rss=True)
    record("restic_restore", wall, rss, allocated, "(writes %.1f GiB)" % (size / GIB))
    # 5a. ... until its bytes are on the disk, as the import's are when it returns (direct writes): restic
    # returns with them still dirty in the page cache
    flush = durable(restored)
    record("restic_restore_durable", wall + flush, rss, allocated, "(of it the fsync: %.2f s)" % flush)
    shutil.rmtree(restored, ignore_errors=True)

    # 5b. nothing changed since the full backup: what every export costs before it reads a byte
    wall, rss, result = bench.export(SOURCE, ours)
    [disk] = result["disks"]
    details["export_unchanged"] = disk
    record("export_unchanged", wall, rss, disk["bytes_read"], "(read %d bytes)" % disk["bytes_read"])

    # 5c. the same with a repository key file: no scrypt (HKDF), what the password costs each run shows
    key_file = _key_file_slot(ours, work)
    wall, rss, result = bench.export(SOURCE, ours, key_file=key_file)
    [disk] = result["disks"]
    details["export_unchanged_key_file"] = disk
    record("export_unchanged_key_file", wall, rss, disk["bytes_read"], "(read %d bytes)" % disk["bytes_read"])

    def incremental(key, key_file=None):
        """``share`` of the disk changed in areas spread over it (new random bytes each time), then exported."""
        saved, count = change_areas(source, size, change_share, change_area)
        try:
            wall, rss, result = bench.export(SOURCE, ours, key_file=key_file)
        finally:
            put_back(source, saved, size)
        [disk] = result["disks"]
        details[key] = dict(disk, changed_areas=count, changed_area_bytes=change_area)
        if not disk["incremental"]:
            print("WARNING: %s was not incremental" % key, flush=True)
        record(key, wall, rss, count * change_area,
               "(%d areas of %d KiB; read %d MiB, pipeline %.2f s)"
               % (count, change_area // 1024, disk["bytes_read"] // MIB, disk["duration_seconds"]))

    # 6. incremental: 1% changed in areas spread over the disk
    incremental("export_incremental")
    after_incremental = _dir_size(ours)
    # 6b. the same areas changed again, with the key file: the incremental without scrypt
    incremental("export_incremental_key_file", key_file=key_file)

    # 7. the sparse disk: export and import, for memory
    _fresh_repository(sparse_repo)
    sparse_allocated = allocated_bytes(bench.flat_file(SPARSE_SOURCE))
    wall, rss, result = bench.export(SPARSE_SOURCE, sparse_repo)
    [disk] = result["disks"]
    details["sparse_export"] = disk
    record("sparse_export", wall, rss, sparse_allocated, "(%.0f GiB disk)" % (sparse_size / GIB))
    empty_disk(bench.flat_file(SPARSE_TARGET), sparse_size)
    wall, rss, result = bench.job("import", SPARSE_TARGET, sparse_repo, backup_id=result["backup_id"])
    details["sparse_import"] = result["disks"][0]
    record("sparse_import", wall, rss, sparse_allocated, "(%.0f GiB disk)" % (sparse_size / GIB))

    repository_bytes = {"vmcrypt": full_repository_bytes, "restic": _dir_size(theirs),
                        "vmcrypt_after_incremental": after_incremental}
    for path in (ours, theirs, sparse_repo):
        shutil.rmtree(path, ignore_errors=True)
    empty_disk(target, size)
    empty_disk(bench.flat_file(SPARSE_TARGET), sparse_size)
    return {"steps": steps, "details": details, "repository_bytes": repository_bytes}


def load():
    with open("/proc/loadavg") as handle:
        return handle.read().split()[:3]


def summarize(runs, size, sparse_size, allocated, repeat):
    """Medians, the table and the targets of one image's runs."""
    table = []
    median = {}
    for key, label in STEPS:
        seconds = [run["steps"][key]["seconds"] for run in runs]
        data_bytes = runs[0]["steps"][key]["bytes"]
        median[key] = statistics.median(seconds)
        cpu_s = statistics.median(run["steps"][key]["cpu_s"] for run in runs)
        table.append({"step": key, "label": label, "median_seconds": round(median[key], 3), "all_seconds": seconds,
                      "bytes": data_bytes, "median_mib_per_s": round(data_bytes / MIB / median[key], 1),
                      "peak_rss_mib": max(run["steps"][key]["peak_rss_mib"] for run in runs),
                      "median_cpu_seconds": round(cpu_s, 2),
                      # CPU seconds per wall second, each run's own, then the median: 2.0 = both cores busy
                      "median_cores_busy": round(statistics.median(run["steps"][key]["cpu_s"] / run["steps"][key]["seconds"]
                                                                   for run in runs), 2)})
    pipeline = dict((key, statistics.median(run["details"][key]["duration_seconds"] for run in runs))
                    for key in ("export_full", "export_incremental", "import"))
    incremental = runs[0]["details"]["export_incremental"]
    changed = incremental["changed_areas"] * incremental["changed_area_bytes"]
    read = statistics.median(run["details"]["export_incremental"]["bytes_read"] for run in runs)
    sizes = dict((tool, statistics.median(run["repository_bytes"][tool] for run in runs))
                 for tool in ("vmcrypt", "restic"))
    peak = dict((item["step"], item["peak_rss_mib"]) for item in table)
    targets = {
        "export_vs_restic_backup": {"ratio": round(median["restic_backup"] / median["export_full"], 3), "target": 3.0},
        "export_vs_floor": {"ratio": round(median["floor"] / median["export_full"], 3), "target": 0.909,
                            "note": "floor time / export time; 0.909 = export at most 1.1x the floor"},
        "export_file_sync_vs_floor": {"ratio": round(median["floor"] / median["export_full_file_sync"], 3),
                                      "target": None, "note": "the same with repository_sync: file (an fsync per "
                                                              "chunk file, as before the flush was batched)"},
        "import_vs_restic_restore": {"ratio": round(median["restic_restore"] / median["import"], 3), "target": 2.0},
        "import_vs_restic_restore_durable": {
            "ratio": round(median["restic_restore_durable"] / median["import"], 3), "target": 2.0,
            "note": "both timed until the restored bytes are on the disk (restic's file fsync'd after it returns)"},
        "import_buffered_vs_restic_restore": {"ratio": round(median["restic_restore"] / median["import_buffered"], 2),
                                              "target": None,
                                              "note": "both through this machine's page cache"},
        "import_vs_io_floor": {"ratio": round(median["io_floor_import"] / median["import"], 2), "target": None,
                               "note": "the import's disk work alone (read the chunk files, write the target) / import"},
        "import_vs_write_floor": {"ratio": round(median["write_floor_direct"] / median["import"], 2), "target": None,
                                  "note": "dd oflag=direct time / import time (1.0 = as fast as writing alone)"},
        "import_buffered_vs_write_floor": {"ratio": round(median["write_floor"] / median["import_buffered"], 2),
                                           "target": None,
                                           "note": "cp --sparse=always time / page-cache import time"},
        "incremental_fixed_cost_key_file_vs_full": {
            "ratio": round(median["export_unchanged_key_file"] / median["export_full"], 4), "target": None,
            "note": "an export with nothing changed, repository key file (no scrypt) / full export"},
        "incremental_fixed_cost_vs_full": {"ratio": round(median["export_unchanged"] / median["export_full"], 4),
                                           "target": None, "note": "an export with nothing changed / full export"},
        "incremental_vs_full": {"ratio": round(median["export_incremental"] / median["export_full"], 4),
                                "target": 0.05, "below": True,
                                "transfer_only_ratio": round(pipeline["export_incremental"] / pipeline["export_full"],
                                                             4)},
        "incremental_key_file_vs_full": {
            "ratio": round(median["export_incremental_key_file"] / median["export_full"], 4), "target": 0.05,
            "below": True, "note": "the same incremental with a repository key file (no scrypt) / full export"},
        "incremental_read_vs_changed": {"ratio": round(read / changed, 3), "target": 1.1, "below": True,
                                        "bytes_read": read, "bytes_changed": changed},
        "repository_vs_restic": {"ratio": round(sizes["vmcrypt"] / sizes["restic"], 3), "target": 1.1,
                                 "below": True, "bytes": sizes},
        "peak_rss_8gib_disk_mib": {"ratio": max(peak["export_full"], peak["import"], peak["export_incremental"]),
                                   "target": 300, "below": True, "disk_gib": size / GIB},
        "peak_rss_sparse_disk_mib": {"ratio": max(peak["sparse_export"], peak["sparse_import"]), "target": 300,
                                     "below": True, "disk_gib": sparse_size / GIB},
    }
    for item in targets.values():
        if item["target"] is None:
            item["met"] = None
        else:
            item["met"] = item["ratio"] <= item["target"] if item.get("below") else item["ratio"] >= item["target"]
    return {"allocated_bytes": allocated, "repeat": repeat, "steps": table, "pipeline_seconds": pipeline,
            "targets": targets, "per_run_details": [run["details"] for run in runs],
            "repository_bytes": [run["repository_bytes"] for run in runs]}


def print_summary(name, summary):
    print()
    print("## %s image: medians of %d run(s), %d MiB allocated" % (name, summary["repeat"],
                                                                   summary["allocated_bytes"] // MIB))
    print()
    print("| step | bytes counted | median s | MiB/s | CPU s | cores busy | peak RSS MiB | all runs s |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for item in summary["steps"]:
        print("| %s | %.0f MiB | %.2f | %.1f | %.2f | %.2f | %.1f | %s |"
              % (item["label"], item["bytes"] / MIB, item["median_seconds"], item["median_mib_per_s"],
                 item["median_cpu_seconds"], item["median_cores_busy"], item["peak_rss_mib"],
                 ", ".join("%.2f" % value for value in item["all_seconds"])))
    print()
    for target, item in summary["targets"].items():
        verdict = "-" if item["met"] is None else "met" if item["met"] else "NOT met"
        relation = "<=" if item.get("below") else ">="
        bound = "" if item["target"] is None else "target %s%s" % (relation, item["target"])
        print("%-30s %-8s %-16s -> %s" % (target, item["ratio"], bound, verdict))
    print("incremental / full, transfer only (the jobs' own duration_seconds): %.4f"
          % summary["targets"]["incremental_vs_full"]["transfer_only_ratio"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=8.0, help="image (disk) size in GiB (default 8)")
    parser.add_argument("--sparse-gib", type=float, default=64.0, help="sparse disk size in GiB (default 64)")
    parser.add_argument("--images", default="fs,synthetic",
                        help="which images, comma separated: fs (a real file system), synthetic (default both)")
    parser.add_argument("--fs-tree", default="/usr", help="the tree of real files copied into the fs image")
    parser.add_argument("--fs-type", default="ext4", choices=("ext4", "ext3", "ext2"), help="file system of the fs image")
    parser.add_argument("--image-cache", default=os.path.join(REPO_ROOT, ".build", "bench-images"),
                        help="where the fs image is cached between runs (default .build/bench-images)")
    parser.add_argument("--change-percent", type=float, default=1.0, help="share changed before the incremental")
    parser.add_argument("--change-area-kib", type=int, default=1024,
                        help="size of each changed area in KiB (default 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; medians are reported (default 3)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="the repositories' chunk size in bytes (default: the library's, 4 MiB); for comparisons")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown (stage_bench.py)")
    parser.add_argument("--workdir", help="where disks and repositories go (default: a new temp dir)")
    parser.add_argument("--json", default=os.path.join(HERE, "results", "disk_transfer.json"),
                        help="figures as JSON (default bench/results/disk_transfer.json)")
    args = parser.parse_args()
    global CHUNK_SIZE
    CHUNK_SIZE = args.chunk_size
    restic = shutil.which("restic")
    if not restic:
        raise SystemExit("restic is not installed: run `make bench-setup`")
    for tool in ("zstd", "openssl", "mkfs.%s" % args.fs_type):
        if not shutil.which(tool):
            raise SystemExit("%s is not installed: run `make bench-setup`" % tool)
    if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "vmcrypt", "backup")):
        raise SystemExit("run `make collection` first")
    restic_version = subprocess.run([restic, "version"], stdout=subprocess.PIPE, universal_newlines=True,
                                    check=True).stdout.strip()
    images = [name.strip() for name in args.images.split(",") if name.strip()]
    size = int(args.size_gib * GIB) // REGION * REGION
    sparse_size = int(args.sparse_gib * GIB) // REGION * REGION
    workdir = args.workdir or tempfile.mkdtemp(prefix="vmcrypt-disk-bench-")
    os.makedirs(workdir, exist_ok=True)
    started = time.time()
    load_before = load()
    sources = {}
    if "fs" in images:
        sources["fs"] = fs_image(args.image_cache, size, args.fs_tree, args.fs_type)
    bench = Bench(workdir, size, sparse_size)
    results = {}
    try:
        print("generating the %.0f GiB sparse disk ..." % (sparse_size / GIB), flush=True)
        make_image(bench.flat_file(SPARSE_SOURCE), sparse_size, mix=SPARSE_MIX)
        for name in images:
            source = bench.flat_file(SOURCE)
            if name == "fs":
                copy_sparse(sources["fs"], source)
                composition = {"mkfs": "%s -d %s" % (args.fs_type, args.fs_tree)}
            elif name == "synthetic":
                counts = make_image(source, size, mix=IMAGE_MIX)
                composition = dict((kind, "%d MiB" % (count * REGION // MIB)) for kind, count in counts.items())
            else:
                raise SystemExit("unknown image %r: fs or synthetic" % name)
            allocated = allocated_bytes(source)
            allocated_file = allocated_copy(source, os.path.join(workdir, "allocated-%s.bin" % name))
            print("# %s image: %s; allocated %d MiB" % (name, composition, allocated // MIB), flush=True)
            runs = []
            for repetition in range(args.repeat):
                print("-- %s image, run %d of %d (load %s)" % (name, repetition + 1, args.repeat, " ".join(load())),
                      flush=True)
                runs.append(one_run(bench, restic, size, sparse_size, allocated, args.change_percent / 100.0,
                                    args.change_area_kib * 1024, allocated_file))
            results[name] = summarize(runs, size, sparse_size, allocated, args.repeat)
            results[name]["composition"] = composition
            os.remove(allocated_file)
            if not args.no_stages:
                rows, chunks = stages(source, [1, os.cpu_count() or 1], workdir)
                results[name]["stages"] = rows
        load_after = load()
    finally:
        bench.close()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    summary = {
        "date": time.strftime("%Y-%m-%d"), "cpus": os.cpu_count(), "load_before": load_before,
        "load_after": load_after, "duration_s": round(time.time() - started), "repeat": args.repeat,
        "chunk_size": CHUNK_SIZE,  # null: the library's default
        "command": " ".join([os.path.basename(sys.executable), "bench/disk_transfer_bench.py"] + sys.argv[1:]),
        "image_bytes": size, "sparse_disk_bytes": sparse_size,
        "change": {"percent": args.change_percent, "area_kib": args.change_area_kib},
        "restic": restic_version, "restic_restore_mode": "restic restore latest --target DIR (no --sparse in 0.14)",
        "python": sys.version.split()[0], "images": results,
    }
    print()
    print("Medians of %d run(s); load %s before, %s after; %d CPUs; %s"
          % (args.repeat, " ".join(load_before), " ".join(load_after), os.cpu_count(), restic_version))
    for name, result in results.items():
        print_summary(name, result)
        if result.get("stages"):
            print()
            print("| stage | threads | MiB | wall s | CPU s | MiB/s |")
            print("|---|---:|---:|---:|---:|---:|")
            for row in result["stages"]:
                print("| %s | %d | %.0f | %.2f | %s | %.1f |"
                      % (row["stage"], row["threads"], row["bytes"] / MIB, row["wall_s"],
                         "-" if row["cpu_s"] is None else "%.2f" % row["cpu_s"], row["mib_per_s"]))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as handle:
        json.dump(summary, handle, indent=1)
    print("written %s" % args.json)


if __name__ == "__main__":
    main()
