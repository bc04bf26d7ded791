# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A progress file that a role polling an asynchronous module turns into lines in the job output.

The file is JSON, replaced atomically (write, rename) at most once per
``interval`` seconds and at the end, so a reader never sees half of it.  The
temporary file has a random name and is created exclusively without
following links, so a link planted beside the progress file is never written
through.  A progress file whose folder does not exist is a one-line error
before any work starts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import threading
import time
import uuid

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError


class DiskProgress:
    def __init__(self, key, total_bytes, clock):
        self.key = key
        self.total_bytes = total_bytes
        self.done_bytes = 0
        self.started = clock()
        self.finished = None
        self.state = "running"

    def as_dict(self, now):
        elapsed = max((self.finished or now) - self.started, 1e-9)
        rate = self.done_bytes / elapsed
        remaining = max(self.total_bytes - self.done_bytes, 0)
        return {
            "disk": self.key,
            "state": self.state,
            "bytes_done": self.done_bytes,
            "bytes_total": self.total_bytes,
            "percent": round(100.0 * self.done_bytes / self.total_bytes, 1) if self.total_bytes else 100.0,
            "rate_mib_s": round(rate / 1048576.0, 1),
            "eta_seconds": round(remaining / rate) if rate > 0 and self.state == "running" else 0,
        }


class ProgressFile:
    """Per-disk progress of one run; ``path`` None keeps it in memory only."""

    def __init__(self, path=None, interval=1.0, clock=time.monotonic):
        if path:
            folder = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(folder):
                raise InvalidArgumentError("progress_file %s: its folder %s does not exist" % (path, folder))
        self.path = path
        self.interval = interval
        self.clock = clock
        self.disks = []
        self._last_write = None
        self._mutex = threading.Lock()  # several disks may advance at once, each from its own thread

    def start_disk(self, key, total_bytes):
        disk = DiskProgress(key, total_bytes, self.clock)
        self.disks.append(disk)
        self._write(force=True)
        return disk

    def advance(self, disk, byte_count):
        disk.done_bytes += byte_count
        self._write()

    def finish_disk(self, disk, state="done"):
        disk.state = state
        disk.finished = self.clock()
        self._write(force=True)

    def snapshot(self):
        now = self.clock()
        return {"disks": [disk.as_dict(now) for disk in self.disks]}

    def _write(self, force=False):
        if not self.path:
            return
        now = self.clock()
        if not force and self._last_write is not None and now - self._last_write < self.interval:
            return
        with self._mutex:
            self._last_write = now
            self._replace()

    def _replace(self):
        temporary = "%s.%s.tmp" % (self.path, uuid.uuid4().hex)
        data = json.dumps(self.snapshot()).encode("utf-8")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(temporary, self.path)
        except OSError as error:
            if error.errno != errno.EEXIST:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
            raise InvalidArgumentError("cannot write progress_file %s: %s" % (self.path, error.strerror or error))
