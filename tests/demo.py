"""The demo: back up an encrypted UEFI VM, delete it, restore it, and prove it came back as it was.

`make demo` runs this. Everything runs on this machine, against stand-ins:

- vCenter is govmomi's simulator (tests/vcsim, started on a free loopback port) with a key provider, the
  "VM Encryption Policy", and an encrypted UEFI VM with Secure Boot and a vTPM (uefi-vm01);
- VDDK is tests/vddk_double, a C library with VDDK's interface that reads and writes the simulator's disk files.

The VM's boot disk gets a real ext4 file system (made with mkfs.ext4 from the collection's own files) and its
NVRAM known bytes. Then, as an administrator would: playbooks/crypto_report.yml, playbooks/repository.yml (the
repository and a recovery key slot), playbooks/backup.yml, the VM deleted, playbooks/restore.yml; then the
restored VM is compared with the original (keyId, encryption.bundle, storage policies, NVRAM, every disk byte).
Last, one of the guide's failure situations: the key server gone, and what the restore plan says then.
Everything it made is in one temporary folder, removed at the end, and the simulator stops with it, so it runs
again from scratch; the run reports stay in .build/demo-reports.
"""
import glob
import hashlib
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
sys.path.insert(0, os.path.join(REPO_ROOT, ".build", "collections"))  # make collection links it there

from pyVmomi import vim  # noqa: E402

from estate import build_estate, estate_logins, key_server_lost, remove_vm, vms_named  # noqa: E402
from estate_nvram import local_path, write_nvram  # noqa: E402
from playbook import ansible_environment, ansible_playbook_command  # noqa: E402
from test_disk_transfer import flat_file  # noqa: E402
from vcsim import Vcsim  # noqa: E402
from vddk_double_config import DOUBLE_LIBDIR, Double  # noqa: E402
from vsphere_env import vmware_env  # noqa: E402

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient  # noqa: E402
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.vm_config import (  # noqa: E402
    capture_storage_policies,
)

VM = "uefi-vm01"
# The run reports outlive the demo's temporary folder, for a person to open; the next demo replaces them.
REPORTS = os.path.join(REPO_ROOT, ".build", "demo-reports")
PLAYBOOKS = os.path.join(REPO_ROOT, "playbooks")


def say(text):
    print("\n\033[1m== %s\033[0m" % text if sys.stdout.isatty() else "\n== %s" % text, flush=True)


