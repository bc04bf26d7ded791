"""A local backend that, on a simulated power loss, loses what was never flushed.

A file written, closed and published under its name (link or rename) with no
``fsync`` of its own and no ``syncfs`` since is what ``put(durable=False)``
leaves: chunk files under ``sync_level=filesystem`` and lock files.  What a
crash leaves of such a file depends on the file system; ``outcome`` picks one:

- ``empty``: ext4 (``data=ordered``, delayed allocation) commits the new
  directory entry and inode in its journal while the data blocks were never
  allocated, so the file is there with no bytes.  Its ``auto_da_alloc``
  heuristic forces the data out only for a rename *over an existing* file
  (Documentation/admin-guide/ext4.rst, "auto_da_alloc"); a chunk is published
  under a new name, so it does not apply.
- ``zeros``: XFS can log the new size before the data is written: the file has
  its size and reads as zeros (the "NULL files after a crash" of its FAQ).
- ``missing``: the directory entry was not committed either.

Durable puts (``fsync`` of the file and its folder) survive, as does anything a
``sync`` covered.  Deletes and renames are taken as durable: the code under
test never relies on one being lost.
"""
import os
import threading

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.backend import LocalBackend

OUTCOMES = ("empty", "zeros", "missing")


class PowerLossBackend(LocalBackend):

    def __init__(self, root, outcome="empty"):
        super(PowerLossBackend, self).__init__(root)
        self.outcome = outcome
        self.unflushed = set()
        self.syncs = 0
        self._mutex = threading.Lock()

    def put(self, name, data, overwrite=True, durable=True, uncached=False):
        written = super(PowerLossBackend, self).put(name, data, overwrite, durable, uncached)
        with self._mutex:
            if written and not durable:
                self.unflushed.add(name)
            elif written:
                self.unflushed.discard(name)
        return written

    def sync(self):
        super(PowerLossBackend, self).sync()
        with self._mutex:
            self.unflushed.clear()
            self.syncs += 1

    def unflushed_chunks(self):
        with self._mutex:
            return sorted(name for name in self.unflushed if name.startswith("chunks/"))

    def power_loss(self):
        """What the storage shows after the crash: every unflushed file as ``outcome`` leaves it; their names."""
        with self._mutex:
            unflushed = sorted(self.unflushed)
            self.unflushed.clear()
        lost = []
        for name in unflushed:
            path = os.path.join(self.root, *name.split("/"))
            if not os.path.lexists(path):
                continue  # deleted or moved since
            lost.append(name)
            if self.outcome == "missing":
                os.unlink(path)
                continue
            size = os.path.getsize(path)
            with open(path, "r+b") as handle:
                handle.truncate(0)
                if self.outcome == "zeros":
                    handle.truncate(size)
        return lost


def abandon(writer):
    """Let a DiskWriter die as its process would in a power loss: no flush, no release, no more heartbeats."""
    lock = writer._lock
    lock._stop.set()
    if lock._thread is not None:
        lock._thread.join()
    writer.closed = True
