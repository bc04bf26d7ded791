"""The tiers of plugins/module_utils (docs/architecture.md): each imports only the tiers below it."""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "module_utils")
PREFIX = "ansible_collections.vmcrypt.backup.plugins.module_utils."
CLIENTS = ("vsphere", "privileges", "vddk", "repository")
WORKFLOWS = ("workflows", "transfer")


def python_files(package):
    folder = os.path.join(ROOT, package)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".py"))


def imports_of(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def our_package(name):
    return name[len(PREFIX):].split(".")[0] if name.startswith(PREFIX) else None


@pytest.mark.parametrize("path", [path for package in CLIENTS for path in python_files(package)],
                         ids=os.path.basename)
def test_clients_know_nothing_of_ansible_or_the_tiers_above(path):
    imported = imports_of(path)
    assert not [name for name in imported if name.startswith("ansible.")], path
    assert not [name for name in imported if our_package(name) in ("glue",) + WORKFLOWS], path


@pytest.mark.parametrize("path", python_files("vddk"), ids=os.path.basename)
def test_the_vddk_binding_holds_no_policy(path):
    assert not [name for name in imports_of(path) if our_package(name) in ("privileges", "vsphere")], path


@pytest.mark.parametrize("path", [path for package in WORKFLOWS for path in python_files(package)],
                         ids=os.path.basename)
def test_workflows_take_plain_arguments(path):
    imported = imports_of(path)
    assert not [name for name in imported if name.startswith("ansible.") or our_package(name) == "glue"], path


def test_only_the_glue_imports_ansible_module_utils_basic():
    importers = []
    for folder, _dirs, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".py") and "ansible.module_utils.basic" in imports_of(os.path.join(folder, name)):
                importers.append(os.path.relpath(os.path.join(folder, name), ROOT))
    assert sorted(importers) == ["glue/module.py", "glue/specs.py"]