class Demo(object):
    def __init__(self, simulator, estate, workdir):
        self.simulator, self.estate, self.workdir = simulator, estate, workdir
        self.si = simulator.connect()
        self.repository = os.path.join(workdir, "repository")
        self.reports = REPORTS
        self.double = Double(simulator, estate, pathlib.Path(workdir))
        self.double.vms = []  # any VM: the restored one is made during the demo
        self.double.snapshots = ["*"]
        self.double.write()
        self.env = {"VMCRYPT_REPOSITORY_PASSWORD": secrets.token_urlsafe(24), "VMCRYPT_VDDK_LIBDIR": DOUBLE_LIBDIR,
                    "VMCRYPT_VDDK_DOUBLE_CONFIG": self.double.config_path}

    def playbook(self, name, extra_vars, check=False):
        env = ansible_environment(vmware_env(self.simulator))
        env.pop("ANSIBLE_NOCOLOR")  # a person reads this one
        env.update(self.env)
        # JSON, not key=value: key=value parsing would turn the "\n" of "VSPHERE.LOCAL\nocrypto" into a newline.
        command = ansible_playbook_command(os.path.join(PLAYBOOKS, name), "-e", json.dumps(extra_vars))
        return subprocess.call(command + (["--check"] if check else []), env=env, cwd=self.workdir)

    # -- the VM and what it holds --------------------------------------------------------------------------------
    def vm(self, name=VM):
        found = vms_named(self.si, name)
        return found[0] if found else None

    def fill(self):
        """A real ext4 file system on the boot disk, a log on the data disk, known NVRAM bytes."""
        facts = self.estate["vms"][VM]
        boot, data = facts["disks"][0], facts["disks"][1]
        image = flat_file(self.simulator, boot["file"])
        tree = os.path.join(self.workdir, "tree")
        shutil.copytree(os.path.join(REPO_ROOT, "plugins"), os.path.join(tree, "opt", "vmcrypt", "plugins"),
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(os.path.join(REPO_ROOT, "docs"), os.path.join(tree, "usr", "share", "doc", "vmcrypt"))
        os.truncate(image, 0)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "demo-root", "-d", tree, image, "%dk" % boot["capacity_kb"]],
                       check=True)
        with open(flat_file(self.simulator, data["file"]), "r+b") as handle:
            handle.seek(1 << 20)
            handle.write(b"".join(b"2026-11-30T02:00:%02dZ app01 order %06d accepted\n" % (i % 60, i)
                                  for i in range(60000)))
        write_nvram(self.simulator, facts, os.urandom(8192))

    def facts(self, vm):
        """What must survive a restore: keyId, bundle, policies, NVRAM and disk bytes (digests, never the bundle)."""
        config = vm.config
        bundle = [o.value for o in config.extraConfig or [] if o.key == "encryption.bundle"]
        disks = {}
        for device in config.hardware.device:
            if isinstance(device, vim.vm.device.VirtualDisk):
                disks[device.key] = digest_of(flat_file(self.simulator, device.backing.fileName),
                                              device.capacityInKB * 1024)
        nvram = [f.name for f in vm.layoutEx.file if f.type == "nvram"]
        with open(local_path(self.simulator, nvram[0]), "rb") as handle:
            nvram_digest = hashlib.sha256(handle.read()).hexdigest()
        key = config.keyId
        return {"keyId": "%s (provider %s)" % (key.keyId, key.providerId.id) if key else None,
                "encryption.bundle": hashlib.sha256(bundle[0].encode()).hexdigest() if bundle else None,
                "storage policies": self.policies(vm),
                "firmware / Secure Boot / vTPM": "%s / %s / %s" % (
                    config.firmware, bool(config.bootOptions and config.bootOptions.efiSecureBootEnabled),
                    any(isinstance(d, vim.vm.device.VirtualTPM) for d in config.hardware.device)),
                "NVRAM": nvram_digest, "disks": disks}

    def policies(self, vm):
        sim = self.simulator
        with VsphereClient(hostname=sim.host, username=sim.username, password=sim.password, port=sim.port,
                           validate_certs=False) as client:
            disks = sorted(d.key for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualDisk))
            found, _warnings = capture_storage_policies(client, vim.VirtualMachine(vm._moId, client.stub), disks)
        return {"VM home": (found["vm_home"] or {}).get("name"),
                "disks": dict((key, (policy or {}).get("name")) for key, policy in found["disks"].items())}

    # -- the story ---------------------------------------------------------------------------------------------
    def run(self):
        say("A simulated vCenter (govmomi's vcsim) at %s, key provider %s; VDDK is played by tests/vddk_double"
            % (self.simulator.url, self.estate["key_provider"]["id"]))
        self.fill()
        status = self.playbook("crypto_report.yml", {"datacenter": "DC0",
                                                     "proxy_vm": self.estate["proxies"]["encrypted"]})
        if status:
            return status
        before = self.facts(self.vm())

        say("Create the encrypted repository, with a recovery key file as its second key")
        status = self.playbook("repository.yml", {"repository": self.repository,
                                                  "recovery_key_file": os.path.join(self.workdir, "recovery.key")})
        if status:
            return status

        say("Back up %s: snapshot, keyId, encryption.bundle, policies, NVRAM, disks through VDDK" % VM)
        status = self.playbook("backup.yml", {"vm_name": VM, "repository": self.repository, "backup_verify": True,
                                              "backup_progress_interval": 2, "backup_report_dir": self.reports})
        if status:
            return status

        say("Delete %s from vCenter" % VM)
        remove_vm(self.si, self.vm())
        print("%s deleted: %s" % (VM, self.vm() is None))

        say("Restore %s: the plan first (--check), then the restore" % VM)
        status = self.playbook("restore.yml", {"vm_name": VM, "repository": self.repository}, check=True)
        if status:
            return status
        status = self.playbook("restore.yml", {"vm_name": VM, "repository": self.repository,
                                               "restore_power_on": True, "restore_progress_interval": 2,
                                               "restore_report_dir": self.reports})
        if status:
            return status

        say("Is the restored VM the one that was backed up?")
        after = self.facts(self.vm())
        same = compare(before, after)

        say("One of the guide's failure situations: vCenter has lost its key server")
        status = self.key_server_gone()
        self.show_reports()
        if not same:
            print("\nThe restored VM differs from the original: see above.")
            return 1
        return status

    def key_server_gone(self):
        """The original key provider unregistered, another registered: what the plan and the weekly check say."""
        with key_server_lost(self.si):
            print("Key provider %s unregistered; another key server registered under another cluster name. "
                  "A restore that insists on the original key is planned (--check, nothing is made):"
                  % self.estate["key_provider"]["id"])
            self.playbook("restore.yml", {"vm_name": VM, "repository": self.repository, "restore_name": VM + "-dr",
                                          "restore_key_mode": "original"}, check=True)
            print("The weekly restorability check flags the backup before anyone needs it:")
            status = self.playbook(os.path.join(HERE, "demo_keys_check.yml"), {"repository": self.repository})
        print("Key provider %s registered again." % self.estate["key_provider"]["id"])
        return status

    def show_reports(self):
        say("The run reports, kept in %s until the next demo (open the .html in a browser)" % self.reports)
        for path in sorted(glob.glob(os.path.join(self.reports, "*"))):
            print("  %s (%d bytes)" % (os.path.basename(path), os.path.getsize(path)))


