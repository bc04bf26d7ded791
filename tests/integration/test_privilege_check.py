"""privilege_check through ansible-playbook: the guide's refusals and real permission evaluation.

Stock vcsim grants every privilege to every session; our launcher answers
HasPrivilegeOnEntities and HasUserPrivilegeOnEntities from the permissions
set in the estate with vCenter's rules (inheritance through folders and
resource pools, groups, user over group), so denials are tested for another
principal, for a session that logs in as it, and through the collection's own
evaluation (principal_evaluation: permissions).
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
    result = check(tmp_path, vcsim, {"phase": "restore_vm", "datacenter": "DC0", "restore_cluster": estate["cluster"]["name"],
                                     "restore_datastores": [estate["datastore"]["name"]], "encrypted": True,
                                     "transports": ["nbdssl"],
                                     "principal": estate["principals"]["nocrypto"]["principal"]})
    assert result["vm_encrypted"] is True
    assert result["allowed_transports"] == []
    missing = dict((entry["role"], entry["privileges"]) for entry in result["missing_privileges"])
    assert "Cryptographer.EncryptNew" in missing["folder"]
    assert result["unchecked_roles"] == []
    result = check(tmp_path, vcsim, {"phase": "restore_vm", "datacenter": "DC0", "restore_cluster": estate["cluster"]["name"],
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


# -- accounts built from the documented roles, granted at different places ----------------
EVALUATIONS = ["auto", "permissions"]


def account_check(tmp_path, vcsim, estate, account, args, evaluation="auto", session=False):
    """Check ``account`` as a principal (vCenter's answer, or the evaluation here), or log in as it."""
    account = estate["accounts"][account]
    if session:
        env = vmware_env(vcsim)
        env.update(VMWARE_USER=account["login"], VMWARE_PASSWORD=account["password"])
        return check(tmp_path, vcsim, args, env=env)
    args = dict(args, principal=account["principal"], principal_evaluation=evaluation,
                principal_groups=account.get("groups", []))
    return check(tmp_path, vcsim, args)


def missing_of(result):
    return dict((entry["role"], entry["privileges"]) for entry in result["missing_privileges"])


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_guide_built_roles_on_the_resource_pool_and_the_proxy_allow_nbdssl_and_hotadd(tmp_path, vcsim, estate,
                                                                                      evaluation):
    result = account_check(tmp_path, vcsim, estate, "pool", {
        "name": "crypt-vm01", "transports": ["hotadd", "nbdssl"], "proxy_vm": estate["proxies"]["encrypted"]},
        evaluation)
    assert result["allowed_transports"] == ["hotadd", "nbdssl"], result["reasons"]
    assert result["evaluated_by"] == ("vcenter: HasUserPrivilegeOnEntities" if evaluation == "auto" else
                                      "evaluated from permissions (as asked)")
    checked = result["checked_entities"]
    assert sorted(checked) == ["datacenter", "datastore", "host", "proxy_datastore", "proxy_vm", "root", "vm"]
    assert checked["host"] == [{"moid": estate["host"]["moid"], "name": estate["host"]["name"]}]


def test_the_session_of_a_guide_built_account_is_allowed_too(tmp_path, vcsim, estate):
    result = account_check(tmp_path, vcsim, estate, "pool", {"name": "crypt-vm01", "transports": ["nbdssl"]},
                           session=True)
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]
    assert result["evaluated_by"] == "vcenter: HasPrivilegeOnEntities"


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_a_backup_role_on_the_cluster_reaches_the_vm_through_its_resource_pool(tmp_path, vcsim, estate, evaluation):
    result = account_check(tmp_path, vcsim, estate, "cluster", {"name": "crypt-vm01", "transports": ["nbdssl"]},
                           evaluation)
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_a_non_propagating_folder_grant_does_not_reach_the_vm(tmp_path, vcsim, estate, evaluation):
    result = account_check(tmp_path, vcsim, estate, "folder_only", {"name": "crypt-vm01", "transports": ["nbdssl"]},
                           evaluation)
    assert result["allowed_transports"] == []
    assert missing_of(result) == {"vm": ["Cryptographer.Access", "VirtualMachine.Config.ChangeTracking",
                                         "VirtualMachine.Provisioning.DiskRandomRead",
                                         "VirtualMachine.State.CreateSnapshot", "VirtualMachine.State.RemoveSnapshot"]}


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_hotadd_without_the_proxy_role_is_refused_on_the_proxy(tmp_path, vcsim, estate, evaluation):
    result = account_check(tmp_path, vcsim, estate, "cluster", {
        "name": "crypt-vm01", "transports": ["hotadd", "nbdssl"], "proxy_vm": estate["proxies"]["encrypted"]},
        evaluation)
    assert result["allowed_transports"] == ["nbdssl"]
    assert missing_of(result) == {"proxy_vm": ["Cryptographer.AddDisk", "VirtualMachine.Config.AddNewDisk",
                                               "VirtualMachine.Config.RemoveDisk", "VirtualMachine.Config.Resource",
                                               "VirtualMachine.Config.Settings"]}


