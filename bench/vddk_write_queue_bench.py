"""Benchmark: VDDK writes one at a time (Write) against four in flight (WriteAsync), through the test double.

    .venv/bin/python bench/vddk_write_queue_bench.py --size-gib 4 --repeat 4 --latency-ms 0,2

What it isolates: the write path of disk_import and nothing else.  A child
process logs in to the project's vCenter simulator, opens the target VM's
disk read-write through the VDDK binding (``VddkDisk``) and the double, and
writes ``--size-gib`` of random bytes in 4 MiB buffers (16 distinct ones,
made before the clock starts), split into 2 MiB requests as always: once
with ``write`` (each request waits for the previous one) and once with
``queue_write`` + ``wait_writes`` (VDDK WriteAsync, four in flight).  The
two ways alternate, the target emptied (and the page cache flushed) before
each.

``--latency-ms`` sets the double's ``latency_ms``: the time each NBD/NBDSSL
request spends on the network before its data reaches the file.  0 is this
machine's disk alone; a few milliseconds per 2 MiB request is what NBDSSL's
"few hundred MB/s" over a LAN amounts to.  The double writes with O_DIRECT,
as VMFS has no host page cache (docs/vddk.md, behaviour 10).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import disk_transfer_bench as transfer  # noqa: E402  (the estate, the double and the collection path)

MIB = 1 << 20
BUFFER = 4 * MIB


def _child(spec):
    """Write spec["count"] buffers one way; print the seconds as JSON."""
    sys.path.insert(0, transfer.COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
    from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
    from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient

    buffers = [os.urandom(BUFFER) for _number in range(16)]
    with VsphereClient(spec["host"], spec["username"], spec["password"], port=spec["port"],
                       validate_certs=False) as client:
        library = VddkLibrary.get(spec["libdir"])
        with VddkConnection.from_client(library, client, spec["vm"], snapshot_moref=None, read_only=False,
                                        transports=["nbdssl"]) as connection:
            with connection.open_disk(spec["path"]) as disk:
                write = disk.queue_write if spec["queued"] else disk.write
                started = time.monotonic()
                for number in range(spec["count"]):
                    write(number * BUFFER // 512, buffers[number % len(buffers)])
                disk.wait_writes()
                print(json.dumps({"seconds": time.monotonic() - started}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=int, default=4, help="bytes written each time (default 4 GiB)")
    parser.add_argument("--repeat", type=int, default=4, help="runs of each way per latency (default 4)")
    parser.add_argument("--latency-ms", default="0,2", help="the double's latency_ms values, comma separated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(os.environ["VMCRYPT_BENCH_WRITES"]))
        return
    size = args.size_gib << 30
    work = tempfile.mkdtemp(prefix="vmcrypt-write-queue-")
    bench = transfer.Bench(work, size, 1 << 30)
    rows = []
    try:
        target = bench.flat_file(transfer.TARGET)
        [disk] = [d for d in bench.vms[transfer.TARGET]["disks"] if str(d["key"]) == transfer.DISK_KEY]
        for latency in [int(value) for value in args.latency_ms.split(",")]:
            bench.double.write(latency_ms=latency)
            runs = {"write": [], "queue_write": []}
            for number in range(args.repeat):
                ways = ("write", "queue_write") if number % 2 == 0 else ("queue_write", "write")
                for way in ways:
                    transfer.empty_disk(target, size)
                    subprocess.run(["sync"], check=True)
                    spec = {"host": bench.vcsim.host, "port": bench.vcsim.port, "username": bench.vcsim.username,
                            "password": bench.vcsim.password, "libdir": bench.libdir,
                            "vm": bench.vms[transfer.TARGET]["moid"], "path": disk["file"],
                            "queued": way == "queue_write", "count": size // BUFFER}
                    # the spec holds vCenter's password: the environment carries it, not the command line
                    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child"],
                                         env=dict(bench.env, VMCRYPT_BENCH_WRITES=json.dumps(spec)), check=True,
                                         stdout=subprocess.PIPE, universal_newlines=True).stdout
                    seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
                    runs[way].append(seconds)
                    print("latency %d ms, %-11s %6.2f s" % (latency, way, seconds), flush=True)
            rows.append((latency, runs))
    finally:
        bench.close()
    print("\n| latency_ms | way | median s | MiB/s | all runs s |\n|---:|---|---:|---:|---|")
    for latency, runs in rows:
        for way, seconds in runs.items():
            median = statistics.median(seconds)
            print("| %d | `%s` | %.2f | %.0f | %s |" % (latency, way, median, size / MIB / median,
                                                        ", ".join("%.2f" % value for value in seconds)))


if __name__ == "__main__":
    main()
