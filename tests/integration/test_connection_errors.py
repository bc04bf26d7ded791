"""Every bad connection or selection is one clear line in a failed task, never a traceback."""
import socket

import pytest
from pyVmomi import vim

from playbook import run_playbook
from vsphere_env import vmware_env


def single_task(tmp_path, vcsim, args, module="vmcrypt.backup.vm_crypto_info", verbosity=0, extra_env=None,
                **env_overrides):
    env = vmware_env(vcsim, **env_overrides)
    env.update(extra_env or {})
    run = run_playbook(tmp_path, [{"name": "probe", module: args, "ignore_errors": True}], env=env,
                       verbosity=verbosity)
    return run, run["probe"]


def assert_clean_failure(run, result, message):
    assert result["_status"] == "failed"
    assert result["msg"] == message
    # One line on the console; the traceback only when asked for (next test).
    assert "Traceback (most recent call last)" not in run.output
    # ansible-core 2.19 marks every failure "(traceback unavailable)" when tracebacks are not asked for.
    assert result.get("exception") in (None, "(traceback unavailable)")


def free_loopback_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_wrong_password_is_one_line_and_never_echoed(tmp_path, vcsim):
    secret = "Not-The-Password-42"
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0"}, password=secret)
    assert_clean_failure(run, result, "vCenter 127.0.0.1:%d refused the login of user '%s': wrong user name or password"
                         % (vcsim.port, vcsim.username))
    assert secret not in run.output
    assert secret not in repr(run.results)


def test_refused_connection(tmp_path, vcsim):
    port = free_loopback_port()
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0"}, port=port)
    assert_clean_failure(run, result, "vCenter 127.0.0.1:%d refused the connection: is it running, is the port right?"
                         % port)


def test_untrusted_certificate_is_refused_by_default(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0"}, validate_certs=True)
    assert result["_status"] == "failed"
    assert result["msg"].startswith("TLS certificate of vCenter 127.0.0.1:%d is not trusted (" % vcsim.port)
    assert result["msg"].endswith("); install its CA certificate or set validate_certs: false in a lab")


def test_unknown_vm(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"name": "no-such-vm", "datacenter": "DC0"})
    assert_clean_failure(run, result, "no VM named 'no-such-vm' in datacenter 'DC0'")


def test_unknown_moid_and_uuid(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"moid": "vm-999999"})
    assert_clean_failure(run, result, "no VM with moid 'vm-999999'")
    run, result = single_task(tmp_path, vcsim, {"uuid": "00000000-0000-0000-0000-000000000000"})
    assert_clean_failure(run, result, "no VM with instance or BIOS uuid '00000000-0000-0000-0000-000000000000'")


def test_name_and_uuid_together_are_refused(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0", "uuid": "x"})
    assert_clean_failure(run, result, "parameters are mutually exclusive: name|uuid|moid")


def test_invalid_transport_name(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0", "transports": ["nbdssl", "ftp"]},
                              module="vmcrypt.backup.privilege_check")
    assert result["_status"] == "failed"
    assert result["msg"] == ("value of transports must be one or more of: nbdssl, hotadd, nbd, san. "
                             "Got no match for: ftp")


def test_hotadd_without_proxy_is_a_refusal_with_its_reason(tmp_path, vcsim):
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM0"}, module="vmcrypt.backup.privilege_check")
    assert result["_status"] == "ok"
    assert result["allowed_transports"] == ["nbdssl"]
    assert result["refused_transports"] == [
        {"transport": "hotadd", "reason": "hotadd needs proxy_vm: the VM that would hot-add the disks"}]


def test_the_traceback_of_a_failure_shows_when_asked_for(tmp_path, vcsim):
    # -vvv before ansible-core 2.19; from 2.19 on, ANSIBLE_DISPLAY_TRACEBACK=error.
    run, result = single_task(tmp_path, vcsim, {"name": "no-such-vm"}, verbosity=3,
                              extra_env={"ANSIBLE_DISPLAY_TRACEBACK": "error"})
    assert result["_status"] == "failed"
    assert "Traceback (most recent call last)" in run.output
    assert "in find_one" in run.output and "NotFoundError" in run.output


@pytest.fixture
def duplicate_vm(vcsim_si):
    """A second VM named like an existing one, in another folder of DC0."""
    content = vcsim_si.RetrieveContent()
    datacenter = [entity for entity in content.rootFolder.childEntity if entity.name == "DC0"][0]
    folder = datacenter.vmFolder.CreateFolder("duplicates")
    source = content.searchIndex.FindByInventoryPath("DC0/vm/DC0_C0_RP0_VM1")
    task = source.CloneVM_Task(folder=folder, name="DC0_C0_RP0_VM1", spec=vim.vm.CloneSpec(location=vim.vm.RelocateSpec()))
    while task.info.state not in ("success", "error"):
        pass
    assert task.info.state == "success", task.info.error
    clone = task.info.result
    yield source, clone
    destroy = clone.Destroy_Task()
    while destroy.info.state not in ("success", "error"):
        pass
    folder.Destroy_Task()


def test_ambiguous_name_lists_candidates_and_folder_disambiguates(tmp_path, vcsim, duplicate_vm):
    source, clone = duplicate_vm
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM1"})
    assert_clean_failure(run, result, "VM name 'DC0_C0_RP0_VM1' is ambiguous: /DC0/vm/DC0_C0_RP0_VM1, "
                                      "/DC0/vm/duplicates/DC0_C0_RP0_VM1; give datacenter, folder, uuid or moid")
    run, result = single_task(tmp_path, vcsim, {"name": "DC0_C0_RP0_VM1", "datacenter": "DC0",
                                                "folder": "duplicates"})
    assert result["_status"] == "ok"
    assert [vm["moid"] for vm in result["vms"]] == [clone._moId]
    assert result["vms"][0]["path"] == "/DC0/vm/duplicates/DC0_C0_RP0_VM1"
