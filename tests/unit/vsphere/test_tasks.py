"""Task waiting: results, readable faults, deadlines."""
import pytest
from pyVmomi import vim

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import TaskError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import tasks
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import ObjectProperties


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def feed(monkeypatch, states):
    answers = iter(states)

    def retrieve_one(client, task, paths):
        return ObjectProperties(task, next(answers), {})
    monkeypatch.setattr(tasks, "retrieve_one", retrieve_one)


def test_returns_result_after_polling(monkeypatch):
    feed(monkeypatch, [{"info.state": "queued"}, {"info.state": "running"},
                       {"info.state": "success", "info.result": "snapshot-7"}])
    clock = FakeClock()
    result = tasks.wait_for_task(None, vim.Task("task-1"), "create snapshot", sleep=clock.sleep, clock=clock)
    assert result == "snapshot-7"
    assert clock.now > 0


def test_fault_becomes_one_line(monkeypatch):
    fault = vim.fault.FileNotFound(file="[ds1] x.vmdk", msg="File [ds1] x.vmdk\nwas not found")
    feed(monkeypatch, [{"info.state": "error", "info.error": fault}])
    with pytest.raises(TaskError) as raised:
        tasks.wait_for_task(None, vim.Task("task-1"), "reconfigure app01")
    assert str(raised.value) == "reconfigure app01 failed: FileNotFound: File [ds1] x.vmdk was not found"


def test_deadline(monkeypatch):
    feed(monkeypatch, [{"info.state": "running"}] * 1000)
    clock = FakeClock()
    with pytest.raises(TaskError) as raised:
        tasks.wait_for_task(None, vim.Task("task-9"), "remove snapshot", timeout=10, sleep=clock.sleep, clock=clock)
    assert str(raised.value) == "remove snapshot did not finish within 10 seconds (task task-9 still running)"
