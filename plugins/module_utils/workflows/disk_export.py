# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_export: the disks of one VM's snapshot, through VDDK, into a staged backup.

Order matters for "loses nothing": the transport rules are applied before a
snapshot exists; a snapshot this run created is removed whatever happens; a
disk that fails is not recorded (its stored chunks are reclaimed by prune);
the staged backup is committed only when every disk is in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import chain
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.export import export_disk
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.staged_backup import open_staged, vm_identity
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.transfer_job import (
    TransferJob,
    checked_max_retries,
    reconnect_cures,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.plan import full_plan, incremental_plan
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.vddk_endpoints import VddkDiskEndpoint
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.cbt import (
    ALL_ALLOCATED,
    ChangeTrackingError,
    changed_areas,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.snapshots import (
    QUIESCE_FILESYSTEM,
    QUIESCE_NONE,
    create_backup_snapshot,
    find_snapshot,
    is_windows_guest,
    remove_snapshot,
    snapshot_disks,
)


class ExportOptions:
    """Plain values from the module's options."""

    def __init__(self, transports=("hotadd", "nbdssl"), snapshot=None, disks=None, incremental=True,
                 commit=None, backup_id=None, vddk_libdir=None, progress_file=None, max_retries=3,
                 retry_delay=2.0, threads=None, quiesce=True, manage_access=True):
        self.transports = list(transports)
        self.snapshot = snapshot
        self.disks = [str(disk) for disk in disks] if disks else None
        self.incremental = incremental
        self.commit = (backup_id is None) if commit is None else commit
        self.backup_id = backup_id
        self.vddk_libdir = vddk_libdir
        self.progress_file = progress_file
        self.max_retries = checked_max_retries(max_retries)
        self.retry_delay = retry_delay
        self.threads = threads
        self.quiesce = quiesce
        # False when a vddk_access task brackets the whole backup (PrepareForAccess before the snapshot).
        self.manage_access = manage_access


def _key_and_label(disk):
    if isinstance(disk, dict):  # a disk of vm_crypto_facts
        return disk["key"], disk["label"]
    return disk.key, disk.label  # a SnapshotDisk


def select_disks(disks, wanted):
    """The disks named by device key or label (all when ``wanted`` is None); an unknown name is an error.

    Check mode and the run both choose through here, so both refuse the same names.
    """
    if not wanted:
        return list(disks)
    chosen = [disk for disk in disks if str(_key_and_label(disk)[0]) in wanted or _key_and_label(disk)[1] in wanted]
    named = set(str(_key_and_label(disk)[0]) for disk in chosen) | set(_key_and_label(disk)[1] for disk in chosen)
    missing = set(wanted) - named
    if missing:
        raise NotFoundError("the VM has no disk %s; it has %s" % (
            ", ".join(sorted(missing)),
            ", ".join("%d (%s)" % pair for pair in sorted(_key_and_label(disk) for disk in disks))))
    return chosen


# What a run measures per disk; check mode returns the same keys with these unmeasured (None).
MEASURED_DISK_KEYS = ("bytes_read", "bytes_skipped", "bytes_stored", "bytes_deduplicated", "new_chunks",
                      "deduplicated_chunks", "zero_chunks", "chunks_from_base", "patched_chunks", "retries",
                      "transport", "duration_seconds", "throughput_mib_s", "flush_seconds")


class DiskExportJob(TransferJob):
    phase = "backup"

    def _previous_backup(self, facts):
        if not self.options.incremental:
            return None
        return chain.newest_backup(self.repository, vm_identity(facts))

    def plan_only(self):
        """Check mode: what would be exported, without a snapshot, a connection or a write."""
        facts = self.facts_of(self.vm)
        checked = self.check_transports()
        disks = sorted(select_disks(facts["disks"], self.options.disks), key=lambda disk: disk["key"])
        previous = self._previous_backup(facts)
        reports = []
        for disk in disks:
            base = previous.backup_id if previous and facts["cbt_enabled"] and str(disk["key"]) in previous.disk_keys \
                else None
            report = dict((name, None) for name in MEASURED_DISK_KEYS)
            report.update(key=disk["key"], label=disk["label"], capacity_bytes=disk["capacity_bytes"],
                          encrypted=disk["encrypted"], incremental=base is not None, base_backup_id=base)
            reports.append(report)
        return {
            "changed": True,
            "backup_id": self.options.backup_id,
            "committed": False,
            "vm": vm_identity(facts),
            "transports": checked.allowed,
            "refused_transports": checked.refused,
            "snapshot": {"moid": None, "created": self.options.snapshot is None, "removed": self.options.snapshot is None},
            "disks": reports,
        }

    def run(self):
        facts = self.facts_of(self.vm)
        checked = self.check_transports()
        for refusal in checked.refused:
            self.warn("transport %(transport)s refused: %(reason)s" % refusal)
        repository = self.repository  # before VDDK is loaded or anything made: a wrong password stops here
        library = VddkLibrary.get(self.options.vddk_libdir)
        staged, started = open_staged(repository, facts, self.options.backup_id)
        created = self.options.snapshot is None
        snapshot = None
        removed = False
        try:
            if created:
                # File-system quiescing: the guide's choice for encrypted VMs, and never less for plain ones.
                snapshot = create_backup_snapshot(
                    self.client, self.vm, "vmcrypt-backup-%s" % staged.backup_id,
                    quiesce=QUIESCE_FILESYSTEM if self.options.quiesce else QUIESCE_NONE,
                    windows=is_windows_guest(guest_id=facts["guest_id"]))
            else:
                snapshot = find_snapshot(self.client, self.vm, self.options.snapshot)
            disks = select_disks(snapshot_disks(self.client, snapshot), self.options.disks)
            previous = self._previous_backup(facts)
            progress = ProgressFile(self.options.progress_file)
            reports = []
            for disk in disks:
                reports.append(self._export_one(library, staged, snapshot, disk, previous, checked, progress))
        except BaseException:
            if created and snapshot is not None:
                removed = self._remove_quietly(snapshot, "after a failure")
            if started:
                staged.discard()
            raise
        if created:
            # Every disk is stored: a snapshot that will not go away is a warning on a good backup, not its loss.
            removed = self._remove_quietly(snapshot, "after the export", staged)
        manifest = staged.commit() if self.options.commit else None
        return {
            "changed": True,
            "backup_id": staged.backup_id,
            "committed": manifest is not None,
            "vm": vm_identity(facts),
            "transports": checked.allowed,
            "refused_transports": checked.refused,
            "snapshot": {"moid": snapshot._moId, "created": created, "removed": removed},
            "disks": reports,
        }

    def _remove_quietly(self, snapshot, when, staged=None):
        """Remove a snapshot this run made; a failure is a warning naming it (and recorded in the backup)."""
        try:
            remove_snapshot(self.client, snapshot)
            return True
        except Exception as error:  # pylint: disable=broad-except  # the export's own outcome is what to report
            text = ("snapshot %s of VM %s could not be removed %s: %s; remove it by hand"
                    % (snapshot._moId, self.vm._moId, when, error))
            self.warn(text)
            if staged is not None:
                staged.add_warning(text)
            return False

    def _plan(self, disk, snapshot, previous, first_handle):
        chunk_size = self.repository.chunk_size
        base_change = None
        if previous is not None and str(disk.key) in previous.disk_keys:
            base_change = previous.change_id(str(disk.key))
        if base_change and disk.change_id:
            try:
                areas = changed_areas(self.vm, snapshot, disk.key, disk.capacity, base_change)
                return incremental_plan(disk.capacity, chunk_size, areas), previous.backup_id
            except ChangeTrackingError as error:
                self.warn("%s; disk %d is read in full" % (error, disk.key))
        if disk.change_id:
            try:
                return full_plan(disk.capacity, chunk_size,
                                 changed_areas(self.vm, snapshot, disk.key, disk.capacity, ALL_ALLOCATED)), None
            except ChangeTrackingError as error:
                self.warn("%s; using VDDK's allocated blocks" % error)
        return full_plan(disk.capacity, chunk_size, first_handle.allocated_extents()), None

    def _export_one(self, library, staged, snapshot, disk, previous, checked, progress):
        def connect():
            return VddkConnection.from_client(library, self.client, self.vm._moId, snapshot_moref=snapshot._moId,
                                              transports=checked.allowed, read_only=True,
                                              manage_access=self.options.manage_access)
        endpoint = VddkDiskEndpoint(connect, disk.file_name, read_only=True, warn=self.warn)
        first = [endpoint.open()]  # also answers QueryAllocatedBlocks

        def open_source():
            if first:
                return first.pop()
            return endpoint.open()
        try:
            plan, base_backup_id = self._plan(disk, snapshot, previous, first[0])
        except BaseException:
            first.pop().close()
            raise
        transport = first[0].transport_mode
        properties = dict(disk.properties(), transport=transport)
        try:
            with staged.open_disk(str(disk.key), disk.capacity, base_backup_id=base_backup_id,
                                  properties=properties) as writer:
                report = export_disk(open_source, writer, plan, progress=progress,
                                     retryable=reconnect_cures, max_retries=self.options.max_retries,
                                     retry_delay=self.options.retry_delay, threads=self.options.threads)
                writer.set_change_id(disk.change_id)
        finally:
            while first:  # a plan with nothing to read never took the first connection
                first.pop().close()
        report["flush_seconds"] = writer.flush_seconds
        report["transport"] = report["transport"] or transport
        report["key"] = disk.key
        report["label"] = disk.label
        report["encrypted"] = disk.encrypted
        report["base_backup_id"] = base_backup_id
        return report
