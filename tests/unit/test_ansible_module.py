"""The module wrapper turns library errors into one failed task."""
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.vmcrypt.backup.plugins.module_utils.ansible_module import VmcryptModule
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError


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
    assert raised.value.payload == {"msg": "VM 'app01' not found", "error_type": "NotFoundError"}


def test_result_of_body_is_the_module_result(module_args):
    module_args({})
    module = VmcryptModule(argument_spec={})
    with pytest.raises(_Exit) as raised:
        module.run(lambda: {"changed": False, "vms": []})
    assert raised.value.kind == "exit"
    assert raised.value.payload == {"changed": False, "vms": []}


def test_missing_library_names_what_to_install(module_args, monkeypatch):
    module_args({})
    import builtins
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "pyVmomi":
            raise ImportError("No module named 'pyVmomi'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(_Exit) as raised:
        VmcryptModule(argument_spec={}, needs=("vsphere",))
    assert raised.value.kind == "fail"
    assert "pyvmomi" in raised.value.payload["msg"]
