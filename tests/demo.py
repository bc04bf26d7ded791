"""The demo: a simulated vCenter with encrypted VMs, and the encryption report playbook run against it.

`make demo` runs this. It starts the simulator built by `make vcsim`, builds
the encrypted estate (key provider, encrypted VMs and disks, policies, a
backup account without Cryptographer.Access), then runs
playbooks/crypto_report.yml twice: as the administrator, and for the
restricted account.  Connection settings travel in the environment, the way
AWX passes a vCenter credential.
"""
import json
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))

from estate import build_estate, estate_logins  # noqa: E402
from playbook import ansible_environment, ansible_playbook_command  # noqa: E402
from vcsim import Vcsim  # noqa: E402
from vddk_double_config import DOUBLE_LIBDIR, Double  # noqa: E402
from vsphere_env import vmware_env  # noqa: E402


def run_playbook(simulator, playbook, extra_vars, extra_env=None):
    env = ansible_environment(vmware_env(simulator))
    env.pop("ANSIBLE_NOCOLOR")  # a person reads this one
    env.update(extra_env or {})
    command = ansible_playbook_command(playbook)
    # JSON, not key=value: key=value parsing would turn the "\n" of "VSPHERE.LOCAL\nocrypto" into a newline.
    command += ["-e", json.dumps(extra_vars)]
    return subprocess.call(command, env=env)


def main():
    with Vcsim(logins=estate_logins()) as simulator:
        estate = build_estate(simulator.connect())
        print("Simulated vCenter at %s with %d VMs, key provider %s" % (
            simulator.url, len(estate["vms"]), estate["key_provider"]["id"]))
        report = os.path.join(REPO_ROOT, "playbooks", "crypto_report.yml")
        status = run_playbook(simulator, report, {"datacenter": "DC0", "proxy_vm": estate["proxies"]["encrypted"]})
        if status == 0:
            print("\nThe same report for %s, whose role lacks the Cryptographer privileges:"
                  % estate["principals"]["nocrypto"]["principal"])
            status = run_playbook(simulator, report, {"datacenter": "DC0", "proxy_vm": estate["proxies"]["encrypted"],
                                                      "principal": estate["principals"]["nocrypto"]["principal"]})
        if status == 0:
            status = backup_and_restore(simulator, estate)
    return status


def backup_and_restore(simulator, estate):
    """Disks of the encrypted VM into a repository and into another VM, through the VDDK test double."""
    source, target = estate["vms"]["crypt-vm01"], estate["vms"]["plain-vm01"]
    flat = flat_file(simulator, source["disks"][0]["file"])
    with open(flat, "r+b") as handle:  # something to back up: the simulator's disks start empty
        handle.seek(1 << 20)
        handle.write(os.urandom(512 * 1024) + b"application log line\n" * 50000)
    workdir = tempfile.mkdtemp(prefix="vmcrypt-demo-")
    double = Double(simulator, estate, pathlib.Path(workdir))
    double.snapshots = ["*"]
    double.write()
    print("\nBacking up %s and restoring it into %s (VDDK is played by tests/vddk_double)"
          % (source["name"], target["name"]))
    try:
        return run_playbook(simulator, os.path.join(HERE, "demo_backup.yml"),
                            {"demo_repository": os.path.join(workdir, "repository"), "demo_source": source["name"],
                             "demo_target": target["name"]},
                            {"VMCRYPT_REPOSITORY_PASSWORD": secrets.token_urlsafe(24),
                             "VMCRYPT_VDDK_LIBDIR": DOUBLE_LIBDIR, "VMCRYPT_VDDK_DOUBLE_CONFIG": double.config_path})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def flat_file(simulator, datastore_path):
    datastore, relative = datastore_path[1:].split("] ", 1)
    return os.path.join(simulator.datastores[datastore], relative[:-len(".vmdk")] + "-flat.vmdk")


if __name__ == "__main__":
    sys.exit(main())
