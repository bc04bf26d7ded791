# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper every module of the collection is built on.

A module declares its options (``glue.specs``) and hands a plain function to
``run``; this file owns what every module would otherwise repeat: failing
cleanly when a Python dependency is missing, keeping secrets read from the
environment out of the output, and turning our errors and vSphere's faults
into a failed task with a one-line message (the traceback kept for -vvv).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import sys
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import repository_secret_from_env
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.specs import module_rules, module_spec
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import describe_fault

# (import name, pip name) of what module_utils needs at run time.
_REQUIRED_LIBRARIES = {
    "vsphere": [("pyVmomi", "pyvmomi")],
    "repository": [("cryptography", "cryptography"), ("zstandard", "zstandard")],
}


def _missing_library(requirements):
    """(pip name, why) of the first library that cannot be found, else (None, None).

    Found, not imported: pyVmomi alone costs 0.08 s to import, and a module
    imports it later, while the repository key is being derived
    (glue/transfer.py).
    """
    for import_name, pip_name in requirements:
        try:
            found = importlib.util.find_spec(import_name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return pip_name, "No module named %r on %s (sys.path: %s)" % (import_name, sys.executable, sys.path)
    return None, None


def _vsphere_fault_types():
    """vSphere's fault base class once pyVmomi is imported; before that no fault can have been raised."""
    pyvmomi = sys.modules.get("pyVmomi")
    return (pyvmomi.vmodl.MethodFault,) if pyvmomi is not None else ()


# The Python libraries each option group's code needs.
_GROUP_NEEDS = {"vsphere": "vsphere", "repository": "repository"}


def failure_of(error):
    """(message, error_type, details) for an exception the module reports, or None for a bug to surface as it is."""
    if isinstance(error, VmcryptError):
        return str(error), type(error).__name__, error.details
    faults = _vsphere_fault_types()
    if faults and isinstance(error, faults):
        return "vCenter refused the request: %s" % describe_fault(error), "VsphereFaultError", {}
    return None


class VmcryptModule(AnsibleModule):
    """AnsibleModule that checks our dependencies, hides secrets from the environment and reports our errors.

    ``needs`` names the library groups the module uses ("vsphere",
    "repository"); a missing one fails the task with what to install.
    """

    def __init__(self, argument_spec, needs=(), **kwargs):
        super(VmcryptModule, self).__init__(argument_spec=argument_spec, **kwargs)
        if "repository_password" in argument_spec:
            password = repository_secret_from_env(self.params)[0]
            if password:
                self.no_log_values.add(password)
        for group in needs:
            pip_name, trace = _missing_library(_REQUIRED_LIBRARIES[group])
            if pip_name:
                self.fail_json(msg=missing_required_lib(pip_name), exception=trace)

    def run(self, body):
        """Call ``body()``, exit with the dict it returns, or fail with its error in one line."""
        failure = trace = None
        try:
            result = body()
        except Exception as error:  # pylint: disable=broad-except
            failure = failure_of(error)
            if failure is None:
                raise
            trace = traceback.format_exc()
        if failure is None:
            self.exit_json(**result)
        # The message is one line; the traceback only shows at -vvv.
        details = dict(failure[2])
        details.update(msg=failure[0], error_type=failure[1], exception=trace)
        self.fail_json(**details)


def run_module(body, groups=(), options=None, rules=None, check_mode=True):
    """What every module's main() is: the option groups it shares (``glue.specs``), its own options and
    rules, and ``body(module)`` returning the result dict."""
    needs = [_GROUP_NEEDS[group] for group in groups if group in _GROUP_NEEDS]
    module = VmcryptModule(module_spec(groups, **(options or {})), needs=needs, supports_check_mode=check_mode,
                           **module_rules(groups, **(rules or {})))
    module.run(lambda: body(module))
