# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module that uses VDDK starts with VDDK's lib64 on LD_LIBRARY_PATH: one call, first thing.

``ensure_vddk_library_path(module)`` checks the module process's environment
(``vddk/process.py``) and, when the directory is missing, runs the module
again through Ansible's own respawn: its arguments are inside the AnsiballZ
payload, which may have come on standard input, so the process cannot simply
be re-executed with its command line.  The new interpreter inherits this
process's environment with the directory added; this process waits for it,
exits with its result, and the controller's environment is never touched.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

from ansible.module_utils.common.respawn import respawn_module

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.process import ensure_library_path


def _respawn_module_with(environment):
    os.environ.clear()
    os.environ.update(environment)
    respawn_module(sys.executable)


def ensure_vddk_library_path(module):
    """Before the module logs in, snapshots or writes anything; check mode needs no VDDK and is left alone."""
    if not module.check_mode:
        ensure_library_path(module.params.get("vddk_libdir"), respawn=_respawn_module_with)
