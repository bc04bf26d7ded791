#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: snapshot
short_description: Create or remove the backup snapshot of a VM, with the quiescing rules for encrypted VMs
version_added: 0.1.0
description:
  - Creates a snapshot without memory for a backup, or removes it. Idempotent by name - an existing snapshot of
    that name is reported, not created again; removing an absent one changes nothing.
  - Asks vSphere for exactly the quiescing promised, with C(CreateSnapshotEx_Task) and a quiesce spec - for
    V(filesystem) a guest quiesce spec, on Windows a VSS spec whose context involves no application writers
    (C(ctx_file_share_backup)); for V(application) on Windows the VSS backup context.
  - The VDDK guide - application quiesced snapshots are not supported for encrypted VMs; use file-system
    quiescing instead. Asking for V(application) on an encrypted VM (home or any disk) fails with that sentence,
    unless O(quiesce_fallback=filesystem), which takes a file-system-quiesced snapshot with a warning.
  - The snapshot's VSS manifest (C(backup.xml)) is never read; for an encrypted VM it is a dummy.
  - Returns the snapshot moid and each disk's changeId, for disk_export and the next incremental backup.
author:
  - vmcrypt.backup maintainers (@vmcrypt-backup)
extends_documentation_fragment:
  - vmcrypt.backup.vsphere
  - vmcrypt.backup.vsphere.VM_SELECTOR
options:
  snapshot_name:
    description:
      - Name of the backup snapshot; with O(state=absent) also its moid (V(snapshot-42)).
    type: str
    required: true
  state:
    description:
      - V(present) creates the snapshot unless one of that name exists; V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  quiesce:
    description:
      - V(none) takes a crash-consistent snapshot; V(filesystem) quiesces the guest file systems through VMware
        Tools; V(application) also involves application writers (VSS on Windows).
      - vSphere ignores the quiesce spec of a powered-off VM or one without running VMware Tools; the result's
        C(snapshot.quiesced) says what vSphere did.
    type: str
    choices: [none, filesystem, application]
    default: filesystem
  quiesce_fallback:
    description:
      - What to do when O(quiesce=application) is asked for an encrypted VM. V(none) fails; V(filesystem) takes a
        file-system-quiesced snapshot and warns.
    type: str
    choices: [none, filesystem]
    default: none
  timeout:
    description:
      - Seconds to wait for the snapshot task.
    type: int
    default: 3600
notes:
  - Supports check mode - it reports the snapshot it would create or remove and changes nothing.
"""

EXAMPLES = r"""
- name: Take the nightly backup snapshot of app01
  vmcrypt.backup.snapshot:
    name: app01
    snapshot_name: vmcrypt-backup-nightly
    quiesce: filesystem
  register: backup_snapshot

- name: Application-consistent where allowed, file-system quiescing for an encrypted VM
  vmcrypt.backup.snapshot:
    name: sql01
    snapshot_name: vmcrypt-backup-nightly
    quiesce: application
    quiesce_fallback: filesystem

- name: Remove it when the export is done
  vmcrypt.backup.snapshot:
    name: app01
    snapshot_name: "{{ backup_snapshot.snapshot.moid }}"
    state: absent
"""

RETURN = r"""
vm:
  description: The VM.
  returned: always
  type: dict
  contains:
    name:
      description: VM name (null with O(state=absent)).
      type: str
    moid:
      description: VM managed object id.
      type: str
encrypted:
  description: Whether the VM home or any of its disks is encrypted.
  returned: when O(state=present)
  type: bool
snapshot:
  description: The snapshot.
  returned: always
  type: dict
  contains:
    moid:
      description: Snapshot moid; null in check mode when it would be created.
      type: str
      sample: snapshot-42
    name:
      description: Snapshot name (or the name or moid given, with O(state=absent)).
      type: str
    quiesce:
      description: The quiescing asked of vSphere (V(none), V(filesystem), V(application)); null for a snapshot
        that existed before.
      returned: when O(state=present)
      type: str
    quiesced:
      description: Whether vSphere reports the snapshot as quiesced; null in check mode.
      returned: when O(state=present)
      type: bool
    created:
      description: Whether this run created (or would create) the snapshot.
      returned: when O(state=present)
      type: bool
    removed:
      description: Whether the snapshot was (or would be) removed.
      returned: when O(state=absent)
      type: bool
disks:
  description: The snapshot's virtual disks, in device-key order.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    key:
      description: Device key.
      type: int
      sample: 2000
    label:
      description: Device label.
      type: str
    encrypted:
      description: Whether the disk is encrypted.
      type: bool
    change_id:
      description: The disk's CBT changeId at the snapshot (null without CBT or in check mode).
      type: str
quiesce_warning:
  description: Why the snapshot is quiesced otherwise than asked (application quiescing of an encrypted VM replaced
    by file-system quiescing); null when it is as asked. Also shown as a task warning.
  returned: when O(state=present)
  type: str
error_type:
  description:
    - On failure, the name of the error's class, for example C(NotFoundError), C(TaskError), C(VsphereFaultError).
  returned: failure
  type: str
  sample: NotFoundError
"""

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.module import run_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import vm_session
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.backup_snapshot import BackupSnapshot


def run(module):
    params = module.params
    with vm_session(params) as (client, finder, vm):
        snapshots = BackupSnapshot(client, finder, vm)
        if params["state"] == "absent":
            result = snapshots.absent(params["snapshot_name"], dry_run=module.check_mode, timeout=params["timeout"])
        else:
            result = snapshots.present(params["snapshot_name"], quiesce=params["quiesce"],
                                       quiesce_fallback=params["quiesce_fallback"], dry_run=module.check_mode,
                                       timeout=params["timeout"])
    if result.get("quiesce_warning"):
        module.warn(result["quiesce_warning"])
    return result


def main():
    run_module(run, groups=("vsphere", "one_vm"), options=dict(
        snapshot_name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        quiesce=dict(type="str", choices=["none", "filesystem", "application"], default="filesystem"),
        quiesce_fallback=dict(type="str", choices=["none", "filesystem"], default="none"),
        timeout=dict(type="int", default=3600),
    ))


if __name__ == "__main__":
    main()
