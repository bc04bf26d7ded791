"""Finding libvixDiskLib: clear one-line errors saying what to install."""
import os
import subprocess
import sys

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError, VddkNotInstalledError

HINT = ("install VDDK 7.0 or newer from Broadcom/VMware, extracted so that <libdir>/lib64/libvixDiskLib.so.N "
        "exists, and set option vddk_libdir or VMCRYPT_VDDK_LIBDIR")


def make_libdir(root, *sonames):
    lib64 = root / "lib64"
    lib64.mkdir(parents=True)
    for soname in sonames:
        (lib64 / soname).write_bytes(b"not an ELF file")
    return str(root)


def test_importing_needs_no_library(monkeypatch):
    """A module imports the binding on a controller without VDDK: nothing may be loaded until asked.

    In a fresh interpreter, so that no other test's library counts.
    """
    monkeypatch.delenv("VMCRYPT_VDDK_LIBDIR", raising=False)
    script = "; ".join([
        "import importlib",
        "[importlib.import_module('ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.' + name) "
        "for name in ('structs', 'loader', 'library', 'connection', 'disk', 'errors')]",
        "from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary",
        "print(VddkLibrary._instance is None, 'libvixDiskLib' in open('/proc/self/maps').read())",
    ])
    output = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))).stdout
    assert output.split() == ["True", "False"]


def test_libdir_not_set(monkeypatch):
    monkeypatch.delenv("VMCRYPT_VDDK_LIBDIR", raising=False)
    with pytest.raises(VddkNotInstalledError) as caught:
        loader.load()
    assert str(caught.value) == "VDDK location not set: " + HINT
    assert isinstance(caught.value, VddkError)


def test_missing_libdir(tmp_path, monkeypatch):
    missing = str(tmp_path / "vmware-vix-disklib-distrib")
    monkeypatch.setenv("VMCRYPT_VDDK_LIBDIR", missing)
    with pytest.raises(VddkNotInstalledError) as caught:
        loader.load()
    assert str(caught.value) == "VDDK directory %s does not exist: %s" % (missing, HINT)


def test_missing_library(tmp_path):
    libdir = make_libdir(tmp_path, "libvixDiskLibVim.so.8")
    with pytest.raises(VddkNotInstalledError) as caught:
        loader.load(libdir)
    assert str(caught.value) == "no libvixDiskLib.so.9, .so.8 or .so.7 in %s/lib64: %s" % (libdir, HINT)
    assert "\n" not in str(caught.value)


def test_too_old_library(tmp_path):
    libdir = make_libdir(tmp_path, "libvixDiskLib.so.6")
    with pytest.raises(VddkNotInstalledError) as caught:
        loader.load(libdir)
    assert str(caught.value) == ("%s/lib64/libvixDiskLib.so.6 is too old (VDDK 6.x is not supported): %s"
                                 % (libdir, HINT))


def test_newest_soname_wins_and_option_beats_environment(tmp_path, monkeypatch):
    libdir = make_libdir(tmp_path / "vddk", "libvixDiskLib.so.7", "libvixDiskLib.so.8", "libvixDiskLib.so.6")
    monkeypatch.setenv("VMCRYPT_VDDK_LIBDIR", str(tmp_path / "elsewhere"))
    assert loader.resolve_libdir(libdir) == libdir
    assert loader.find_library(libdir) == (os.path.join(libdir, "lib64", "libvixDiskLib.so.8"), 8)


def test_unloadable_library_is_reported_not_raised_as_oserror(tmp_path):
    libdir = make_libdir(tmp_path, "libvixDiskLib.so.9")
    with pytest.raises(VddkNotInstalledError) as caught:
        loader.load(libdir)
    message = str(caught.value)
    assert message.startswith("cannot load %s/lib64/libvixDiskLib.so.9 (" % libdir)
    assert message.endswith(HINT) and "\n" not in message


def test_a_second_libdir_in_one_process_is_refused(tmp_path, monkeypatch):
    from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary

    class Api(object):
        libdir = str(tmp_path / "first")
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    library = VddkLibrary(Api(), router=None)
    monkeypatch.setattr(VddkLibrary, "_instance", library)
    monkeypatch.delenv("VMCRYPT_VDDK_LIBDIR", raising=False)
    assert VddkLibrary.get() is library
    assert VddkLibrary.get(str(tmp_path / "first")) is library
    with pytest.raises(VddkError) as caught:
        VddkLibrary.get(str(tmp_path / "second"))
    assert str(caught.value) == ("VDDK from %s is already initialised in this process; cannot also use %s"
                                 % (tmp_path / "first", tmp_path / "second"))
