"""Chunk files written and read past the page cache (O_DIRECT), and every way the kernel can refuse it.

fcntl(2) F_SETFL and open(2): "EINVAL ... The filesystem does not support
the O_DIRECT flag" (tmpfs before Linux 6.6, FUSE without direct_io);
write(2)/read(2): "EINVAL ... fd was opened with O_DIRECT and either the
address specified in buf, the value specified in count, or the file offset
is not suitably aligned".  Each makes the backend use the page cache.
"""
import errno
import fcntl
import os
import subprocess

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import direct_io
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.backend import LocalBackend
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    RepositoryFullError,
    UnsafeFileError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import FAST_SCRYPT

CHUNK = 1 << 20


@pytest.fixture
def big_repo(tmp_path, credential):
    return Repository.create(str(tmp_path / "repo"), credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)


def files_below(root):
    return sorted(os.path.join(folder, name) for folder, _dirs, names in os.walk(root) for name in names)


def test_the_file_system_type_is_read_from_the_real_struct(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        ours = direct_io.file_system_type(fd)
    finally:
        os.close(fd)
    theirs = subprocess.run(["stat", "-f", "--format=%t", str(tmp_path)], stdout=subprocess.PIPE, check=True,
                            universal_newlines=True).stdout.strip()
    assert ours == int(theirs, 16)


def test_chunks_are_written_and_read_directly_where_the_file_system_takes_it(big_repo):
    data = [os.urandom(CHUNK), os.urandom(CHUNK - 4097), os.urandom(direct_io.MIN_SIZE + 1)]
    ids = [big_repo.chunks.put(item, durable=False)[0] for item in data]
    fd = os.open(big_repo.backend.root, os.O_RDONLY)
    try:
        expected = direct_io.usable_on(fd)
    finally:
        os.close(fd)
    assert big_repo.backend.direct_io is expected  # True on ext4, XFS and Btrfs; False on tmpfs, NFS
    for chunk_id, item in zip(ids, data):
        assert big_repo.chunks.get(chunk_id) == item
    sizes = sorted(os.path.getsize(path) for path in files_below(os.path.join(big_repo.backend.root, "chunks")))
    assert sizes == sorted(len(item) + 52 for item in data)  # padded for the disk, then cut to the real size
    assert big_repo.backend.direct_io is expected


class DirectIoStandIn:
    """O_DIRECT as a file system that takes it would answer, on any file system (tmpfs too); its I/O fails
    with ``fail`` (an errno) when given."""

    def __init__(self, monkeypatch, fail=None, refuse_flag=False):
        self.direct = set()
        self.fail = fail
        self.refuse_flag = refuse_flag
        real_fcntl, real_write, real_readv = fcntl.fcntl, os.write, os.readv
        monkeypatch.setattr(direct_io, "usable_on", lambda fd: True)

        def fake_fcntl(fd, command, arg=0):
            if command == fcntl.F_SETFL:
                if arg & os.O_DIRECT:
                    if self.refuse_flag:
                        raise OSError(errno.EINVAL, "Invalid argument")
                    self.direct.add(fd)
                else:
                    self.direct.discard(fd)
                return real_fcntl(fd, command, arg & ~os.O_DIRECT)
            return real_fcntl(fd, command, arg)

        def fake_write(fd, data):
            if fd in self.direct and self.fail:
                raise OSError(self.fail, os.strerror(self.fail))
            return real_write(fd, data)

        def fake_readv(fd, buffers):
            if fd in self.direct and self.fail:
                raise OSError(self.fail, os.strerror(self.fail))
            return real_readv(fd, buffers)
        monkeypatch.setattr(direct_io.fcntl, "fcntl", fake_fcntl)
        monkeypatch.setattr(direct_io.os, "write", fake_write)
        monkeypatch.setattr(direct_io.os, "readv", fake_readv)


def test_a_file_system_that_refuses_o_direct_gets_page_cache_io_from_then_on(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    DirectIoStandIn(monkeypatch, refuse_flag=True)
    first, second = os.urandom(CHUNK), os.urandom(CHUNK)
    assert backend.put("chunks/aa/one", first, overwrite=False, durable=False, uncached=True)
    assert backend.direct_io is False
    assert backend.put("chunks/aa/two", second, overwrite=False, durable=False, uncached=True)
    assert backend.get("chunks/aa/one", uncached=True) == first and backend.get("chunks/aa/two") == second


@pytest.mark.parametrize("way", ["write", "read"])
def test_a_refused_first_transfer_is_done_again_through_the_page_cache(tmp_path, monkeypatch, way):
    backend = LocalBackend(str(tmp_path / "store"))
    data = os.urandom(3 * direct_io.MIN_SIZE + 5)
    if way == "read":
        backend.put("chunks/aa/file", data, overwrite=False, durable=False)
    stand_in = DirectIoStandIn(monkeypatch, fail=errno.EINVAL)  # an alignment this device does not take
    if way == "write":
        assert backend.put("chunks/aa/file", data, overwrite=False, durable=False, uncached=True)
    assert backend.get("chunks/aa/file", uncached=True) == data
    assert backend.direct_io is False and stand_in.direct == set()


def test_direct_io_that_works_round_trips_odd_sizes(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    stand_in = DirectIoStandIn(monkeypatch)
    data = os.urandom(2 * direct_io.MIN_SIZE + 4095)
    assert backend.put("chunks/dd/file", data, overwrite=False, durable=False, uncached=True)
    assert os.path.getsize(str(tmp_path / "store" / "chunks" / "dd" / "file")) == len(data)
    assert backend.get("chunks/dd/file", max_size=len(data), uncached=True) == data
    assert backend.direct_io is True and stand_in.direct  # the descriptors were switched to O_DIRECT


def test_a_file_grown_past_its_limit_is_refused_when_read_directly(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    DirectIoStandIn(monkeypatch)
    data = os.urandom(2 * direct_io.MIN_SIZE)
    backend.put("chunks/ee/file", data, overwrite=False, durable=False, uncached=True)

    class Grown:  # what the size checks saw, before the file grew
        st_size = direct_io.MIN_SIZE
    monkeypatch.setattr(LocalBackend, "_regular", staticmethod(lambda info, name, max_size=None: Grown))
    with pytest.raises(UnsafeFileError, match="grew beyond"):
        backend.get("chunks/ee/file", max_size=len(data) - 1, uncached=True)


def test_a_full_disk_during_a_direct_write_is_a_one_line_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    stand_in = DirectIoStandIn(monkeypatch, fail=errno.ENOSPC)
    with pytest.raises(RepositoryFullError) as raised:
        backend.put("chunks/bb/file", os.urandom(2 * direct_io.MIN_SIZE), overwrite=False, durable=False,
                    uncached=True)
    assert stand_in.direct
    assert str(raised.value) == "no space left in the repository while writing chunks/bb/file"
    assert files_below(str(tmp_path / "store")) == []


def test_small_files_and_files_not_marked_uncached_use_the_page_cache(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    used = []
    monkeypatch.setattr(direct_io, "write_to", lambda *args: used.append(args) or False)
    monkeypatch.setattr(direct_io, "read_from", lambda *args: used.append(args))
    backend.put("chunks/cc/small", os.urandom(direct_io.MIN_SIZE - 1), overwrite=False, durable=False, uncached=True)
    backend.put("backups/big", os.urandom(4 * direct_io.MIN_SIZE), overwrite=False)
    backend.get("chunks/cc/small", uncached=True)
    backend.get("backups/big")
    assert used == [] and backend.direct_io is None
