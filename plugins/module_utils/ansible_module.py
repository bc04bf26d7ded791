# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one wrapper every module of the collection is built on.

A module declares its options and hands a plain function to ``run``; this
file owns the two things every module would otherwise repeat: failing
cleanly when a Python dependency is missing, and turning ``VmcryptError``
into a failed task with a one-line message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError

# (import name, pip name) of what module_utils needs at run time.
_REQUIRED_LIBRARIES = {
    "vsphere": [("pyVmomi", "pyvmomi")],
    "repository": [("cryptography", "cryptography"), ("zstandard", "zstandard")],
}


def _missing_library(requirements):
    for import_name, pip_name in requirements:
        try:
            __import__(import_name)
        except ImportError:
            return pip_name, traceback.format_exc()
    return None, None


class VmcryptModule(AnsibleModule):
    """AnsibleModule that checks our dependencies and reports our errors.

    ``needs`` names the library groups the module uses ("vsphere",
    "repository"); a missing one fails the task with what to install.
    """

    def __init__(self, argument_spec, needs=(), **kwargs):
        super(VmcryptModule, self).__init__(argument_spec=argument_spec, **kwargs)
        for group in needs:
            pip_name, trace = _missing_library(_REQUIRED_LIBRARIES[group])
            if pip_name:
                self.fail_json(msg=missing_required_lib(pip_name), exception=trace)

    def run(self, body):
        """Call ``body()``, exit with the dict it returns, or fail with its error."""
        failure = None
        try:
            result = body()
        except VmcryptError as error:
            failure = error
        if failure is None:
            self.exit_json(**result)
        # Outside the except block, so Ansible attaches no traceback to a known error.
        self.fail_json(msg=str(failure), error_type=type(failure).__name__)
