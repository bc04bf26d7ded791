"""Benchmark: encryption facts of 1,000 simulated VMs, one call versus per VM.

Side by side in one run against one simulator:
  1. vmcrypt.backup's module_utils (PropertyCollector: one listing, then the
     VMs' paths in chunks of 500, two requests in flight; one PBM call),
  2. the same through the vm_crypto_info module in ansible-playbook,
  3. a per-VM pyVmomi attribute walk (vm.config, vm.layoutEx, vm.snapshot, ...),
  4. community.vmware's vmware_guest_info, one module run per VM, asking for
     the same properties (schema: vsphere).  Run for a sample of VMs and
     reported per VM and scaled to the whole inventory, because a full run
     takes many minutes.

Usage: .venv/bin/python bench/vm_facts_bench.py [--vms 1000] [--guest-info-sample 50]
Prints a Markdown table and writes bench/results/vm_facts.json.  For rows 1-2
it also prints the CPU seconds of the simulator process and of the client side
(this process for row 1, the ansible-playbook processes for row 2), medians of
the runs, to tell which side bounds the wall time.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, ".build", "collections"))
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))

from playbook import ansible_environment, ansible_playbook_command  # noqa: E402
from vcsim import Vcsim  # noqa: E402
from vsphere_env import vmware_env  # noqa: E402

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import collect_vm_crypto_facts  # noqa: E402
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient  # noqa: E402
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder  # noqa: E402

# vmware_guest_info fails ("Property 'snapshot' not found") when asked for
# the unset snapshot of a VM without snapshots, and likewise for
# runtime.powerState on the simulator, so those two are left out of its list.
GUEST_INFO_PROPERTIES = [
    "name", "config.keyId", "config.hardware.device", "config.extraConfig", "config.firmware",
    "config.bootOptions.efiSecureBootEnabled", "config.changeTrackingEnabled", "config.files.vmPathName",
    "layoutEx.file",
]


def timed(function, repeat=1):
    durations = []
    result = None
    for _attempt in range(repeat):
        start = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), result


def cpu_seconds(pid=None):
    """User + system CPU seconds of process ``pid`` (Linux /proc), or of this process and its waited-for children."""
    if pid is None:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return sum(int(value) for value in fields[11:15]) / float(os.sysconf("SC_CLK_TCK"))


def timed_cpu(function, simulator_pid, repeat):
    """timed() plus the median CPU seconds of the simulator and of the client side per run."""
    simulator_cpu, client_cpu = [], []

    def measured():
        simulator_before, client_before = cpu_seconds(simulator_pid), cpu_seconds()
        result = function()
        simulator_cpu.append(cpu_seconds(simulator_pid) - simulator_before)
        client_cpu.append(cpu_seconds() - client_before)
        return result

    seconds, result = timed(measured, repeat)
    return seconds, result, statistics.median(simulator_cpu), statistics.median(client_cpu)


def client_for(simulator):
    return VsphereClient(simulator.host, simulator.username, simulator.password, port=simulator.port,
                         validate_certs=False)


def one_call(simulator):
    with client_for(simulator) as client:
        facts = collect_vm_crypto_facts(client, VmFinder(client))[0]
    return facts


def all_vms(client):
    from pyVmomi import vim
    view = client.content.viewManager.CreateContainerView(client.content.rootFolder, [vim.VirtualMachine], True)
    vms = list(view.view)
    view.Destroy()
    return vms


def per_vm_walk_naive(simulator):
    """Attribute access as scripts usually write it: every vm.config.X is a round trip for the whole config."""
    from pyVmomi import vim
    facts = []
    with client_for(simulator) as client:
        for vm in all_vms(client):
            facts.append({
                "name": vm.name,
                "parent": vm.parent._moId,
                "key_id": vm.config.keyId.keyId if vm.config.keyId else None,
                "disk_keys": [getattr(device.backing, "keyId", None) for device in vm.config.hardware.device
                              if isinstance(device, vim.vm.device.VirtualDisk)],
                "bundle": any(option.key == "encryption.bundle" for option in vm.config.extraConfig),
                "firmware": vm.config.firmware,
                "secure_boot": vm.config.bootOptions.efiSecureBootEnabled,
                "cbt": vm.config.changeTrackingEnabled,
                "vmx": vm.config.files.vmPathName,
                "nvram": [item.name for item in vm.layoutEx.file if item.type == "nvram"],
                "snapshots": getattr(vm, "snapshot", None) is not None,
            })
    return facts


def per_vm_walk(simulator):
    """A careful per-VM script: vm.config read once per VM, then its fields."""
    from pyVmomi import vim
    facts = []
    with client_for(simulator) as client:
        for vm in all_vms(client):
            config = vm.config
            disks = [device for device in config.hardware.device if isinstance(device, vim.vm.device.VirtualDisk)]
            facts.append({
                "name": vm.name,
                "parent": vm.parent._moId,
                "key_id": config.keyId.keyId if config.keyId else None,
                "disk_keys": [getattr(disk.backing, "keyId", None) for disk in disks],
                "bundle": any(option.key == "encryption.bundle" for option in config.extraConfig),
                "firmware": config.firmware,
                "nvram": [item.name for item in vm.layoutEx.file if item.type == "nvram"],
                # pyVmomi raises AttributeError for an unset snapshot property of a simulated VM
                "snapshots": getattr(vm, "snapshot", None) is not None,
            })
    return facts


def run_playbook(simulator, tasks, workdir):
    import yaml
    path = os.path.join(workdir, "bench.yml")
    with open(path, "w") as handle:
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle)
    completed = subprocess.run(ansible_playbook_command(path), env=ansible_environment(vmware_env(simulator)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError("playbook failed:\n" + completed.stdout[-3000:])


def module_run(simulator, workdir):
    run_playbook(simulator, [{"vmcrypt.backup.vm_crypto_info": {"datacenter": "DC0"}}], workdir)


def guest_info_runs(simulator, names, workdir):
    run_playbook(simulator, [{
        "community.vmware.vmware_guest_info": {
            "hostname": "{{ lookup('env', 'VMWARE_HOST') }}",
            "port": "{{ lookup('env', 'VMWARE_PORT') | int }}",
            "datacenter": "DC0", "name": "{{ item }}", "schema": "vsphere",
            "properties": GUEST_INFO_PROPERTIES},
        "loop": names}], workdir)


def have_guest_info():
    try:
        import ansible_collections.community.vmware  # noqa: F401
        return True
    except ImportError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000, help="VMs in the simulated inventory (multiple of 4)")
    parser.add_argument("--guest-info-sample", type=int, default=50,
                        help="VMs to run vmware_guest_info for (scaled to --vms)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the fast methods; the median is kept")
    parser.add_argument("--ours-only", action="store_true",
                        help="only rows 1-2 (module_utils and the whole task), e.g. for --vms 10000")
    args = parser.parse_args()
    clusters = 4
    simulator = Vcsim(clusters=clusters, hosts_per_cluster=1, vms_per_pool=args.vms // clusters, start_timeout=300)
    rows = []
    cpu = {}
    with simulator, tempfile.TemporaryDirectory() as workdir:
        pid = simulator.process.pid
        seconds, facts, cpu["module_utils"], cpu["module_utils_client"] = timed_cpu(
            lambda: one_call(simulator), pid, args.repeat)
        count = len(facts)
        rows.append(("vmcrypt.backup module_utils, PropertyCollector in chunks + one PBM call", count, seconds, seconds))
        in_process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        seconds, _result, cpu["task"], cpu["task_client"] = timed_cpu(
            lambda: module_run(simulator, workdir), pid, args.repeat)
        rows.append(("vmcrypt.backup.vm_crypto_info in ansible-playbook (whole task)", count, seconds, seconds))
        # the largest process of the task runs (ansible-playbook, the module): every one is waited for by now
        task_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        if not args.ours_only:
            run_peers(simulator, args, facts, count, workdir, rows)
    print_rows(rows, count, in_process_peak, task_peak, cpu)


def run_peers(simulator, args, facts, count, workdir, rows):
    """Rows 3-5: per-VM pyVmomi walks and community.vmware's vmware_guest_info."""
    seconds, walked = timed(lambda: per_vm_walk(simulator), 1)
    rows.append(("pyVmomi per VM, config read once per VM", len(walked), seconds, seconds))
    seconds, walked = timed(lambda: per_vm_walk_naive(simulator), 1)
    rows.append(("pyVmomi per VM, vm.config.X for each fact", len(walked), seconds, seconds))
    if have_guest_info():
        sample = sorted(fact["name"] for fact in facts)[:args.guest_info_sample]
        seconds = timed(lambda: guest_info_runs(simulator, sample, workdir), 1)[0]
        rows.append(("community.vmware.vmware_guest_info, one task per VM (sample, scaled)", len(sample),
                     seconds, seconds / len(sample) * count))
    else:
        print("community.vmware is not installed: pip install -r bench/requirements-vsphere-peers.txt",
              file=sys.stderr)


def print_rows(rows, count, in_process_peak, task_peak, cpu):
    fastest = rows[0][3]
    print("| method | VMs measured | measured s | s for %d VMs | vs one call |" % count)
    print("|---|---|---|---|---|")
    for name, measured, seconds, scaled in rows:
        print("| %s | %d | %.2f | %.2f | %.1fx |" % (name, measured, seconds, scaled, scaled / fastest))
    print("peak RSS: in process (this benchmark, module_utils call) %.0f MiB; largest process of the task runs "
          "%.0f MiB" % (in_process_peak / 1048576.0, task_peak / 1048576.0))
    print("CPU s per run (medians): row 1 simulator %.2f, client %.2f; row 2 simulator %.2f, ansible-playbook %.2f"
          % (cpu["module_utils"], cpu["module_utils_client"], cpu["task"], cpu["task_client"]))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "vm_facts.json"), "w") as handle:
        json.dump({"vms": count, "peak_rss_bytes": {"in_process": in_process_peak, "task": task_peak},
                   "cpu_seconds_per_run": cpu,
                   "rows": [dict(zip(("method", "measured_vms", "seconds", "scaled_seconds"), row)) for row in rows]},
                  handle, indent=2)


if __name__ == "__main__":
    main()
