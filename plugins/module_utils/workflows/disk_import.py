# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_import: backed-up disks, through VDDK, into the disks of a (restored) VM.

The target VM is powered off and its disks are at least as large as the
backed-up ones; both are checked before anything is written.  Each disk is
written from authenticated chunks only, and nothing of what the target held
before is left: holes of the backup are written with zeros where the target
disk has data (VDDK QueryAllocatedBlocks on the target, or everywhere when
it cannot tell), unless ``target_blank`` says the disks were just created.

No restore snapshot is taken.  The VDDK programming guides require one for
SAN transport only and call it optional for NBDSSL and HotAdd: 8.0 and 6.7,
"Low Level Restore Procedures" ("For other transport modes, the restore
snapshot is optional") and 8.0 "Restore an Existing Virtual Machine to a
Previous State" ("The restore snapshot is optional (not necessary) for
NBD(SSL) and HotAdd transport modes"); the 5.x guide already said "With SAN
transport only".  See docs/disk-transfer.md.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging

from ansible_collections.vmcrypt.backup.plugins.module_utils.at_once import each_at_once
from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError, NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.transfer_job import (
    TransferJob,
    checked_max_retries,
    reconnect_cures,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.restore import import_disk
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.vddk_endpoints import VddkDiskEndpoint
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.connection import VddkConnection
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.library import VddkLibrary


LOGGER = logging.getLogger("vmcrypt.backup.vddk")
# Disks written at once, each by its own thread on its own VDDK connection and handle: a restore of a VM
# with several disks is bound by each handle's write stream (one connection, its requests in order), not by the CPU.
DISKS_AT_ONCE = 4
# What a run measures per disk; check mode returns the same keys with these unmeasured (None).
MEASURED_DISK_KEYS = ("bytes_written", "bytes_zeroed", "bytes_skipped", "target_check", "chunk_ids_checked", "retries",
                      "transport", "duration_seconds", "throughput_mib_s")


class ImportOptions:
    def __init__(self, backup_id, disk_map=None, transports=("hotadd", "nbdssl"), vddk_libdir=None,
                 progress_file=None, max_retries=3, retry_delay=2.0, threads=None, target_blank=False,
                 check_chunk_ids=False):
        self.backup_id = backup_id
        self.disk_map = dict((str(source), str(target)) for source, target in (disk_map or {}).items())
        self.transports = list(transports)
        self.vddk_libdir = vddk_libdir
        self.progress_file = progress_file
        self.max_retries = checked_max_retries(max_retries)
        self.retry_delay = retry_delay
        self.threads = threads
        if not isinstance(target_blank, bool):
            raise InvalidArgumentError("target_blank must be true or false, not %r" % (target_blank,))
        self.target_blank = target_blank
        if not isinstance(check_chunk_ids, bool):
            raise InvalidArgumentError("check_chunk_ids must be true or false, not %r" % (check_chunk_ids,))
        self.check_chunk_ids = check_chunk_ids


class DiskImportJob(TransferJob):
    phase = "restore"

    def _pairs(self, manifest, facts):
        """[(backed-up disk key, its capacity, target disk facts)], checked."""
        if facts["power_state"] != "poweredOff":
            raise InvalidArgumentError("VM %s is %s: power it off before its disks are written"
                                       % (facts["name"], facts["power_state"]))
        targets = dict((str(disk["key"]), disk) for disk in facts["disks"])
        mapping = self.options.disk_map or dict((key, key) for key in manifest.disk_keys)
        pairs = []
        for source, target in sorted(mapping.items()):
            if source not in manifest.disk_keys:
                raise NotFoundError("backup %s has no disk %s; it has %s"
                                    % (manifest.backup_id, source, ", ".join(manifest.disk_keys)))
            if target not in targets:
                raise NotFoundError("VM %s has no disk %s; it has %s"
                                    % (facts["name"], target, ", ".join(sorted(targets))))
            capacity = manifest.disk_index(source).capacity
            if targets[target]["capacity_bytes"] < capacity:
                raise InvalidArgumentError("disk %s of VM %s has %d bytes, smaller than the %d bytes of backed-up disk %s"
                                           % (target, facts["name"], targets[target]["capacity_bytes"], capacity,
                                              source))
            pairs.append((source, capacity, targets[target]))
        return pairs

    def plan_only(self):
        """Check mode: the same checks and keys as a run, nothing connected or written."""
        facts = self.facts_of(self.vm)
        manifest = self.repository.read_manifest(self.options.backup_id)
        pairs = self._pairs(manifest, facts)
        checked = self.check_transports()
        reports = []
        for source, capacity, target in pairs:
            report = dict((name, None) for name in MEASURED_DISK_KEYS)
            report.update(key=int(source), capacity_bytes=capacity, target=target["key"], target_file=target["file"])
            reports.append(report)
        return {"changed": True, "backup_id": manifest.backup_id, "transports": checked.allowed,
                "refused_transports": checked.refused, "disks": reports}

    def run(self):
        facts = self.facts_of(self.vm)  # reads only: the repository key may still be in derivation meanwhile
        manifest = self.repository.read_manifest(self.options.backup_id)
        pairs = self._pairs(manifest, facts)
        checked = self.check_transports()
        library = VddkLibrary.get(self.options.vddk_libdir)
        progress = ProgressFile(self.options.progress_file)

        def connect():
            return VddkConnection.from_client(library, self.client, self.vm._moId, snapshot_moref=None,
                                              transports=checked.allowed, read_only=False)

        def import_one(pair):
            source, _capacity, target = pair
            # Why VDDK cannot list the target's blocks goes to the log; import_disk warns what that means here.
            endpoint = VddkDiskEndpoint(connect, target["file"], read_only=False,
                                        warn=lambda text: LOGGER.info("%s", text))
            report = import_disk(endpoint.open, self.repository, manifest.backup_id, source, progress=progress,
                                 retryable=reconnect_cures, max_retries=self.options.max_retries,
                                 retry_delay=self.options.retry_delay, threads=self.options.threads,
                                 target_blank=self.options.target_blank, warn=self.warn,
                                 check_chunk_ids=self.options.check_chunk_ids)
            report.update(key=int(source), target=target["key"], target_file=target["file"])
            return report
        with self.repository.reading("restore backup %s" % manifest.backup_id):  # a prune waits for the restore
            reports = each_at_once(import_one, pairs, DISKS_AT_ONCE)
        return {"changed": True, "backup_id": manifest.backup_id, "transports": checked.allowed,
                "refused_transports": checked.refused, "disks": reports}
