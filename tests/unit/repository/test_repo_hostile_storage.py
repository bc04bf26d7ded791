"""The repository under hostile and unlucky storage (issue 9): every item has a test here.

Real processes where the scenario is multi-process (a writer with a slow
clock, a restore while a prune runs); planted links, FIFOs, devices, sparse
giants and hostile key slots where the repository reads.
"""
import base64
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError, VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import envelope, locks, manifest, repository as repo_module
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.backend import LocalBackend
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.chunks import chunk_name
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import (
    IntegrityError,
    LockedError,
    RepositoryFullError,
    WrongKeyError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, PASSWORD, backup, blocks_of, read_back
from .writer_process import disk_data

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTIONS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(HERE))), ".build", "collections")
VM = {"name": "app01", "uuid": "u-app"}


@pytest.fixture(autouse=True)
def no_hang():
    """Old code hung on a FIFO or read /dev/zero forever: fail instead of hanging the suite."""
    def expired(_signum, _frame):
        raise AssertionError("the repository hung")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


_CLOCK = [1764460800]


def _timed_backup(repo, vm, data):
    """A backup whose id is a minute after the previous one's (ids sort by start time, to the second)."""
    _CLOCK[0] += 60
    staged = repo.start_backup(vm, backup_id=manifest.new_backup_id(now=_CLOCK[0]))
    with staged.open_disk("2000", len(data)) as writer:
        writer.write_blocks(blocks_of(data), threads=1)
    return staged.commit()


def _path(repo, name):
    return os.path.join(repo.location, *name.split("/"))


def _chunk_files(repo):
    return {name for _d, _s, files in os.walk(os.path.join(repo.location, "chunks")) for name in files}


def _process(script, *args, **env):
    environ = dict(os.environ)
    environ.update(env)
    return subprocess.Popen([sys.executable, os.path.join(HERE, script), COLLECTIONS] + list(args),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=environ)


def _wait_for(process, word):
    for line in process.stdout:
        if line.startswith(word):
            return line.split()
    raise AssertionError("process ended before %r: %s" % (word, process.stderr.read()))


def _resume(process):
    process.stdin.write("go\n")
    process.stdin.flush()
    out, err = process.communicate(timeout=120)
    return out, err


# -- 1. nothing under the repository is followed -------------------------------------------------------------
def test_prune_never_follows_a_symlink_out_of_the_repository(repo, tmp_path):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK * 2)})
    victim = tmp_path / "victim"
    victim.mkdir()
    for number in range(5):
        (victim / ("file%d" % number)).write_bytes(b"precious")
    (victim / "ab").mkdir()
    (victim / "ab" / ("ab" + "0" * 62)).write_bytes(b"precious")
    root = repo.location
    os.makedirs(os.path.join(root, "staging"), exist_ok=True)
    os.symlink(str(victim), os.path.join(root, "staging", "20200101T000000Z-deadbeef"))
    os.makedirs(os.path.join(root, "staging", "20200101T000000Z-feedface"))
    os.symlink(str(victim / "file0"), os.path.join(root, "staging", "20200101T000000Z-feedface", "vm"))
    # A real chunk folder, chosen before the planted "ab" link exists: listing afterwards could pick the link
    # itself, and the test would plant its own file in the victim.
    real_chunk_folder = sorted(os.listdir(os.path.join(root, "chunks")))[0]
    os.symlink(str(victim / "ab"), os.path.join(root, "chunks", "ab"))
    os.symlink(str(victim / "file1"), os.path.join(root, "chunks", real_chunk_folder, "cd" + "1" * 62))
    os.symlink(str(victim / "file2"), os.path.join(root, "locks-not-a-lock"))
    os.makedirs(os.path.join(root, "locks"), exist_ok=True)
    os.symlink(str(victim / "file3"), os.path.join(root, "locks", "shared-planted"))
    os.symlink(str(victim / "file4"), os.path.join(root, ".tmp-" + "0" * 32))
    report = repo.prune(abandoned_after=0, grace=0, keep_last=1)
    repo.verify()
    assert read_back(repo, item.backup_id, "2000")
    assert sorted(os.listdir(str(victim))) == ["ab", "file0", "file1", "file2", "file3", "file4"]
    assert os.listdir(str(victim / "ab")) == ["ab" + "0" * 62]
    assert all((victim / ("file%d" % number)).read_bytes() == b"precious" for number in range(5))
    assert report["removed_backups"] == []


