"""privilege_check through ansible-playbook: the guide's refusals and real permission evaluation.

Stock vcsim grants every privilege to every session; our launcher answers
HasPrivilegeOnEntities from the permissions set in the estate, so denials
are tested both for another principal and for a session that logs in as it.
"""
import pytest

from playbook import run_playbook
from vsphere_env import vmware_env

CHECK = "vmcrypt.backup.privilege_check"


def check(tmp_path, vcsim, args, env=None):
    run = run_playbook(tmp_path, [{"name": "check", CHECK: args, "ignore_errors": True}],
                       env=env or vmware_env(vcsim))
    return run["check"]


def test_san_refused_for_encrypted_vm(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["san", "nbd", "nbdssl"]})
    assert result["_status"] == "ok"
    assert result["vm_encrypted"] is True
    assert result["allowed_transports"] == ["nbdssl"]
    assert result["reasons"] == [
        "san refused: san is not supported for encrypted disks; use nbdssl or hotadd",
        "nbd refused: nbd would send the decrypted disk data over the network in clear; use nbdssl",
    ]


def test_san_allowed_for_unencrypted_vm(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "plain-vm01", "transports": ["san", "nbd"]})
    assert result["vm_encrypted"] is False
    assert result["allowed_transports"] == ["san", "nbd"]


def test_hotadd_needs_an_encrypted_proxy(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["hotadd", "nbdssl"],
                                     "proxy_vm": estate["proxies"]["plain"]})
    assert result["proxy_encrypted"] is False
    assert result["allowed_transports"] == ["nbdssl"]
    assert result["reasons"] == ["hotadd refused: hotadd of encrypted disks needs an encrypted proxy VM; "
                                 "the proxy VM is not encrypted"]
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["hotadd", "nbdssl"],
                                     "proxy_vm": estate["proxies"]["encrypted"]})
    assert result["proxy_encrypted"] is True
    assert result["allowed_transports"] == ["hotadd", "nbdssl"]


def test_principal_without_cryptographer_access(tmp_path, vcsim, estate):
    principal = estate["principals"]["nocrypto"]["principal"]
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["nbdssl", "hotadd"],
                                     "proxy_vm": estate["proxies"]["encrypted"], "principal": principal})
    assert result["principal"] == principal
    assert result["allowed_transports"] == []
    missing = dict((entry["role"], entry) for entry in result["missing_privileges"])
    assert missing["vm"]["privileges"] == ["Cryptographer.Access"]
    assert missing["vm"]["entities"] == [{"moid": estate["vms"]["crypt-vm01"]["moid"], "name": "crypt-vm01"}]
    assert missing["proxy_vm"]["privileges"] == ["Cryptographer.AddDisk"]
    assert "nbdssl refused: missing Cryptographer.Access on crypt-vm01 (%s)" % estate["vms"]["crypt-vm01"]["moid"] \
        in result["reasons"]


def test_same_principal_may_back_up_an_unencrypted_vm(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "plain-vm01", "transports": ["nbdssl"],
                                     "principal": estate["principals"]["nocrypto"]["principal"]})
    assert result["allowed_transports"] == ["nbdssl"]
    assert result["missing_privileges"] == []


def test_full_principal_is_allowed(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["hotadd", "nbdssl"],
                                     "proxy_vm": estate["proxies"]["encrypted"],
                                     "principal": estate["principals"]["backupadmin"]["login"]})
    assert result["allowed_transports"] == ["hotadd", "nbdssl"], result["reasons"]
    assert result["missing_privileges"] == []


def test_session_of_the_principal_is_denied_too(tmp_path, vcsim, estate):
    nocrypto = estate["principals"]["nocrypto"]
    env = vmware_env(vcsim)
    env.update(VMWARE_USER=nocrypto["login"], VMWARE_PASSWORD=nocrypto["password"])
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["nbdssl"]}, env=env)
    assert result["principal"] == "session user"
    assert result["allowed_transports"] == []
    assert [entry["privileges"] for entry in result["missing_privileges"] if entry["role"] == "vm"] == [
        ["Cryptographer.Access"]]


def test_fail_on_missing_turns_refusal_into_failure(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"name": "crypt-vm01", "transports": ["san"], "fail_on_missing": True})
    assert result["_status"] == "failed"
    assert result["msg"] == ("no requested transport is allowed: san refused: san is not supported for "
                             "encrypted disks; use nbdssl or hotadd")


def test_restore_of_encrypted_vm_needs_cryptographer_privileges(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"phase": "restore", "datacenter": "DC0", "restore_cluster": estate["cluster"]["name"],
                                     "restore_datastores": [estate["datastore"]["name"]], "encrypted": True,
                                     "transports": ["nbdssl"],
                                     "principal": estate["principals"]["nocrypto"]["principal"]})
    assert result["vm_encrypted"] is True
    assert result["allowed_transports"] == []
    missing = dict((entry["role"], entry["privileges"]) for entry in result["missing_privileges"])
    assert "Cryptographer.EncryptNew" in missing["folder"]
    assert result["unchecked_roles"] == []
    result = check(tmp_path, vcsim, {"phase": "restore", "datacenter": "DC0", "restore_cluster": estate["cluster"]["name"],
                                     "restore_datastores": [estate["datastore"]["name"]], "encrypted": True,
                                     "transports": ["nbdssl"],
                                     "principal": estate["principals"]["backupadmin"]["principal"]})
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]


@pytest.mark.parametrize("principal", ["VSPHERE.LOCAL\\nobody", "nobody@vsphere.local"])
def test_principal_without_any_permission_holds_nothing(tmp_path, vcsim, estate, principal):
    result = check(tmp_path, vcsim, {"name": "plain-vm01", "transports": ["nbdssl"], "principal": principal})
    assert result["allowed_transports"] == []
    assert result["reasons"][0] == ("%s holds none of the needed privileges on these entities: check the name "
                                    "(DOMAIN\\user or user@domain) and its permissions" % principal)
    assert "VirtualMachine.State.CreateSnapshot" in [
        privilege for entry in result["missing_privileges"] for privilege in entry["privileges"]]
