"""The collection as `ansible-galaxy collection build` packs it, built once per test run.

Every test that needs the tarball asks ``built_tarball(tmp_path_factory)``;
the first call builds it, the others get the same file.
"""
import glob
import os
import subprocess
import sys

from playbook import REPO_ROOT

BIN = os.path.dirname(sys.executable)
_BUILT = {}


def built_tarball(tmp_path_factory):
    """Path of vmcrypt-backup-<version>.tar.gz built from the checkout."""
    if "tarball" not in _BUILT:
        output = tmp_path_factory.mktemp("collection-build")
        subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(output),
                        REPO_ROOT], check=True, stdout=subprocess.PIPE, timeout=300)
        [tarball] = glob.glob(str(output / "vmcrypt-backup-*.tar.gz"))
        _BUILT["tarball"] = tarball
    return _BUILT["tarball"]
