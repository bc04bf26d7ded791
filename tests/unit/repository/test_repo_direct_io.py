"""Chunk files written past the page cache (O_DIRECT), and every way the kernel can refuse it.

open(2): "EINVAL The filesystem does not support the O_DIRECT flag" (tmpfs);
write(2): "EINVAL ... fd was opened with O_DIRECT and either the address
specified in buf, the value specified in count, or the file offset is not
suitably aligned".  Both make the backend write through the page cache.
"""
import errno
import os
import subprocess

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import direct_io
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.backend import LocalBackend
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import RepositoryFullError
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


def test_chunks_are_written_directly_where_the_file_system_takes_it_and_read_back(big_repo):
    data = [os.urandom(CHUNK), os.urandom(CHUNK - 4097), os.urandom(direct_io.MIN_SIZE + 1)]
    ids = [big_repo.chunks.put(item, durable=False)[0] for item in data]
    fd = os.open(big_repo.backend.root, os.O_RDONLY)
    try:
        expected = direct_io.usable_on(fd)
    finally:
        os.close(fd)
    assert big_repo.backend.direct_writes is expected  # True on ext4, XFS and Btrfs; False on tmpfs
    for chunk_id, item in zip(ids, data):
        assert big_repo.chunks.get(chunk_id) == item
    sizes = sorted(os.path.getsize(path) for path in files_below(os.path.join(big_repo.backend.root, "chunks")))
    assert sizes == sorted(len(item) + 52 for item in data)  # padded for the disk, then cut to the real size


def _refusing_open(monkeypatch):
    real_open = os.open

    def refusing(path, flags, *args, **kwargs):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")  # as tmpfs answers
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(direct_io.os, "open", refusing)


def test_a_file_system_that_refuses_o_direct_gets_page_cache_writes_from_then_on(big_repo, monkeypatch):
    monkeypatch.setattr(direct_io, "usable_on", lambda fd: True)
    _refusing_open(monkeypatch)
    first, second = os.urandom(CHUNK), os.urandom(CHUNK)
    first_id, _written = big_repo.chunks.put(first, durable=False)
    assert big_repo.backend.direct_writes is False
    second_id, _written = big_repo.chunks.put(second, durable=False)
    assert big_repo.chunks.get(first_id) == first and big_repo.chunks.get(second_id) == second


def _failing_direct_writes(monkeypatch, code, message):
    """direct_io's descriptors open on any file system (O_DIRECT dropped, so tmpfs takes part too) and their
    writes fail with ``code``."""
    monkeypatch.setattr(direct_io, "usable_on", lambda fd: True)
    real_open, real_write = os.open, os.write
    opened = set()

    def open_direct(path, flags, *args, **kwargs):
        fd = real_open(path, flags & ~os.O_DIRECT, *args, **kwargs)
        if flags & os.O_DIRECT:
            opened.add(fd)
        return fd

    def write(fd, data):
        if fd in opened:
            raise OSError(code, message)
        return real_write(fd, data)
    monkeypatch.setattr(direct_io.os, "open", open_direct)
    monkeypatch.setattr(direct_io.os, "write", write)
    return opened


def test_a_refused_first_write_leaves_an_empty_file_for_the_page_cache_write(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    opened = _failing_direct_writes(monkeypatch, errno.EINVAL, "Invalid argument")  # an alignment it does not take
    data = os.urandom(3 * direct_io.MIN_SIZE + 5)
    assert backend.put("chunks/aa/file", data, overwrite=False, durable=False, uncached=True)
    assert opened and backend.get("chunks/aa/file") == data and backend.direct_writes is False


def test_a_full_disk_during_a_direct_write_is_a_one_line_error_and_leaves_no_temp_file(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    opened = _failing_direct_writes(monkeypatch, errno.ENOSPC, "No space left on device")
    with pytest.raises(RepositoryFullError) as raised:
        backend.put("chunks/bb/file", os.urandom(2 * direct_io.MIN_SIZE), overwrite=False, durable=False,
                    uncached=True)
    assert opened
    assert str(raised.value) == "no space left in the repository while writing chunks/bb/file"
    assert files_below(str(tmp_path / "store")) == []


def test_small_files_and_files_not_marked_uncached_go_through_the_page_cache(tmp_path, monkeypatch):
    backend = LocalBackend(str(tmp_path / "store"))
    used = []
    monkeypatch.setattr(direct_io, "write_file", lambda *args: used.append(args) or False)
    backend.put("chunks/cc/small", os.urandom(direct_io.MIN_SIZE - 1), overwrite=False, durable=False, uncached=True)
    backend.put("backups/big", os.urandom(4 * direct_io.MIN_SIZE), overwrite=False)
    assert used == [] and backend.direct_writes is None