def digest_of(path, capacity):
    """SHA-256 of a disk's bytes, padded with zeros to its capacity (the simulator's flat files are sparse)."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    digest.update(bytes(capacity - size))
    return digest.hexdigest()[:16]


def compare(before, after):
    same = True
    for name in before:
        equal = before[name] == after[name]
        same = same and equal
        if name == "encryption.bundle":
            shown = "(compared by SHA-256, never shown)"
        else:
            shown = before[name] if equal else "%s -> %s" % (before[name], after[name])
        print("  %-30s %s  %s" % (name, "same" if equal else "DIFFERENT", shown))
    return same


def main():
    if shutil.which("mkfs.ext4") is None:
        print("mkfs.ext4 is missing: install e2fsprogs (the demo puts a real ext4 file system on the VM's disk)")
        return 2
    workdir = tempfile.mkdtemp(prefix="vmcrypt-demo-")
    shutil.rmtree(REPORTS, ignore_errors=True)
    try:
        with Vcsim(logins=estate_logins()) as simulator:
            estate = build_estate(simulator.connect())
            status = Demo(simulator, estate, workdir).run()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    say("What ran here, and what to change for a real vCenter")
    print(REAL_WORLD)
    return status


REAL_WORLD = """This demo ran against a simulator (govmomi's vcsim, started on 127.0.0.1) and a VDDK stand-in
(tests/vddk_double), both removed again. Against a real vCenter, on a backup proxy with VMware's VDDK:

  export VMWARE_HOST=vcenter.example.com VMWARE_USER=backup@vsphere.local VMWARE_PASSWORD=...
  export VMCRYPT_REPOSITORY_PASSWORD=...          # keep it safe: without it the backups are lost
  export VMCRYPT_VDDK_LIBDIR=/opt/vmware-vix-disklib-distrib
  ansible-playbook playbooks/backup.yml  -e vm_name=app01 -e repository=/backups/repo
  ansible-playbook playbooks/restore.yml -e vm_name=app01 -e repository=/backups/repo --check

Nothing else changes. docs/getting-started.md, docs/restore.md and docs/awx.md say more."""


if __name__ == "__main__":
    sys.exit(main())
