"""The VDDK test double's configuration file and call log, as the integration tests drive them."""
import json
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE_LIBDIR = os.path.join(REPO_ROOT, "tests", "vddk_double", "build")
DOUBLE_LIB = os.path.join(DOUBLE_LIBDIR, "lib64", "libvixDiskLib.so.8")
DOUBLE_COMPANION = os.path.join(DOUBLE_LIBDIR, "lib64", "libvixDiskLibVim.so.8")  # VDDK loads it by bare name
SNAPSHOT = "snapshot-9001"  # a backup snapshot only the double's "vCenter" knows


class Double(object):
    """The double's configuration file and call log for one test."""

    def __init__(self, vcsim, estate, folder):
        self.config_path = str(folder / "vddk-double.conf")
        self.log_path = str(folder / "vddk-calls.jsonl")
        self.settings = {"thumbprint": vcsim.thumbprint, "log": self.log_path, "hotadd": "0",
                         "proxy_encrypted": "0"}
        self.datastores = dict(vcsim.datastores)
        self.vms = sorted(vm["moid"] for vm in estate["vms"].values())
        self.snapshots = [SNAPSHOT]
        self.encrypted = sorted(d["file"] for vm in estate["vms"].values() for d in vm["disks"] if d["encrypted"])
        self.write()

    def write(self, **settings):
        self.settings.update(dict((k.replace("__", "."), str(v)) for k, v in settings.items()))
        lines = ["# written by the integration tests"]
        lines += ["datastore.%s=%s" % item for item in sorted(self.datastores.items())]
        lines += ["vm=%s" % vm for vm in self.vms] + ["snapshot=%s" % moref for moref in self.snapshots]
        lines += ["encrypted=%s" % path for path in self.encrypted]
        lines += ["%s=%s" % item for item in sorted(self.settings.items()) if item[1] != ""]
        with open(self.config_path, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def calls(self, name=None):
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as handle:
            entries = [json.loads(line) for line in handle]
        return [entry for entry in entries if name is None or entry["call"] == name]

    def raw_log(self):
        with open(self.log_path) as handle:
            return handle.read()
