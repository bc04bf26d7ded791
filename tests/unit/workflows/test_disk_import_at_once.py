"""disk_import writes several disks at once: results in order, every disk run, the first failure raised."""
import threading

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.at_once import each_at_once


def test_disks_run_at_the_same_time_and_reports_keep_the_disks_order():
    started = threading.Barrier(3, timeout=10)  # passes only when all three run at once

    def run(key):
        started.wait()
        return key * 10
    assert each_at_once(run, [1, 2, 3], 4) == [10, 20, 30]


def test_at_most_that_many_at_once():
    running, most = [0], [0]
    mutex = threading.Lock()

    def run(key):
        with mutex:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threading.Event().wait(0.05)
        with mutex:
            running[0] -= 1
        return key
    assert each_at_once(run, list(range(6)), 2) == list(range(6)) and most[0] == 2


def test_a_failed_disk_fails_the_import_after_the_others_finished():
    finished = []

    def run(key):
        if key == 2:
            raise ValueError("disk 2 failed")
        threading.Event().wait(0.05)
        finished.append(key)
        return key
    with pytest.raises(ValueError, match="disk 2 failed"):
        each_at_once(run, [1, 2, 3], 4)
    assert sorted(finished) == [1, 3]