@pytest.mark.parametrize("how", ["auto", "permissions", "session"])
def test_a_group_grant_counts(tmp_path, vcsim, estate, how):
    result = account_check(tmp_path, vcsim, estate, "operator", {"name": "crypt-vm01", "transports": ["nbdssl"]},
                           evaluation=how, session=how == "session")
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]


@pytest.mark.parametrize("how", ["auto", "permissions", "session"])
def test_a_user_s_no_access_overrides_its_group_s_grant(tmp_path, vcsim, estate, how):
    result = account_check(tmp_path, vcsim, estate, "blocked", {"name": "crypt-vm01", "transports": ["nbdssl"]},
                           evaluation=how, session=how == "session")
    assert result["allowed_transports"] == []
    assert "VirtualMachine.Provisioning.DiskRandomRead" in missing_of(result)["vm"]


def test_the_evaluation_here_needs_the_groups_vcenter_knows_by_itself(tmp_path, vcsim, estate):
    account = estate["accounts"]["operator"]
    args = {"name": "crypt-vm01", "transports": ["nbdssl"], "principal": account["principal"]}
    assert check(tmp_path, vcsim, dict(args, principal_evaluation="auto"))["allowed_transports"] == ["nbdssl"]
    assert check(tmp_path, vcsim, dict(args, principal_evaluation="permissions"))["allowed_transports"] == []


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_a_restore_into_existing_role_on_the_vm_allows_writing_its_disks(tmp_path, vcsim, estate, evaluation):
    result = account_check(tmp_path, vcsim, estate, "restorer", {
        "name": "crypt-vm01", "phase": "restore", "transports": ["nbdssl"]}, evaluation)
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]
    assert sorted(result["checked_entities"]) == ["host", "root", "vm"]
    # ... but creating a VM is another role
    result = account_check(tmp_path, vcsim, estate, "restorer", {
        "phase": "restore_vm", "datacenter": estate["datacenter"]["name"], "encrypted": True,
        "restore_cluster": estate["cluster"]["name"], "transports": ["nbdssl"]}, evaluation)
    assert result["allowed_transports"] == []
    assert "VirtualMachine.Inventory.Create" in missing_of(result)["folder"]


def test_a_backup_account_may_not_write_disks(tmp_path, vcsim, estate):
    result = account_check(tmp_path, vcsim, estate, "pool", {
        "name": "crypt-vm01", "phase": "restore", "transports": ["nbdssl"]})
    assert result["allowed_transports"] == []
    assert missing_of(result) == {"vm": ["VirtualMachine.Provisioning.DiskRandomAccess"]}


@pytest.mark.parametrize("evaluation", EVALUATIONS)
def test_a_restore_new_vm_role_on_the_datacenter_allows_creating_an_encrypted_vm(tmp_path, vcsim, estate,
                                                                                 evaluation):
    result = account_check(tmp_path, vcsim, estate, "creator", {
        "phase": "restore_vm", "datacenter": estate["datacenter"]["name"], "encrypted": True,
        "restore_cluster": estate["cluster"]["name"], "restore_datastores": [estate["datastore"]["name"]],
        "transports": ["nbdssl"]}, evaluation)
    assert result["allowed_transports"] == ["nbdssl"], result["reasons"]
    # the simulator's hosts report no encryption mode: creating the VM must enable it on them
    assert estate["host"]["moid"] in [host["moid"] for host in result["checked_entities"]["unencrypted_host"]]


def test_restore_into_an_existing_vm_needs_the_vm(tmp_path, vcsim, estate):
    result = check(tmp_path, vcsim, {"phase": "restore", "datacenter": estate["datacenter"]["name"],
                                     "transports": ["nbdssl"]})
    assert result["_status"] == "failed"
    assert result["msg"] == ("a restore check needs the existing VM whose disks are written (name, uuid or moid); "
                             "phase restore_vm checks creating a new VM")
