"""The module wrapper turns library errors into one failed task."""
import json
import os
import subprocess
import sys

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import VmcryptModule
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.specs import module_rules, module_spec
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import IntegrityError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import describe_fault


class _Exit(Exception):
    def __init__(self, kind, payload):
        super(_Exit, self).__init__(kind)
        self.kind = kind
        self.payload = payload


@pytest.fixture
def module_args(monkeypatch):
    def set_args(args):
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args})))
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy", raising=False)

    def raiser(kind):
        def leave(self, **payload):
            raise _Exit(kind, payload)
        return leave

    monkeypatch.setattr(VmcryptModule, "exit_json", raiser("exit"))
    monkeypatch.setattr(VmcryptModule, "fail_json", raiser("fail"))
    return set_args


def test_library_error_becomes_one_line_failure(module_args):
    module_args({"name": "app01"})
    module = VmcryptModule(argument_spec={"name": {"type": "str"}})

    def body():
        raise NotFoundError("VM 'app01' not found")

    with pytest.raises(_Exit) as raised:
        module.run(body)
    assert raised.value.kind == "fail"
    payload = dict(raised.value.payload)
    trace = payload.pop("exception")
    assert payload == {"msg": "VM 'app01' not found", "error_type": "NotFoundError"}
    # Shown only at -vvv: where the error came from.
    assert "NotFoundError: VM 'app01' not found" in trace and "in body" in trace


def test_a_fault_raised_by_a_vsphere_call_is_one_line_naming_object_and_fault(module_args):
    module_args({})
    module = VmcryptModule(argument_spec={})
    vm = vim.VirtualMachine("vm-42")

    def body():
        raise vim.fault.NoPermission(msg="Permission to perform this operation was denied.", object=vm,
                                     privilegeId="VirtualMachine.State.CreateSnapshot")

    with pytest.raises(_Exit) as raised:
        module.run(body)
    payload = raised.value.payload
    assert payload["msg"] == ("vCenter refused the request: NoPermission: Permission to perform this operation was "
                              "denied. (object vm-42, privilegeId VirtualMachine.State.CreateSnapshot)")
    assert payload["error_type"] == "VsphereFaultError"
    assert "NoPermission" in payload["exception"]


def test_an_invalid_state_fault_names_the_fault():
    fault = vim.fault.InvalidState(msg="The operation is not allowed in the current state.")
    assert describe_fault(fault) == "InvalidState: The operation is not allowed in the current state."


def test_error_details_ride_on_the_failure(module_args):
    module_args({})
    module = VmcryptModule(argument_spec={})

    def body():
        raise IntegrityError("verify found 1 missing", details={"ok": False, "missing_count": 1})

    with pytest.raises(_Exit) as raised:
        module.run(body)
    assert raised.value.payload["ok"] is False and raised.value.payload["missing_count"] == 1
    assert raised.value.payload["msg"] == "verify found 1 missing"


def test_a_bug_is_not_disguised_as_a_known_error(module_args):
    module_args({})
    module = VmcryptModule(argument_spec={})

    def body():
        raise KeyError("oops")

    with pytest.raises(KeyError):
        module.run(body)


def test_repository_password_from_the_environment_is_a_no_log_value(module_args, monkeypatch):
    monkeypatch.setenv("VMCRYPT_REPOSITORY_PASSWORD", "env-secret-7f3a")
    module_args({"repository": "/backups/repo"})
    module = VmcryptModule(argument_spec=module_spec(["repository"]))
    assert "env-secret-7f3a" in module.no_log_values


def test_module_spec_and_rules_come_from_the_groups():
    spec = module_spec(["vsphere", "one_vm"], extra=dict(type="int"))
    assert set(spec) >= {"hostname", "password", "name", "uuid", "moid", "extra"}
    assert spec["password"]["no_log"] is True
    rules = module_rules(["one_vm", "repository"], mutually_exclusive=[("a", "b")])
    assert rules == {"mutually_exclusive": [("name", "uuid", "moid"), ("repository_password", "repository_key_file"),
                                            ("a", "b")],
                     "required_one_of": [("name", "uuid", "moid")]}


def test_result_of_body_is_the_module_result(module_args):
    module_args({})
    module = VmcryptModule(argument_spec={})
    with pytest.raises(_Exit) as raised:
        module.run(lambda: {"changed": False, "vms": []})
    assert raised.value.kind == "exit"
    assert raised.value.payload == {"changed": False, "vms": []}


def test_missing_library_names_what_to_install(module_args, monkeypatch):
    module_args({})
    import importlib.util
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == "pyVmomi" else real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(_Exit) as raised:
        VmcryptModule(argument_spec={}, needs=("vsphere",))
    assert raised.value.kind == "fail"
    assert "pyvmomi" in raised.value.payload["msg"]


def test_the_library_check_does_not_import_pyvmomi():
    """The transfer modules import pyVmomi while the repository key is derived, not before (glue/transfer.py)."""
    code = ("import sys; from ansible_collections.vmcrypt.backup.plugins.module_utils.glue import module, transfer; "
            "module._missing_library(module._REQUIRED_LIBRARIES['vsphere']); print('pyVmomi' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, universal_newlines=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.stdout.strip() == "False"
