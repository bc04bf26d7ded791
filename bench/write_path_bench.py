"""Benchmark: what writing data costs on this machine, by way of writing, before any of our code runs.

    .venv/bin/python bench/write_path_bench.py [--gib 5.8] [--repeat 3] [--dir DIR]

An import's time is its decoding plus its writes, and the writes' cost
depends on the machine more than on the writer: on a virtual machine with
nested paging, every page the kernel hands out for the first time since the
host took it back costs a round trip to the host.  Three ways, each timed
in a child process (wall, user and system CPU seconds from wait4), medians
of ``--repeat`` runs:

- ``touch``: fault in fresh anonymous memory, one write per 4 KiB page
  (what every new page-cache page costs before any copy);
- ``buffered``: ``dd`` of zeros into a new file through the page cache, as
  ``restic restore`` and ``cp`` write (then ``sync``, untimed);
- ``direct``: the same with ``oflag=direct``, as the VDDK test double writes
  by default (ESXi's VMFS has no host page cache).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
TOUCH = "import mmap, sys\nn = int(sys.argv[1])\nm = mmap.mmap(-1, n)\nfor offset in range(0, n, 4096):\n    m[offset] = 1\n"


def timed(command):
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("%s failed" % command[0])
    return wall, usage.ru_utime, usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=5.8, help="how much to write (default 5.8: the fs image's data)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where the files go (default: a temp dir under the repository's .build)")
    args = parser.parse_args()
    size = int(args.gib * 1024) * MIB
    count = size // (4 * MIB)
    base = args.dir or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".build")
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix="write-path-", dir=base)
    target = os.path.join(work, "target")
    ways = {
        "touch": [sys.executable, "-c", TOUCH, str(size)],
        "buffered": ["dd", "if=/dev/zero", "of=" + target, "bs=4M", "count=%d" % count, "status=none"],
        "direct": ["dd", "if=/dev/zero", "of=" + target, "bs=4M", "count=%d" % count, "oflag=direct", "status=none"],
    }
    runs = dict((way, []) for way in ways)
    try:
        for repetition in range(args.repeat):
            for way, command in ways.items():
                if os.path.exists(target):
                    os.remove(target)
                subprocess.run(["sync"], check=True)
                runs[way].append(timed(command))
                print("run %d %-8s %6.2f s wall %6.2f s user %6.2f s system"
                      % ((repetition + 1, way) + runs[way][-1]), flush=True)
    finally:
        if os.path.exists(target):
            os.remove(target)
        os.rmdir(work)
    print()
    print("| way | MiB | median wall s | MiB/s | median system CPU s | us of system CPU per 4 KiB page | all runs wall s |")
    print("|---|---:|---:|---:|---:|---:|---|")
    summary = {}
    for way, values in runs.items():
        wall = statistics.median(value[0] for value in values)
        system = statistics.median(value[2] for value in values)
        summary[way] = {"wall_s": round(wall, 2), "system_s": round(system, 2), "all_wall_s": [round(v[0], 2) for v in values]}
        print("| %s | %d | %.2f | %.0f | %.2f | %.1f | %s |"
              % (way, size // MIB, wall, size / MIB / wall, system, system * 1e6 / (size / 4096),
                 ", ".join("%.2f" % value[0] for value in values)))
    print(json.dumps({"bytes": size, "repeat": args.repeat, "ways": summary}))


if __name__ == "__main__":
    main()
