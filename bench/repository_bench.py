"""Benchmark: store one generated disk image in a vmcrypt repository and in restic.

    make bench-repository                       # 3 GiB image
    .venv/bin/python bench/repository_bench.py --size-gib 3 [--workdir DIR] [--keep]

The image is a mix of incompressible data, compressible text and holes
(sparse regions).  Each measured step runs in its own child process so its
wall time and peak RSS (from wait4) are its own:

1. vmcrypt first backup (full read, chunk, hash, compress, encrypt, write)
2. restic first backup (``restic backup --stdin``, repository version 2, compression auto)
3. vmcrypt second backup of the unchanged image, re-reading every byte
4. vmcrypt second backup of the unchanged image with an empty CBT change list
   (what disk_export does when QueryChangedDiskAreas reports nothing changed)
5. restic second backup (``--stdin`` re-reads everything: it has no change list)

All five steps run ``--repeat`` times (default 3), each time into fresh
repositories, and the medians are reported: the machine is usually shared.
Throughput is image size / wall time.  Before each step the page cache's dirty
pages are flushed (``sync``, untimed) so that no step pays for the writeback of
the image or of the previous step; the image itself stays cached for both tools.  restic comes from Debian: ``apt-get install restic``.
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
COLLECTIONS = os.path.join(REPO_ROOT, ".build", "collections")
PASSWORD = "bench-password-not-secret"
MIB = 1 << 20
REGION = 64 * MIB
# Image composition by 64 MiB region: (kind, share)
MIX = (("random", 0.40), ("text", 0.35), ("hole", 0.25))


# -- image ----------------------------------------------------------------------
def _text_pool(rng):
    words = [("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _index in range(rng.randint(2, 10)))).encode()
             for _index in range(4000)]
    lines = []
    size = 0
    while size < 16 * MIB:
        line = b"%d-%02d-%02dT%02d:%02d:%02d host%03d %s\n" % (
            2026, rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59),
            rng.randint(0, 59), rng.randint(0, 200), b" ".join(rng.choice(words) for _index in range(rng.randint(4, 16))))
        lines.append(line)
        size += len(line)
    return b"".join(lines)


def make_image(path, size, mix=MIX):
    """A sparse image of ``size`` bytes: regions of random data, log-like text and holes.

    ``mix`` is ((kind, share), ...) over the kinds "random", "text" and "hole"
    (MIX by default); ``path`` may be an existing file (a disk's flat extent):
    it is truncated and rewritten.
    """
    rng = random.Random(20261130)
    pool = _text_pool(rng)
    regions = size // REGION
    kinds = []
    for kind, share in mix:
        kinds += [kind] * int(round(share * regions))
    kinds = (kinds + ["random"] * regions)[:regions]
    rng.shuffle(kinds)
    counts = dict((kind, kinds.count(kind)) for kind, _share in mix)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for number, kind in enumerate(kinds):
            if kind == "hole":
                continue
            handle.seek(number * REGION)
            for _piece in range(REGION // MIB):
                if kind == "random":
                    handle.write(os.urandom(MIB))
                else:
                    start = rng.randrange(0, len(pool) - MIB)
                    handle.write(pool[start:start + MIB])
    return counts


# -- measured steps (child processes) ------------------------------------------------
def _vmcrypt_step(mode, repo_path, image, threads, base_id):
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

    credential = Credential.from_password(PASSWORD)
    if mode == "first":
        repo = Repository.create(repo_path, credential)
    else:
        repo = Repository.open(repo_path, credential)
    size = os.path.getsize(image)
    chunk = repo.chunk_size
    base = None if mode == "first" else base_id
    staged = repo.start_backup({"name": "bench-vm", "uuid": "bench-uuid"}, base_backup_id=base)
    staged.put_nvram(b"\0" * 8192)

    def blocks():
        with open(image, "rb", buffering=0) as handle:
            offset = 0
            while offset < size:
                data = handle.read(chunk)
                yield offset, data
                offset += len(data)

    with staged.open_disk("2000", size, base_backup_id=base) as writer:
        if mode != "cbt":
            writer.write_blocks(blocks(), threads=threads)
        writer.set_change_id("bench/%s" % mode)
    item = staged.commit()
    print(json.dumps({"backup_id": item.backup_id, "stats": item.summary()["stats"]}))


# Forks and execs its arguments, then writes "<ru_maxrss KiB> <wall seconds> <user CPU s>
# <system CPU s>" of that grandchild to the file named first.  Linux carries the ru_maxrss of the process that
# forks into the exec'd child (at fork the child's memory is the parent's; exec keeps
# the high-water mark), so a command started straight from a large parent reports at
# least the parent's RSS.  This small interpreter (-I -S) is the parent instead.
_SPAWNER = """import os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(sys.argv[2], sys.argv[2:])
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(sys.argv[1], "w") as handle:
    handle.write("%d %.6f %.6f %.6f" % (usage.ru_maxrss, wall, usage.ru_utime, usage.ru_stime))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _measure(command, env=None, stdin_path=None, isolate_rss=False, cpu=None):
    """(wall seconds, peak RSS bytes, stdout) of a child process.

    ``cpu``, a dict, receives the child's ``user_s`` and ``system_s`` (CPU
    seconds): beside the wall time they say whether a step kept the cores busy
    or waited (on a disk, on the network).

    Dirty pages left by earlier steps (the image, the other tool's repository)
    are flushed first, untimed, so no step pays for another's writeback.
    With ``isolate_rss`` the command is started by a small spawner process, so
    its peak RSS is its own even when this process is large (see _SPAWNER);
    wall time is then the spawner's fork-to-reap time.
    """
    os.sync()
    report = None
    if isolate_rss:
        handle, report = tempfile.mkstemp(prefix="vmcrypt-bench-rusage-")
        os.close(handle)
        command = [sys.executable, "-I", "-S", "-c", _SPAWNER, report] + list(command)
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    start = time.perf_counter()
    process = subprocess.Popen(command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = b"", b""
    # read pipes fully before reaping the child with wait4 (which gives its own rusage)
    out, err = process.stdout.read(), process.stderr.read()
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    peak = usage.ru_maxrss * 1024
    times = (usage.ru_utime, usage.ru_stime)
    process.returncode = os.waitstatus_to_exitcode(status)
    if stdin_path:
        stdin.close()
    if report:
        with open(report) as handle:
            figures = handle.read().split()
        os.remove(report)
        if figures:
            peak, wall = int(figures[0]) * 1024, float(figures[1])
            times = (float(figures[2]), float(figures[3]))
    if cpu is not None:
        cpu.update(user_s=round(times[0], 3), system_s=round(times[1], 3))
    if process.returncode:
        raise SystemExit("step failed: %s\n%s" % (" ".join(command), err.decode(errors="replace")[-2000:]))
    return wall, peak, out.decode()


STEPS = ("vmcrypt first backup", "restic first backup", "vmcrypt second backup, unchanged, re-read",
         "vmcrypt second backup, unchanged, CBT", "restic second backup, unchanged")


def restic_env(workdir, repository):
    """Environment for restic commands on ``repository`` (password, cache inside ``workdir``)."""
    return dict(os.environ, RESTIC_PASSWORD=PASSWORD, RESTIC_REPOSITORY=repository,
                RESTIC_CACHE_DIR=os.path.join(workdir, "restic-cache"))


def restic_init(restic, env):
    """A new restic repository (version 2: compression auto) where ``env`` points."""
    subprocess.run([restic, "init", "--repository-version", "2"], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def restic_backup_command(restic, filename="disk.img"):
    """``restic backup --stdin``: the image piped in, stored as ``filename``."""
    return [restic, "backup", "--stdin", "--stdin-filename", filename, "--quiet"]


def _one_run(workdir, image, size, me, restic, restic_backup, threads):
    """The five steps into fresh repositories; returns their figures."""
    ours = os.path.join(workdir, "vmcrypt-repo")
    theirs = os.path.join(workdir, "restic-repo")
    for path in (ours, theirs):
        shutil.rmtree(path, ignore_errors=True)
    env = restic_env(workdir, theirs)
    restic_init(restic, env)
    steps = {}

    def record(name, wall, rss):
        steps[name] = {"seconds": round(wall, 2), "mib_per_s": round(size / MIB / wall, 1),
                       "peak_rss_mib": round(rss / MIB, 1)}
        print("%-44s %7.2f s %8.1f MiB/s  peak RSS %6.1f MiB" % (name, wall, size / MIB / wall, rss / MIB), flush=True)

    wall, rss, out = _measure(me + ["first", ours, image, str(threads), "-"])
    first_id = json.loads(out)["backup_id"]
    record(STEPS[0], wall, rss)
    ours_size = _dir_size(ours)
    wall, rss, _out = _measure(restic_backup, env=env, stdin_path=image)
    record(STEPS[1], wall, rss)
    theirs_size = _dir_size(theirs)
    wall, rss, _out = _measure(me + ["reread", ours, image, str(threads), first_id])
    record(STEPS[2], wall, rss)
    wall, rss, _out = _measure(me + ["cbt", ours, image, str(threads), first_id])
    record(STEPS[3], wall, rss)
    wall, rss, _out = _measure(restic_backup, env=env, stdin_path=image)
    record(STEPS[4], wall, rss)
    ratios = {"first": round(steps[STEPS[1]]["seconds"] / steps[STEPS[0]]["seconds"], 2),
              "second_reread": round(steps[STEPS[4]]["seconds"] / steps[STEPS[2]]["seconds"], 2),
              "second_cbt": round(steps[STEPS[4]]["seconds"] / steps[STEPS[3]]["seconds"], 2)}
    for path in (ours, theirs):
        shutil.rmtree(path, ignore_errors=True)
    return {"steps": steps, "ratios": ratios, "repository_bytes": {"vmcrypt": ours_size, "restic": theirs_size}}


def _dir_size(path):
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gib", type=float, default=3.0, help="image size in GiB (default 3)")
    parser.add_argument("--image", default="synthetic", choices=("synthetic", "fs"),
                        help="synthetic: the generated mix; fs: mkfs.ext4 -d of --fs-tree (bench/images.py, cached)")
    parser.add_argument("--fs-tree", default="/usr", help="the tree of real files of the fs image (default /usr)")
    parser.add_argument("--workdir", help="where the image and repositories go (default: a new temp dir)")
    parser.add_argument("--threads", type=int, default=0, help="vmcrypt writer threads (default: the library's)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of all steps, each into fresh repositories; medians are reported (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--step", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        mode, repo_path, image, threads, base_id = args.step
        _vmcrypt_step(mode, repo_path, image, int(threads) or None, None if base_id == "-" else base_id)
        return
    restic = shutil.which("restic")
    if not restic:
        raise SystemExit("restic is not installed: run `apt-get update && apt-get install -y restic` (Debian), "
                         "then run this benchmark again")
    if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "vmcrypt", "backup")):
        raise SystemExit("run `make collection` first")
    restic_version = subprocess.run([restic, "version"], stdout=subprocess.PIPE, universal_newlines=True, check=True).stdout.strip()

    workdir = args.workdir or tempfile.mkdtemp(prefix="vmcrypt-bench-")
    os.makedirs(workdir, exist_ok=True)
    image = os.path.join(workdir, "disk.img")
    size = int(args.size_gib * (1 << 30)) // REGION * REGION
    try:
        if args.image == "fs":
            from images import copy_sparse, fs_image
            copy_sparse(fs_image(os.path.join(REPO_ROOT, ".build", "bench-images"), size, args.fs_tree, "ext4"),
                        image)
            composition = {"mkfs": "ext4 -d %s" % args.fs_tree}
        else:
            print("generating %.2f GiB image in %s ..." % (size / (1 << 30), workdir), flush=True)
            counts = make_image(image, size)
            composition = dict((kind, "%d MiB" % (count * REGION // MIB)) for kind, count in counts.items())
        print("composition: %s" % composition, flush=True)
        me = [sys.executable, os.path.abspath(__file__), "--step"]
        restic_backup = restic_backup_command(restic)
        runs = []
        for repetition in range(args.repeat):
            print("-- run %d of %d" % (repetition + 1, args.repeat), flush=True)
            runs.append(_one_run(workdir, image, size, me, restic, restic_backup, args.threads))
        steps = []
        for name in STEPS:
            seconds = sorted(run["steps"][name]["seconds"] for run in runs)
            steps.append({"step": name, "median_seconds": round(statistics.median(seconds), 2),
                          "best_seconds": seconds[0], "all_seconds": [run["steps"][name]["seconds"] for run in runs],
                          "median_mib_per_s": round(size / MIB / statistics.median(seconds), 1),
                          "peak_rss_mib": max(run["steps"][name]["peak_rss_mib"] for run in runs)})
        median = dict((item["step"], item["median_seconds"]) for item in steps)
        ratios = {
            "first_backup_speedup": round(median[STEPS[1]] / median[STEPS[0]], 2),
            "second_backup_speedup_reread": round(median[STEPS[4]] / median[STEPS[2]], 2),
            "second_backup_speedup_cbt": round(median[STEPS[4]] / median[STEPS[3]], 2),
            "per_run": [run["ratios"] for run in runs],
        }
        summary = {
            "image_bytes": size, "composition": composition, "cpus": os.cpu_count(),
            "threads": args.threads or "library default", "repeat": args.repeat,
            "restic": restic_version, "python": sys.version.split()[0], "steps": steps, "ratios": ratios,
            "repository_bytes": runs[-1]["repository_bytes"],
        }
        print("== medians of %d run(s)" % args.repeat)
        for item in steps:
            print("%-44s %7.2f s %8.1f MiB/s  peak RSS %6.1f MiB  (all: %s)"
                  % (item["step"], item["median_seconds"], item["median_mib_per_s"], item["peak_rss_mib"],
                     ", ".join("%.2f" % value for value in item["all_seconds"])))
        sizes = summary["repository_bytes"]
        print("vmcrypt repository %.1f MiB, restic repository %.1f MiB" % (sizes["vmcrypt"] / MIB, sizes["restic"] / MIB))
        print("speed-up over restic (medians): first %.2fx, unchanged second %.2fx (re-read), %.2fx (CBT)"
              % (ratios["first_backup_speedup"], ratios["second_backup_speedup_reread"],
                 ratios["second_backup_speedup_cbt"]))
        print(json.dumps(summary, indent=1))
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(summary, handle, indent=1)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not args.keep:
            for name in ("disk.img", "vmcrypt-repo", "restic-repo", "restic-cache"):
                target = os.path.join(workdir, name)
                if os.path.isdir(target):
                    shutil.rmtree(target, ignore_errors=True)
                elif os.path.exists(target):
                    os.remove(target)


if __name__ == "__main__":
    main()
