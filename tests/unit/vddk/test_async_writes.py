"""AsyncWrites against a fake VDDK that completes requests on its own thread, in any order."""
import ctypes
import threading

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import structs as s
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.async_writes import AsyncWrites
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

SECTOR = s.VIXDISKLIB_SECTOR_SIZE


class FakeVddk:
    """WriteAsync queues; a completer thread calls back, newest first, once ``batch`` requests wait (or at Wait).

    ``results`` maps a start sector to the VixError its callback reports; ``refuse`` a start sector to the
    VixError WriteAsync returns at once instead of VIX_ASYNC.
    """

    def __init__(self, batch=2, results=None, refuse=None):
        self.batch = batch
        self.results = results or {}
        self.refuse = refuse or {}
        self.lock = threading.Condition()
        self.queued = []
        self.most_in_flight = 0
        self.written = {}
        self.callback_threads = set()

    def VixDiskLib_WriteAsync(self, handle, sector, sectors, address, callback, token):
        if sector in self.refuse:
            return self.refuse[sector]
        with self.lock:
            self.queued.append((sector, sectors, address, callback, token))
            self.most_in_flight = max(self.most_in_flight, len(self.queued))
            if len(self.queued) >= self.batch:
                self._complete()
        return s.VIX_ASYNC

    def _complete(self):
        batch, self.queued = self.queued[::-1], []
        thread = threading.Thread(target=self._call_back, args=(batch,))
        thread.start()
        thread.join()

    def _call_back(self, batch):
        for sector, sectors, address, callback, token in batch:
            self.callback_threads.add(threading.get_ident())
            result = self.results.get(sector, s.VIX_OK)
            if result == s.VIX_OK:
                self.written[sector] = ctypes.string_at(address, sectors * SECTOR)
            callback(token, result)

    def VixDiskLib_Wait(self, handle):
        with self.lock:
            if self.queued:
                self._complete()
        return s.VIX_OK

    def error_text(self, raw):
        return "fake error %d" % raw


def submit(writes, sector, data):
    buffer = ctypes.create_string_buffer(data, len(data))
    pieces = [(sector + offset // SECTOR, min(2 * SECTOR, len(data) - offset) // SECTOR, offset)
              for offset in range(0, len(data), 2 * SECTOR)]
    writes.submit(pieces, data, ctypes.addressof(buffer))
    return buffer


def test_requests_complete_out_of_order_on_another_thread_and_at_most_depth_are_in_flight():
    api = FakeVddk(batch=3)
    writes = AsyncWrites(api, handle=1, path="[ds] vm/vm.vmdk", depth=3)
    data = [bytes([number]) * (4 * SECTOR) for number in range(1, 6)]
    keep = [submit(writes, number * 8, chunk) for number, chunk in enumerate(data)]
    writes.wait()
    assert api.most_in_flight <= 3
    assert threading.get_ident() not in api.callback_threads
    assert b"".join(api.written[sector] for sector in sorted(api.written)) == b"".join(data)
    assert writes.unfinished() == [] and len(keep) == 5


def test_a_failed_request_surfaces_at_wait_with_its_sector_and_stays_unfinished():
    api = FakeVddk(batch=2, results={10: s.VIX_E_HOST_TCP_CONN_LOST})
    writes = AsyncWrites(api, handle=1, path="[ds] vm/vm.vmdk", depth=4)
    keep = submit(writes, 8, b"a" * (4 * SECTOR))  # requests at sectors 8 and 10
    with pytest.raises(VddkError) as caught:
        writes.wait()
    assert caught.value.retryable
    assert str(caught.value).startswith("writing 2 sectors at sector 10 of [ds] vm/vm.vmdk: VixDiskLib_WriteAsync "
                                        "failed: fake error 14011 (VIX error 14011)")
    assert [(sector, bytes(data)) for sector, data in writes.unfinished()] == [(10, b"a" * (2 * SECTOR))]
    with pytest.raises(VddkError):  # and refuses to queue more on this handle
        submit(writes, 100, b"b" * SECTOR)
    assert keep


def test_a_request_vddk_refuses_at_once_is_raised_and_not_listed():
    api = FakeVddk(batch=8, refuse={20: s.VIX_E_INVALID_ARG})
    writes = AsyncWrites(api, handle=1, path="[ds] vm/vm.vmdk", depth=4)
    keep = submit(writes, 16, b"c" * (2 * SECTOR))
    with pytest.raises(VddkError) as caught:
        submit(writes, 20, b"d" * (2 * SECTOR))
    assert "at sector 20" in str(caught.value) and "(VIX error 3)" in str(caught.value)
    writes.drain()  # what close does: waits, raises nothing
    assert writes.unfinished() == [] and api.written == {16: b"c" * (2 * SECTOR)}
    assert keep