def test_a_link_where_a_folder_belongs_is_refused_in_one_line(repo, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.rename(os.path.join(repo.location, "keys"), str(tmp_path / "keys-moved"))
    os.symlink(str(tmp_path / "keys-moved"), os.path.join(repo.location, "keys"))
    with pytest.raises(IntegrityError, match="never follows links"):
        Repository.open(repo.location, Credential.from_password(PASSWORD))


# -- 8. bounded reads of regular files only ---------------------------------------------------------------------
def test_hostile_files_are_refused_not_read(repo, repo_path):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK * 3)})
    index = repo.read_manifest(item.backup_id).disk_index("2000")
    zero_link = _path(repo, chunk_name(index.entries[0]))
    os.remove(zero_link)
    os.symlink("/dev/zero", zero_link)
    giant = _path(repo, chunk_name(index.entries[1]))
    os.truncate(giant, 3 << 30)  # sparse: 3 GiB that take no room
    os.makedirs(os.path.join(repo_path, "locks"), exist_ok=True)
    os.symlink("/dev/zero", os.path.join(repo_path, "locks", "shared-zero"))
    os.mkfifo(os.path.join(repo_path, "keys", "ffffffff"))
    opened = Repository.open(repo_path, Credential.from_password(PASSWORD))
    assert any("keys/ffffffff" in warning for warning in opened.warnings)
    report = opened.verify(quarantine=False)
    errors = sorted(problem["error"] for problem in report["corrupt"])
    assert len(errors) == 2
    assert any("more than the %d it may have" % (CHUNK + envelope.OVERHEAD) in error for error in errors)
    assert any("not a regular file" in error for error in errors)
    opened.prune(grace=0)  # the lock link is not a lock, and nothing it points to is touched
    assert os.path.islink(os.path.join(repo_path, "locks", "shared-zero"))
    os.remove(os.path.join(repo_path, "config"))
    os.symlink("/dev/zero", os.path.join(repo_path, "config"))
    with pytest.raises(IntegrityError, match="not a regular file"):
        Repository.open(repo_path, Credential.from_password(PASSWORD))


def test_a_manifest_that_is_a_link_is_an_unreadable_backup(repo):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    path = _path(repo, "backups/" + item.backup_id)
    os.remove(path)
    os.symlink("/dev/zero", path)
    errors = []
    assert repo.list_backups(errors=errors) == [] and "not a regular file" in errors[0]["error"]


# -- 2. a slow clock loses nothing; a lost lock records nothing; young chunks survive --------------------------------
def test_a_writer_whose_clock_is_behind_keeps_its_lock_and_its_chunks(repo, repo_path):
    writer = _process("writer_process.py", repo_path, PASSWORD, "slow01", "5", "60",
                      VMCRYPT_TEST_CLOCK_SKEW="660", VMCRYPT_TEST_PAUSE="1")
    try:
        _wait_for(writer, "staged")
        _wait_for(writer, "progress")
        stored = _chunk_files(repo)
        assert stored
        # another host's prune, with no grace at all: only the lock protects the writer, and it is live
        with pytest.raises(LockedError, match="write disk 2000"):
            repo.prune(grace=0, abandoned_after=0)
        assert _chunk_files(repo) >= stored
    finally:
        out, err = _resume(writer)
    assert writer.returncode == 0, err
    backup_id = [line.split()[1] for line in out.splitlines() if line.startswith("committed")][0]
    assert read_back(repo, backup_id, "2000") == disk_data(5, 60)
    assert repo.verify()["ok"]


def test_a_writer_whose_lock_vanished_records_nothing_and_prune_keeps_its_chunks(repo, repo_path):
    writer = _process("writer_process.py", repo_path, PASSWORD, "frozen01", "6", "60", VMCRYPT_TEST_PAUSE="1")
    try:
        _wait_for(writer, "staged")
        _wait_for(writer, "progress")
        stored = _chunk_files(repo)
        # the writer froze; another prune judged its lock stale and removed it
        for name in locks.list_locks(repo.backend):
            repo.backend.delete(name)
        report = repo.prune(abandoned_after=0)
        assert report["chunks_removed"] == 0 and report["chunks_kept_in_grace"] == len(stored)
        assert _chunk_files(repo) == stored
    finally:
        out, err = _resume(writer)
    assert writer.returncode != 0 and "committed" not in out
    assert "LockedError" in err and "removed while it ran" in err
    assert repo.list_backups() == []


