"""vm_crypto_info through ansible-playbook, against the encrypted estate in the simulator."""
import pytest

from playbook import run_playbook
from vsphere_env import vmware_env


@pytest.fixture(scope="module")
def facts_run(tmp_path_factory, vcsim, estate):
    tasks = [
        {"name": "one", "vmcrypt.backup.vm_crypto_info": {"name": "crypt-vm01", "datacenter": "DC0"},
         "register": "one"},
        {"name": "datacenter", "vmcrypt.backup.vm_crypto_info": {"datacenter": "DC0"}},
        {"name": "cluster", "vmcrypt.backup.vm_crypto_info": {"cluster": estate["cluster"]["name"]}},
        {"name": "by uuid", "vmcrypt.backup.vm_crypto_info": {
            "uuid": estate["vms"]["uefi-vm01"]["uuid"], "use_instance_uuid": False}},
        {"name": "by moid", "vmcrypt.backup.vm_crypto_info": {"moid": estate["vms"]["plain-vm01"]["moid"]}},
        {"name": "json_query", "ansible.builtin.set_fact": {
            "encrypted_names": "{{ one.vms | map(attribute='name') | list }}"}},
    ]
    run = run_playbook(tmp_path_factory.mktemp("facts"), tasks, env=vmware_env(vcsim), check=True)
    assert run.returncode == 0, run.output
    return run


def by_name(result):
    return dict((vm["name"], vm) for vm in result["vms"])


def test_encrypted_vm_facts_match_the_estate(facts_run, estate):
    expected = estate["vms"]["crypt-vm01"]
    [vm] = facts_run["one"]["vms"]
    assert facts_run["one"]["changed"] is False
    assert vm["moid"] == expected["moid"]
    assert vm["path"] == "/DC0/vm/crypt-vm01"
    assert vm["encrypted"] is True
    assert vm["key_id"] == expected["key_id"]
    assert vm["key_id"]["provider_id"] == estate["key_provider"]["id"]
    assert vm["encryption_bundle_present"] is True
    assert vm["vmx_path"] == expected["vmx_path"]
    assert vm["nvram_path"] == expected["nvram_path"] and vm["nvram_path_source"] == "layout"
    assert vm["firmware"] == "bios" and vm["secure_boot"] is False and vm["vtpm_present"] is False
    assert vm["power_state"] == "poweredOff" and vm["snapshot_count"] == 0 and vm["cbt_enabled"] is False
    disks = dict((disk["key"], disk) for disk in vm["disks"])
    for expected_disk in expected["disks"]:
        disk = disks[expected_disk["key"]]
        assert disk["encrypted"] is expected_disk["encrypted"]
        assert disk["key_id"] == expected_disk["key_id"]
        assert disk["file"] == expected_disk["file"]
        assert disk["capacity_bytes"] == expected_disk["capacity_kb"] * 1024
    assert disks[2000]["encrypted"] is True and disks[2001]["encrypted"] is False
    assert disks[2000]["key_id"]["key_id"] != vm["key_id"]["key_id"]


def test_storage_policies_of_home_and_disks(facts_run, estate):
    [vm] = facts_run["one"]["vms"]
    policy = estate["encryption_policy"]
    assert vm["vm_home_storage_policy"] == {"id": policy["id"], "name": policy["name"]}
    disks = dict((disk["key"], disk) for disk in vm["disks"])
    assert disks[2000]["storage_policy"] == {"id": policy["id"], "name": policy["name"]}
    assert disks[2001]["storage_policy"] is None


def test_bundle_value_is_never_in_results_or_output(facts_run, estate):
    for vm in estate["vms"].values():
        if vm["bundle"]:
            assert vm["bundle"] not in facts_run.output
            assert vm["bundle"] not in repr(facts_run.results)


def test_many_vms_in_one_call(facts_run, estate):
    everything = by_name(facts_run["datacenter"])
    assert set(estate["vms"]) <= set(everything)
    assert everything["plain-vm01"]["encrypted"] is False
    assert everything["plain-vm01"]["key_id"] is None
    assert everything["plain-vm01"]["encryption_bundle_present"] is False
    assert everything["plain-vm01"]["has_encrypted_disks"] is False
    assert everything["crypt-proxy01"]["encrypted"] is True
    paths = [vm["path"] for vm in facts_run["datacenter"]["vms"]]
    assert paths == sorted(paths)
    assert set(by_name(facts_run["cluster"])) == set(everything)


def test_uefi_vm_by_bios_uuid(facts_run, estate):
    [vm] = facts_run["by uuid"]["vms"]
    assert vm["name"] == "uefi-vm01"
    assert vm["firmware"] == "efi" and vm["secure_boot"] is True and vm["vtpm_present"] is True
    assert vm["key_id"] == estate["vms"]["uefi-vm01"]["key_id"]


def test_by_moid(facts_run, estate):
    [vm] = facts_run["by moid"]["vms"]
    assert vm["name"] == "plain-vm01"


def test_results_select_with_jinja_and_jmespath(facts_run):
    import jmespath
    assert jmespath.search("[?encrypted].name", facts_run["datacenter"]["vms"]) == [
        vm["name"] for vm in facts_run["datacenter"]["vms"] if vm["encrypted"]]
    assert facts_run["json_query"]["ansible_facts"]["encrypted_names"] == ["crypt-vm01"]
