# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VixDiskLib_PrepareForAccess / EndAccess around a backup's whole snapshot life.

The guide: PrepareForAccess "notifies a host to refrain from relocating a
virtual machine" (vCenter disables Storage vMotion and friends for it) and
belongs before the backup snapshot is created; EndAccess re-enables them once
the snapshot is removed, also after a failure.  The backup role calls
``prepared`` before its snapshot and ``ended`` in its ``always`` block, and
tells disk_export not to bracket each of its own connections.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import DEFAULT_IDENTITY, VddkLibrary
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.params import SessionTarget

STATES = ("prepared", "ended")


def set_vddk_access(client, vm, state, libdir=None, identity=DEFAULT_IDENTITY, dry_run=False):
    """PrepareForAccess (``prepared``) or EndAccess (``ended``) for ``vm``; returns the module result."""
    result = {"changed": True, "state": state, "vm": {"moid": vm._moId}, "identity": identity}
    if dry_run:
        return result
    library = VddkLibrary.get(libdir)
    target = SessionTarget.from_client(client, vm._moId)
    if state == "prepared":
        library.prepare_for_access(target, identity=identity)
    else:
        library.end_access(target, identity=identity)
    return result