# -- 11. a planted lock cannot block writers forever --------------------------------------------------------------
def test_a_planted_far_future_lock_does_not_block_writers(repo):
    future = time.time() + 10 * 365 * 86400
    repo.backend.put("locks/exclusive-planted", json.dumps(
        {"kind": "exclusive", "pid": 1, "hostname": "evil", "heartbeat": future, "operation": "prune"}).encode())
    os.utime(_path(repo, "locks/exclusive-planted"), (future, future))
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    assert repo.prune(grace=0)["stale_locks_removed"] == 1
    assert read_back(repo, item.backup_id, "2000")


# -- 3. readers hold a shared lock -------------------------------------------------------------------------------
def test_prune_is_refused_while_a_restore_reads(repo, repo_path):
    data = disk_data(9, 20)
    first = _timed_backup(repo, VM, data)
    _timed_backup(repo, VM, os.urandom(CHUNK * 2))
    reader = _process("reader_process.py", repo_path, PASSWORD, first.backup_id, "2000")
    try:
        _wait_for(reader, "progress")
        with pytest.raises(LockedError, match="restore backup %s" % first.backup_id):
            repo.prune(keep_last=1, grace=0)
    finally:
        out, err = _resume(reader)
    assert reader.returncode == 0, err
    import hashlib
    assert out.split()[-1] == hashlib.sha256(data).hexdigest()
    assert [b["backup_id"] for b in repo.prune(keep_last=1, grace=0)["removed_backups"]] == [first.backup_id]


def test_read_disk_holds_a_shared_lock_while_it_runs(repo):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK * 3)})
    blocks = repo.read_disk(item.backup_id, "2000")
    next(blocks)
    with pytest.raises(LockedError, match="read disk 2000"):
        repo.prune(grace=0)
    assert len(list(blocks)) == 2
    assert repo.prune(grace=0)["removed_backups"] == []


# -- 4. quarantine -----------------------------------------------------------------------------------------------
def test_a_quarantined_chunk_is_stored_again_by_the_next_backup(repo):
    data = os.urandom(CHUNK * 3)
    first = backup(repo, VM, {"2000": data})
    damaged = repo.read_manifest(first.backup_id).disk_index("2000").entries[1]
    path = _path(repo, chunk_name(damaged))
    raw = bytearray(open(path, "rb").read())
    raw[-1] ^= 1
    open(path, "wb").write(bytes(raw))
    report = repo.verify()
    assert report["corrupt_count"] == 1 and report["quarantined"] == [damaged.hex()]
    assert any("quarantine" in warning for warning in repo.warnings)
    second = backup(repo, VM, {"2000": data})
    assert second.document["stats"]["new_chunks"] == 1
    assert repo.verify()["ok"]
    assert read_back(repo, first.backup_id, "2000") == data == read_back(repo, second.backup_id, "2000")
    assert repo.report()["quarantined_count"] == 1


def test_check_mode_verify_moves_nothing(repo):
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    path = _path(repo, chunk_name(repo.read_manifest(item.backup_id).disk_index("2000").entries[0]))
    open(path, "r+b").write(b"X")
    assert repo.verify(quarantine=False)["quarantined_count"] == 0 and os.path.exists(path)


# -- 5. separate keys: a config forged from a chunk name ----------------------------------------------------------
def test_a_config_forged_from_a_chunk_name_is_refused(repo, repo_path, credential):
    path = os.path.join(repo_path, "config")
    forged = json.load(open(path))
    forged["chunk_size"] = CHUNK * 2
    body = dict((key, value) for key, value in forged.items() if key != "mac")
    prefix = getattr(repo_module, "CONFIG_MAC_PREFIX", b"vmcrypt.backup config v1\x00")
    block = prefix + json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    assert len(block) < CHUNK
    item = backup(repo, VM, {"2000": block})  # a VM disk holds those bytes
    forged["mac"] = repo.read_manifest(item.backup_id).disk_index("2000").entries[0].hex()  # the chunk's file name
    json.dump(forged, open(path, "w"))
    with pytest.raises(IntegrityError, match="config .* was modified"):
        Repository.open(repo_path, credential)


