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
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "integration"))

from estate import build_estate, estate_logins  # noqa: E402
from playbook import ansible_environment, ansible_playbook_command  # noqa: E402
from vcsim import Vcsim  # noqa: E402
from vsphere_env import vmware_env  # noqa: E402


def run_report(simulator, extra_vars):
    env = ansible_environment(vmware_env(simulator))
    env.pop("ANSIBLE_NOCOLOR")  # a person reads this one
    command = ansible_playbook_command(os.path.join(REPO_ROOT, "playbooks", "crypto_report.yml"))
    # JSON, not key=value: key=value parsing would turn the "\n" of "VSPHERE.LOCAL\nocrypto" into a newline.
    command += ["-e", json.dumps(extra_vars)]
    return subprocess.call(command, env=env)


def main():
    with Vcsim(logins=estate_logins()) as simulator:
        estate = build_estate(simulator.connect())
        print("Simulated vCenter at %s with %d VMs, key provider %s" % (
            simulator.url, len(estate["vms"]), estate["key_provider"]["id"]))
        status = run_report(simulator, {"datacenter": "DC0", "proxy_vm": estate["proxies"]["encrypted"]})
        if status == 0:
            print("\nThe same report for %s, whose role lacks the Cryptographer privileges:"
                  % estate["principals"]["nocrypto"]["principal"])
            status = run_report(simulator, {"datacenter": "DC0", "proxy_vm": estate["proxies"]["encrypted"],
                                            "principal": estate["principals"]["nocrypto"]["principal"]})
    return status


if __name__ == "__main__":
    sys.exit(main())
