"""vddk/process.py: when a process must run again with VDDK's lib64 on LD_LIBRARY_PATH, and with what."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import process
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError


@pytest.fixture
def libdir(tmp_path, monkeypatch):
    (tmp_path / "lib64").mkdir()
    monkeypatch.setattr(process, "_READY", set())
    return str(tmp_path)


class Respawned(Exception):
    pass


def respawn_into(calls):
    def respawn(environment):
        calls.append(environment)
        raise Respawned()
    return respawn


def test_a_process_without_lib64_runs_again_with_it_first(libdir):
    calls = []
    environ = {"LD_LIBRARY_PATH": "/opt/a:/opt/b", "HOME": "/root"}
    with pytest.raises(Respawned):
        process.ensure_library_path(libdir, respawn=respawn_into(calls), environ=environ)
    [environment] = calls
    assert environment["LD_LIBRARY_PATH"] == libdir + "/lib64:/opt/a:/opt/b"
    assert environment[process.MARKER] == "/opt/a:/opt/b" and environment["HOME"] == "/root"
    assert environ == {"LD_LIBRARY_PATH": "/opt/a:/opt/b", "HOME": "/root"}  # the caller's is untouched


def test_the_new_run_is_ready_and_gives_its_children_the_old_value_back(libdir):
    environ = {"LD_LIBRARY_PATH": libdir + "/lib64", process.MARKER: ""}
    assert process.ensure_library_path(libdir, respawn=respawn_into([]), environ=environ) == libdir + "/lib64"
    assert environ == {}
    # Asked again in the same process: still ready, no second run.
    assert process.ensure_library_path(libdir, respawn=respawn_into([]), environ=environ) == libdir + "/lib64"


def test_already_there_from_the_start_nothing_happens(libdir):
    environ = {"LD_LIBRARY_PATH": "/x:" + libdir + "/lib64/"}
    assert process.ensure_library_path(libdir, respawn=respawn_into([]), environ=environ) == libdir + "/lib64"
    assert environ == {"LD_LIBRARY_PATH": "/x:" + libdir + "/lib64/"}


def test_no_loop_when_the_variable_is_lost_on_the_way(libdir):
    with pytest.raises(VddkError) as caught:
        process.ensure_library_path(libdir, respawn=respawn_into([]), environ={process.MARKER: ""})
    assert "does a wrapper or a setuid interpreter clear it?" in str(caught.value)


def test_no_vddk_configured_is_left_to_the_loader(tmp_path, monkeypatch):
    monkeypatch.delenv("VMCRYPT_VDDK_LIBDIR", raising=False)
    assert process.ensure_library_path(None, respawn=respawn_into([]), environ={}) is None
    assert process.ensure_library_path(str(tmp_path / "missing"), respawn=respawn_into([]), environ={}) is None
