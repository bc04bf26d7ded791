"""execution-environment.yml as ansible-builder reads it: the build context and Containerfile it makes.

No container engine runs here, so the image is never built; `ansible-builder
create` still validates the definition and writes the exact build steps,
which are checked: the collection installed from its tarball, VDDK unpacked
from the administrator's tarball, VMCRYPT_VDDK_LIBDIR pointing at it.
"""
import os
import shutil
import subprocess
import tarfile

from collection_tarball import BIN, built_tarball
from playbook import REPO_ROOT


def fake_vddk_tarball(path):
    """A tarball laid out like VDDK's (vmware-vix-disklib-distrib/lib64/...): the build unpacks it as it is."""
    with tarfile.open(str(path), "w:gz") as archive:
        info = tarfile.TarInfo("vmware-vix-disklib-distrib/lib64/libvixDiskLib.so.8")
        archive.addfile(info)


def test_ansible_builder_makes_a_context_with_the_collection_and_vddk(tmp_path, tmp_path_factory):
    for name in ("execution-environment.yml", "requirements.txt", "bindep.txt"):
        shutil.copy(os.path.join(REPO_ROOT, name), str(tmp_path))
    (tmp_path / "context-files").mkdir()
    shutil.copy(built_tarball(tmp_path_factory), str(tmp_path / "context-files"))
    (tmp_path / "vddk").mkdir()
    fake_vddk_tarball(tmp_path / "vddk" / "VMware-vix-disklib-8.0.3-23950268.x86_64.tar.gz")
    run = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "--file", "execution-environment.yml",
                          "--context", "context", "--output-filename", "Containerfile"], cwd=str(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stdout
    context = tmp_path / "context"
    containerfile = (context / "Containerfile").read_text()
    steps = [line for line in containerfile.splitlines() if "vmcrypt" in line or "vddk" in line.lower()]
    assert steps == [
        "COPY _build/collections/ /tmp/vmcrypt-collections/",
        "RUN ansible-galaxy collection install /tmp/vmcrypt-collections/vmcrypt-backup-*.tar.gz "
        "-p /usr/share/ansible/collections && rm -rf /tmp/vmcrypt-collections",
        "COPY _build/vddk/ /tmp/vddk/",
        steps[3],
        "ENV VMCRYPT_VDDK_LIBDIR=/opt/vmware-vix-disklib-distrib",
    ]
    assert steps[3].startswith("RUN set -e; if ! ls /tmp/vddk/VMware-vix-disklib-*.tar.gz")
    assert "tar -xzf /tmp/vddk/VMware-vix-disklib-*.tar.gz -C /opt" in steps[3]
    assert sorted(os.listdir(str(context / "_build" / "collections"))) == [os.path.basename(
        built_tarball(tmp_path_factory))]
    assert os.listdir(str(context / "_build" / "vddk")) == ["VMware-vix-disklib-8.0.3-23950268.x86_64.tar.gz"]
    # The image gets the modules' Python dependencies from the same file as every other install.
    with open(os.path.join(REPO_ROOT, "requirements.txt")) as handle:
        assert (context / "_build" / "requirements.txt").read_text() == handle.read()
