# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Changed block tracking: the areas of a disk changed since a changeId, or allocated ("*")."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import fault_message

ALL_ALLOCATED = "*"


class ChangeTrackingError(VmcryptError):
    """CBT could not answer (disabled, reset, unknown or too new a changeId, no such snapshot): back up in full."""


def changed_areas(vm, snapshot, device_key, capacity, change_id):
    """[(offset, length)] changed since ``change_id`` as of ``snapshot`` ("*": allocated areas).

    vSphere answers in pages: each call covers startOffset..startOffset+length
    and the caller asks again from the end of it until the capacity.
    """
    areas = []
    start = 0
    while start < capacity:
        # The faults the vSphere API reference gives for QueryChangedDiskAreas: FileFault (the disk
        # files cannot be queried: CBT off or reset), NotFound (the snapshot does not exist),
        # InvalidArgument (no such disk, offset past its end, an invalid changeId - also one handed
        # out after the snapshot, since a changeId names a point before it - or a disk without CBT);
        # NotSupported where the host cannot track changes. Each one means: read the disk in full.
        try:
            info = vm.QueryChangedDiskAreas(snapshot=snapshot, deviceKey=device_key, startOffset=start,
                                            changeId=change_id)
        except (vim.fault.FileFault, vim.fault.NotFound, vmodl.fault.InvalidArgument, vmodl.fault.NotSupported) as fault:
            raise ChangeTrackingError("CBT cannot tell what changed on disk %d since %s: %s"
                                      % (device_key, change_id, fault_message(fault)))
        for area in info.changedArea or []:
            areas.append((area.start, area.length))
        if info.length <= 0:
            break
        start = info.startOffset + info.length
    return areas
