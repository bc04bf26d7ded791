"""NVRAM content for the estate's VMs, written straight into the datastore folder.

The simulator creates each VM's `<name>.nvram` empty. Tests that download or
upload NVRAM give it known bytes here, through the local folder behind the
datastore (the simulator's ready line maps datastore names to folders), so
what the collection reads over HTTPS can be compared with what is on disk.
"""
import os
import re

_DATASTORE_PATH = re.compile(r"^\[([^\]]+)\] (.+)$")


def local_path(vcsim, datastore_path):
    """The local file behind "[datastore] folder/file" in this simulator."""
    match = _DATASTORE_PATH.match(datastore_path)
    if not match:
        raise ValueError("not a datastore path: %r" % datastore_path)
    datastore, relative = match.groups()
    return os.path.join(vcsim.datastores[datastore], relative)


def write_nvram(vcsim, vm_facts, content):
    """Replace the NVRAM of an estate VM (a build_estate()["vms"] entry) with `content`; returns its local path."""
    path = local_path(vcsim, vm_facts["nvram_path"])
    with open(path, "wb") as f:
        f.write(content)
    return path


def read_local(vcsim, datastore_path):
    with open(local_path(vcsim, datastore_path), "rb") as f:
        return f.read()