# -- 6. a key per file -------------------------------------------------------------------------------------------
def test_every_file_has_its_own_key_so_no_repository_wide_nonce_budget_exists(repo):
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    data = os.urandom(64)
    one = envelope.seal(repo.keys, envelope.MAGIC_CHUNK, b"c", data)
    two = envelope.seal(repo.keys, envelope.MAGIC_CHUNK, b"c", data)
    start = envelope.HEADER.size
    assert one[start:start + envelope.SALT_SIZE] != two[start:start + envelope.SALT_SIZE]
    nonce = one[start + envelope.SALT_SIZE:start + envelope.SALT_SIZE + envelope.NONCE_SIZE]
    with pytest.raises(InvalidTag):  # the repository's encryption key alone opens nothing
        AESGCM(repo.keys.encryption_key).decrypt(nonce, one[start + envelope.SALT_SIZE + envelope.NONCE_SIZE:],
                                                 one[:start] + b"c")
    assert envelope.open_sealed(repo.keys, envelope.MAGIC_CHUNK, b"c", one, "x") == data


# -- 7 and 14. hostile key slots ------------------------------------------------------------------------------------
def _extra_slot(repo_path, slot_id, **kdf):
    slot = json.load(open(os.path.join(repo_path, "keys", os.listdir(os.path.join(repo_path, "keys"))[0])))
    slot["id"] = slot_id
    for key, value in kdf.items():
        if value is KeyError:
            slot["kdf"].pop(key)
        else:
            slot["kdf"][key] = value
    json.dump(slot, open(os.path.join(repo_path, "keys", slot_id), "w"))


@pytest.mark.parametrize("kdf, message", [
    ({"n": 1 << 22, "r": 32}, "memory"),
    ({"n": 1 << 30, "r": 8}, "memory"),
    ({"p": 1 << 20}, "out-of-range"),
    ({"n": "abc"}, "scrypt n 'abc'"),
    ({"n": None}, "scrypt n None"),
    ({"n": KeyError}, "scrypt n None"),
    ({"r": 8.5}, "scrypt r 8.5"),
    ({"n": True}, "scrypt n True"),
    ({"salt": 5}, "salt"),
    ({"name": "argon9"}, "unknown key derivation"),
])
def test_hostile_scrypt_parameters_are_refused_and_the_slot_skipped(repo, repo_path, kdf, message):
    _extra_slot(repo_path, "0badf00d", **kdf)
    opened = Repository.open(repo_path, Credential.from_password(PASSWORD))
    assert len(opened.warnings) == 1 and "keys/0badf00d skipped" in opened.warnings[0]
    assert message in opened.warnings[0] and "\n" not in opened.warnings[0]
    with pytest.raises(WrongKeyError, match="1 unreadable key slot"):
        Repository.open(repo_path, Credential.from_password("wrong"))
    os.remove(os.path.join(repo_path, "keys", repo.slot_id))
    with pytest.raises(IntegrityError, match="no readable key slot"):
        Repository.open(repo_path, Credential.from_password(PASSWORD))


def test_a_new_slot_with_hostile_scrypt_parameters_is_refused(repo):
    with pytest.raises(InvalidArgumentError, match="memory"):
        repo.add_slot(Credential.from_password("x"), scrypt_params={"n": 1 << 22, "r": 32})


# -- 10. a removed slot put back still opens (documented) -----------------------------------------------------------
def test_a_removed_slot_put_back_still_opens_the_repository(repo, repo_path):
    old = repo.add_slot(Credential.from_password("old password"), scrypt_params=FAST_SCRYPT)
    copy = open(os.path.join(repo_path, "keys", old), "rb").read()
    repo.remove_slot(old)
    item = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    open(os.path.join(repo_path, "keys", old), "wb").write(copy)
    reopened = Repository.open(repo_path, Credential.from_password("old password"))
    assert read_back(reopened, item.backup_id, "2000")


# -- 14. one-line errors instead of raw exceptions ----------------------------------------------------------------
@pytest.mark.parametrize("change", [{"id": KeyError}, {"id": "ü" * 32}, {"id": None}, {"id": 5},
                                    {"mac": KeyError}, {"version": "abc"}])
def test_a_malformed_config_is_a_one_line_error(repo, repo_path, credential, change):
    path = os.path.join(repo_path, "config")
    config = json.load(open(path))
    for key, value in change.items():
        if value is KeyError:
            config.pop(key)
        else:
            config[key] = value
    json.dump(config, open(path, "w"))
    with pytest.raises(VmcryptError) as raised:
        Repository.open(repo_path, credential)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("threads", [-1, 0, 1000, 2.5, True])
def test_verify_threads_are_checked(repo, threads):
    with pytest.raises(InvalidArgumentError, match="threads"):
        repo.verify(threads=threads)


