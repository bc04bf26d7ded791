"""The built collection tarball installs, documents itself and runs."""
import os
import subprocess
import sys
import tarfile

from collection_tarball import built_tarball
from playbook import run_playbook
from vsphere_env import vmware_env

BIN = os.path.dirname(sys.executable)


def test_built_tarball_installs_and_its_modules_run(tmp_path, tmp_path_factory, vcsim):
    # What the tarball must not hold is test_release_artifacts.py's business.
    tarball = built_tarball(tmp_path_factory)
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert "plugins/modules/vm_crypto_info.py" in names

    installed = tmp_path / "collections"
    subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", tarball, "-p", str(installed)],
                   check=True, stdout=subprocess.PIPE)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(installed))
    doc = subprocess.run([os.path.join(BIN, "ansible-doc"), "vmcrypt.backup.vm_crypto_info"], env=env,
                         stdout=subprocess.PIPE, universal_newlines=True, check=True)
    assert "encryption_bundle_present" in doc.stdout

    env = vmware_env(vcsim)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(installed)  # only the installed copy, not the checkout link
    run = run_playbook(tmp_path, [{"name": "facts", "vmcrypt.backup.vm_crypto_info": {"name": "DC0_C0_RP0_VM0"}}],
                       env=env)
    assert run.returncode == 0, run.output
    assert run["facts"]["vms"][0]["name"] == "DC0_C0_RP0_VM0"
