"""Run records for the report tests: a backup and a restore, each with a failed VM and a name that is markup."""
import copy

MIB = 1024 * 1024
HOSTILE = '<img src="http://report.invalid/x.png"> | *bold* _app_ [link](http://report.invalid) & `code`'


def backup_disk(key, label, read_mib, capacity_mib, **extra):
    disk = {"key": key, "label": label, "encrypted": True, "incremental": False, "transport": "nbdssl",
            "capacity_bytes": capacity_mib * MIB, "bytes_read": read_mib * MIB, "bytes_stored": read_mib * MIB // 3,
            "bytes_skipped": (capacity_mib - read_mib) * MIB, "bytes_deduplicated": None, "new_chunks": read_mib,
            "deduplicated_chunks": 0, "duration_seconds": 2.5, "throughput_mib_s": round(read_mib / 2.5, 1)}
    disk.update(extra)
    return disk


BACKUP = {
    "kind": "backup", "run_id": "20261130T120000Z", "started": "2026-11-30T12:00:00Z",
    "finished": "2026-11-30T12:02:05Z",
    "vms": [
        {"vm": "crypt-vm01", "status": "ok", "failure": None, "backup_id": "20261130T120001Z-0a1b2c3d",
         "verified": True, "key_mode": "encrypted", "duration_seconds": 40.0, "transports": ["nbdssl"],
         "bytes_read": 12 * MIB, "bytes_stored": 4 * MIB,
         "disks": [backup_disk(2000, "Hard disk 1", 8, 64),
                   backup_disk(2001, "Hard disk 2", 4, 32, encrypted=False, incremental=True,
                               bytes_deduplicated=MIB, deduplicated_chunks=1)],
         "encryption": {"key_id": {"key_id": "k-1", "provider_id": "kms"}, "encryption_bundle_saved": True,
                        "nvram_saved": True},
         "warnings": ["file-system quiescing instead of application quiescing"],
         "encryption.bundle": "c2VjcmV0", "repository_password": "hunter2"},
        {"vm": HOSTILE, "status": "failed", "failure": "Export the disks: disk 2000: reading at offset 1048576 failed",
         "backup_id": None, "verified": None, "duration_seconds": 3.2, "transports": [], "bytes_read": 0,
         "bytes_stored": 0, "disks": [], "encryption": None, "warnings": []},
        None,
    ],
}

RESTORE = {
    "kind": "restore", "run_id": "20261130T130000Z", "started": "2026-11-30T13:00:00Z",
    "finished": "2026-11-30T13:01:00Z",
    "vms": [
        {"vm": "crypt-vm01-restored", "source_vm": "crypt-vm01", "backup_id": "20261130T120001Z-0a1b2c3d",
         "status": "ok", "failure": None, "key_mode": "original",
         "power_on": {"predicted": True, "reason": "the original key is available on this vCenter",
                      "powered_on": True},
         "duration_seconds": 30.0, "transports": ["nbdssl"], "bytes_written": 12 * MIB, "bytes_zeroed": 2 * MIB,
         "bytes_skipped": 82 * MIB,
         "disks": [{"key": 2000, "capacity_bytes": 64 * MIB, "bytes_written": 8 * MIB, "bytes_zeroed": 2 * MIB,
                    "bytes_skipped": 54 * MIB, "transport": "nbdssl", "duration_seconds": 4.0,
                    "throughput_mib_s": 2.5},
                   {"key": 2001, "capacity_bytes": 32 * MIB, "bytes_written": 4 * MIB, "bytes_zeroed": 0,
                    "bytes_skipped": 28 * MIB, "transport": "nbdssl", "duration_seconds": 2.0,
                    "throughput_mib_s": 2.0}],
         "nvram": {"action": "restored from the backup", "uploaded": True},
         "sentences": ["The VM is restored under its original key.", "Its NVRAM is restored from the backup."],
         "warnings": []},
        {"vm": "uefi-vm01", "source_vm": "uefi-vm01", "backup_id": "20261130T120002Z-4e5f6a7b", "status": "failed",
         "failure": "Create the VM: a VM named uefi-vm01 exists", "key_mode": "new", "power_on": None,
         "sentences": ["The VM gets new keys."]},
    ],
}


def backup_run():
    return copy.deepcopy(BACKUP)


def restore_run():
    return copy.deepcopy(RESTORE)