@pytest.mark.parametrize("hours", [math.inf, -1.0, math.nan, "12"])
def test_prune_ages_are_finite(repo, hours):
    with pytest.raises(InvalidArgumentError, match="abandoned_after"):
        repo.prune(abandoned_after=hours)
    with pytest.raises(InvalidArgumentError, match="grace"):
        repo.prune(grace=hours)
    with pytest.raises(InvalidArgumentError, match="keep_last"):
        repo.prune(keep_last=-1)


# -- 9. the chain of each VM's backups ----------------------------------------------------------------------------
def test_deleting_the_newest_backup_breaks_the_chain(repo):
    items = [_timed_backup(repo, VM, os.urandom(CHUNK)) for _round in range(3)]
    other = backup(repo, {"name": "db01", "uuid": "u-db"}, {"2000": os.urandom(CHUNK)})
    assert items[1].previous["backup_id"] == items[0].backup_id and items[0].previous is None
    assert repo.read_manifest(items[2].backup_id).summary()["previous_backup_id"] == items[1].backup_id
    assert repo.verify()["ok"]
    os.remove(_path(repo, "backups/" + items[2].backup_id))
    report = repo.verify()
    assert not report["ok"] and [e["backup_id"] for e in report["chain_errors"]] == [items[2].backup_id]
    assert "missing" in report["chain_errors"][0]["error"] and other.backup_id not in report["backups_failed"]
    # the next backup of the VM carries the warning
    after = _timed_backup(repo, VM, os.urandom(CHUNK))
    assert any("rolled back" in warning for warning in after.warnings())


def test_pruning_old_backups_keeps_the_chain_whole(repo):
    for _round in range(4):
        _timed_backup(repo, VM, os.urandom(CHUNK))
    for _round in range(2):  # started in the same second: the one committed last is kept whatever its id
        last = backup(repo, VM, {"2000": os.urandom(CHUNK)})
    kept = [b["backup_id"] for b in repo.prune(keep_last=1, grace=0)["kept_backups"]]
    assert last.backup_id in kept and repo.verify()["ok"]


def test_a_deleted_head_record_is_reported(repo):
    for _round in range(2):
        _timed_backup(repo, VM, os.urandom(CHUNK))
    for name in repo.backend.list("heads"):
        repo.backend.delete(name)
    report = repo.verify()
    assert not report["ok"] and "head record" in report["chain_errors"][0]["error"]


# -- 13. prune on a full file system ----------------------------------------------------------------------------
class FullBackend(LocalBackend):
    """A local backend with a quota, as a full file system would behave."""

    quota = None

    def put(self, name, data, overwrite=True, durable=True, uncached=False):
        if self.quota is not None and self.total_size("")[1] + len(data) > self.quota:
            raise RepositoryFullError("no space left in the repository while writing %s" % name)
        return super(FullBackend, self).put(name, data, overwrite, durable, uncached)


def test_prune_runs_on_a_full_file_system(tmp_path, credential):
    backend = FullBackend(str(tmp_path / "repo"))
    repo = Repository.create(backend, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
    backend.quota = backend.total_size("")[1] + 40 * CHUNK
    with pytest.raises(RepositoryFullError):
        for _round in range(100):
            _timed_backup(repo, VM, os.urandom(CHUNK * 4))
    backend.quota = backend.total_size("")[1]  # not one byte left
    with pytest.raises(RepositoryFullError):
        locks.acquire(backend, locks.SHARED, "test")
    report = repo.prune(keep_last=1, grace=0, abandoned_after=0)
    assert report["removed_backups"] and report["chunks_removed"] and report["used_reserve"]
    assert backend.exists("reserve") and repo.verify()["ok"]
    _timed_backup(repo, VM, os.urandom(CHUNK * 4))


def test_key_slot_file_format_is_base64_json(repo, repo_path):
    slot = json.load(open(os.path.join(repo_path, "keys", repo.slot_id)))
    assert slot["version"] == 2 and base64.b64decode(slot["wrapped_keys"])


def test_verify_checks_and_quarantines_nvram_chunks_too(repo):
    staged = repo.start_backup(VM)
    staged.put_nvram(os.urandom(CHUNK + 100))
    item = staged.commit()
    length, chunk_id = item.nvram_chunks()[1]
    path = _path(repo, chunk_name(chunk_id))
    raw = bytearray(open(path, "rb").read())
    raw[-1] ^= 1
    open(path, "wb").write(bytes(raw))
    report = repo.verify()
    assert [(p["disk"], p["offset"]) for p in report["corrupt"]] == [("nvram", CHUNK)] and length == 100
    assert report["quarantined_count"] == 1
