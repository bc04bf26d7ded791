"""kill -9 of writers, concurrent writers, and locks between writers and prune."""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import flush, locks
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import LockedError

from .helpers import CHUNK, PASSWORD, backup, read_back
from .writer_process import disk_data

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), ".build", "collections")


def _writer(repo_path, vm_name, seed, blocks):
    return subprocess.Popen([sys.executable, os.path.join(HERE, "writer_process.py"), COLLECTIONS, repo_path,
                             PASSWORD, vm_name, str(seed), str(blocks)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)


def _wait_for(process, word):
    for line in process.stdout:
        if line.startswith(word):
            return line.split()
    raise AssertionError("writer ended before %r: %s" % (word, process.stderr.read()))


def _chunk_files(repo_path):
    return {name for _d, _s, files in os.walk(os.path.join(repo_path, "chunks")) for name in files}


def test_kill_9_mid_disk_leaves_a_consistent_repository_and_prune_reclaims(repo, repo_path):
    earlier = backup(repo, {"name": "db01", "uuid": "uuid-db01"}, {"2000": os.urandom(CHUNK * 6)})
    process = _writer(repo_path, "app01", seed=1, blocks=3000)
    staged_id = _wait_for(process, "staged")[1]
    _wait_for(process, "progress")
    time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(_chunk_files(repo_path)) > 6  # the victim did store chunks
    # the partial backup is invisible, the earlier one intact
    assert [m.backup_id for m in repo.list_backups()] == [earlier.backup_id]
    assert repo.verify()["ok"]
    assert read_back(repo, earlier.backup_id, "2000")
    # the dead writer's lock is stale, so prune may run; a fresh staged backup survives, its orphan chunks do not
    assert len(locks.list_locks(repo.backend)) == 1
    report = repo.prune(grace=0)
    assert report["stale_locks_removed"] == 1 and report["chunks_removed"] > 0
    assert report["abandoned_staged_backups"] == []
    # what survives: the committed backup's chunks and the NVRAM the staged backup already stored
    kept = repo.list_backups()[0].chunk_ids() | repo.staged_backup(staged_id).chunk_ids()
    assert len(_chunk_files(repo_path)) == len(kept)
    assert [s["backup_id"] for s in repo.list_staged()] == [staged_id]
    # once old enough, the abandoned staged backup goes too
    report = repo.prune(abandoned_after=0, grace=0)
    assert [s["backup_id"] for s in report["abandoned_staged_backups"]] == [staged_id]
    assert repo.list_staged() == [] and repo.verify()["ok"]
    assert locks.list_locks(repo.backend) == []


def test_kill_9_leaves_a_marker_of_unflushed_chunks_that_the_next_backup_clears(repo, repo_path):
    process = _writer(repo_path, "app01", seed=1, blocks=3000)
    _wait_for(process, "progress")
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    # its chunk files went out unflushed (sync_level filesystem): its marker says so, its lock's pid is dead
    assert len(repo.backend.list(flush.PREFIX)) == 1
    written = len(_chunk_files(repo_path))
    item = backup(repo, {"name": "db01", "uuid": "uuid-db01"}, {"2000": os.urandom(CHUNK * 2)})
    assert repo.backend.list(flush.PREFIX) == []
    # the host did not crash: its page cache held every chunk file, the flush made them stable, none was damaged
    assert any("%d chunk file(s) written since were read, 0 did not authenticate" % written in text
               for text in item.warnings())
    assert repo.backend.list("quarantine") == [] and repo.verify()["ok"]


def test_kill_9_at_random_moments_never_shows_a_half_backup(repo, repo_path):
    rng = random.Random(7)
    for attempt in range(4):
        process = _writer(repo_path, "vm%d" % attempt, seed=attempt, blocks=400)
        time.sleep(rng.uniform(0.3, 1.2))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    for item in repo.list_backups():
        seed = int(item.vm["name"][2:])
        assert read_back(repo, item.backup_id, "2000") == disk_data(seed, 400)
        assert item.secrets["encryption.bundle"] == "bundle-" + item.vm["name"]
    assert repo.verify()["ok"]
    repo.prune(abandoned_after=0, grace=0)
    referenced = set()
    for item in repo.list_backups():
        referenced |= {cid.hex() for cid in item.chunk_ids()}
    assert _chunk_files(repo_path) == referenced
    assert repo.verify()["ok"]


def test_concurrent_writers_both_commit(repo, repo_path):
    processes = [_writer(repo_path, "vm%d" % n, seed=n, blocks=150) for n in (1, 2, 3)]
    ids = {}
    for n, process in zip((1, 2, 3), processes):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids[n] = [line.split()[1] for line in out.splitlines() if line.startswith("committed")][0]
    for n, backup_id in ids.items():
        assert read_back(repo, backup_id, "2000") == disk_data(n, 150)
    assert repo.verify()["ok"] and locks.list_locks(repo.backend) == []


def test_prune_refuses_beside_a_live_writer_and_writers_refuse_beside_prune(repo):
    staged = repo.start_backup({"name": "app01"})
    writer = staged.open_disk("2000", CHUNK * 2)
    with pytest.raises(LockedError, match="in use: shared lock of write disk 2000"):
        repo.prune()
    with pytest.raises(LockedError):
        repo.prune(dry_run=True)
    writer.close()
    exclusive = locks.acquire(repo.backend, locks.EXCLUSIVE, "prune")
    try:
        with pytest.raises(LockedError, match="exclusive lock of prune"):
            staged.open_disk("2001", CHUNK)
        with pytest.raises(LockedError):
            repo.start_backup({"name": "db01"})
    finally:
        exclusive.release()
    assert locks.list_locks(repo.backend) == []


def _plant_lock(repo, mtime=None, **info):
    data = {"kind": locks.SHARED, "pid": 1, "hostname": "proxy-7", "heartbeat": time.time(),
            "created": time.time(), "operation": "write disk 2000", "backup_id": None}
    data.update(info)
    repo.backend.put("locks/shared-planted", json.dumps(data).encode())
    if mtime is not None:
        os.utime(os.path.join(repo.location, "locks", "shared-planted"), (mtime, mtime))


def test_lock_of_another_host_is_live_until_its_file_is_old_by_the_storage_clock(repo):
    _plant_lock(repo)
    with pytest.raises(LockedError, match="proxy-7"):
        repo.prune()
    # the heartbeat written inside the file says nothing: only the time the storage gave the file counts
    _plant_lock(repo, heartbeat=time.time() - 10 * locks.STALE_AFTER)
    with pytest.raises(LockedError, match="proxy-7"):
        repo.prune()
    _plant_lock(repo, mtime=time.time() - locks.STALE_AFTER - 5)
    assert repo.prune()["stale_locks_removed"] == 1


def test_lock_of_a_dead_local_process_is_stale(repo):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _plant_lock(repo, pid=dead.pid, hostname=socket.gethostname())
    now = repo.backend.now()
    assert locks.is_stale(json.loads(repo.backend.get("locks/shared-planted")), now, now)
    assert repo.prune()["stale_locks_removed"] == 1


def test_heartbeat_touches_a_held_lock_and_never_recreates_a_removed_one(repo):
    lock = locks.Lock(repo.backend, locks.SHARED, "test", heartbeat_interval=0.05).acquire()
    path = os.path.join(repo.location, lock.name)
    try:
        os.utime(path, (1, 1))
        time.sleep(0.3)
        assert os.stat(path).st_mtime > time.time() - 60
        lock.check()
        os.remove(path)
        time.sleep(0.3)
        assert not os.path.exists(path) and lock.lost
        with pytest.raises(LockedError, match="removed while it ran"):
            lock.check()
    finally:
        lock.release()
