"""chain.newest_backup: an incremental's base found through the VM's head record, one manifest read."""
import os
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import chain, manifest

from .helpers import CHUNK, blocks_of

VMS = [{"name": "vm-%d" % number, "uuid": "4211-%d" % number, "instance_uuid": "5011-%d" % number}
       for number in range(3)]


def history(repo, rounds=4):
    """``rounds`` backups of every VM, interleaved; returns the backup ids of each VM in commit order."""
    ids = dict((vm["name"], []) for vm in VMS)
    start = time.time()
    for number in range(rounds * len(VMS)):
        vm = VMS[number % len(VMS)]
        # ids a second apart, as backups of one VM are: ids sort by the second they were made in
        staged = repo.start_backup(vm, backup_id=manifest.new_backup_id(now=start + number))
        with staged.open_disk("2000", 2 * CHUNK) as writer:
            writer.write_blocks(blocks_of(os.urandom(2 * CHUNK)), threads=2)
        ids[vm["name"]].append(staged.commit().backup_id)
    return ids


def counting_manifest_reads(repo, monkeypatch):
    reads = []
    original = repo.backend.get

    def get(name, **kwargs):
        if name.startswith(manifest.PREFIX + "/"):
            reads.append(name)
        return original(name, **kwargs)
    monkeypatch.setattr(repo.backend, "get", get)
    return reads


def test_the_head_names_the_base_and_one_manifest_is_read(repo, monkeypatch):
    ids = history(repo)
    reads = counting_manifest_reads(repo, monkeypatch)
    for vm in VMS:
        assert chain.newest_backup(repo, vm).backup_id == ids[vm["name"]][-1]
    assert len(reads) == len(VMS)


def test_without_a_head_every_manifest_is_read_and_the_newest_wins(repo, monkeypatch):
    ids = history(repo)
    hex_name = repo.keys.head_name(manifest.vm_identity_key(VMS[1]))
    repo.backend.delete("%s/%s" % (chain.PREFIX, hex_name))
    reads = counting_manifest_reads(repo, monkeypatch)
    assert chain.newest_backup(repo, VMS[1]).backup_id == ids["vm-1"][-1]
    assert len(reads) == len(repo.backup_ids())


def test_a_head_naming_a_deleted_backup_falls_back_to_the_newest_left(repo):
    ids = history(repo, rounds=2)
    repo.backend.delete("%s/%s" % (manifest.PREFIX, ids["vm-2"][-1]))
    assert chain.newest_backup(repo, VMS[2]).backup_id == ids["vm-2"][0]


def test_a_vm_never_backed_up_has_none(repo):
    history(repo, rounds=1)
    assert chain.newest_backup(repo, {"name": "other", "uuid": "4211-x", "instance_uuid": "5011-x"}) is None
