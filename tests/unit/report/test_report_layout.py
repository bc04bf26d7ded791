"""The report package is a library like the clients (docs/architecture.md): no Ansible, no glue, no workflow.

The rule and its helpers are tests/unit/test_layout.py's, loaded from its file.
"""
import importlib.util
import os

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "vmcrypt_test_layout", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test_layout.py"))
layout = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(layout)


@pytest.mark.parametrize("path", layout.python_files("report"), ids=os.path.basename)
def test_the_report_knows_nothing_of_ansible_or_the_tiers_above(path):
    layout.test_clients_know_nothing_of_ansible_or_the_tiers_above(path)
