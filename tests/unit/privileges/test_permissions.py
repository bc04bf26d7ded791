"""Who holds what: vCenter's answer first, the permission evaluation as its fallback.

The evaluation follows vSphere Security, "Hierarchical Inheritance of
Permissions" and "Multiple Permission Settings"; each test names its rule.
"""
import collections

import pytest
from pyVmomi import vim, vmodl

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import permissions as holders
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.permissions import (
    PrincipalPrivileges,
    SessionPrivileges,
    effective_privileges,
    normalize_principal,
)

Permission = collections.namedtuple("Permission", "principal group roleId propagate")

SNAPSHOT, READ, CRYPTO = "VirtualMachine.State.CreateSnapshot", "VirtualMachine.Provisioning.DiskRandomRead", \
    "Cryptographer.Access"
ROLES = {10: frozenset([SNAPSHOT, CRYPTO]), 11: frozenset([SNAPSHOT]), 12: frozenset([READ]), -5: frozenset(),
         -2: frozenset(["System.Read"])}

# root -> dc -> vmfolder -> vm, and dc -> hostfolder -> cluster -> pool -> vm
PARENTS = {"vm": ["vmfolder", "pool"], "vmfolder": ["dc"], "pool": ["cluster"], "cluster": ["hostfolder"],
           "hostfolder": ["dc"], "dc": ["root"], "root": []}


def held(grants, principal="VSPHERE.LOCAL\\backup", groups=(), entity="vm"):
    """grants: {entity: [Permission]}."""
    return effective_privileges(entity, principal, groups, lambda e: grants.get(e, ()), lambda e: PARENTS[e], ROLES)


def user(role, propagate=True, name="VSPHERE.LOCAL\\backup"):
    return Permission(name, False, role, propagate)


def group(role, propagate=True, name="VSPHERE.LOCAL\\operators"):
    return Permission(name, True, role, propagate)


def test_principal_names_compare_in_either_form():
    assert normalize_principal("backup@VSPHERE.LOCAL") == normalize_principal("vsphere.local\\Backup")
    assert normalize_principal("backup") == ("", "backup")


def test_child_permission_overrides_the_parent_s():
    # "Example 2: Child Permissions Overriding Parent Permissions"
    assert held({"vm": [user(11)], "root": [user(10)]}) == ROLES[11]


def test_inherited_permission_counts_only_when_it_propagates():
    # "Hierarchical Inheritance of Permissions": propagate
    assert held({"vmfolder": [user(10, propagate=False)], "root": [user(12)]}) == ROLES[12]
    assert held({"vmfolder": [user(10, propagate=False)]}, entity="vmfolder") == ROLES[10]


def test_a_vm_inherits_from_its_folder_and_its_resource_pool():
    # "Multiple Permission Settings": permissions from both parents are added
    assert held({"vmfolder": [user(11)], "pool": [user(12)]}) == ROLES[11] | ROLES[12]


def test_read_only_on_the_root_does_not_hide_a_role_on_the_cluster():
    assert held({"root": [user(-2)], "cluster": [user(10)]}) == ROLES[10] | ROLES[-2]


def test_user_permission_overrides_its_groups_on_the_same_entity():
    # "Multiple Permission Settings": the user's permission takes precedence over all group permissions
    grants = {"vmfolder": [user(11), group(10)]}
    assert held(grants, groups=["VSPHERE.LOCAL\\operators"]) == ROLES[11]


def test_groups_add_up_when_membership_is_given():
    # "Example 1: Inheritance of Multiple Permissions"
    grants = {"vmfolder": [group(11), group(12, name="VSPHERE.LOCAL\\readers")]}
    assert held(grants) == frozenset()
    assert held(grants, groups=["operators@vsphere.local", "VSPHERE.LOCAL\\readers"]) == ROLES[11] | ROLES[12]


def test_no_access_holds_nothing_and_hides_what_is_above():
    assert held({"vm": [user(-5), group(10)], "root": [user(10)]}, groups=["VSPHERE.LOCAL\\operators"]) \
        == frozenset()
    # on the folder it closes that path only: the resource pool's path still brings the root's grant
    assert held({"vmfolder": [user(-5)], "root": [user(11)]}) == ROLES[11]


def test_someone_else_s_permission_grants_nothing():
    assert held({"vm": [user(10, name="VSPHERE.LOCAL\\other")]}) == frozenset()


# -- who answers -------------------------------------------------------------
class Answer:
    def __init__(self, moid, granted):
        self.entity = vim.VirtualMachine(moid)
        self.privAvailability = [vim.AuthorizationManager.PrivilegeAvailability(privId=p, isGranted=True)
                                 for p in granted]


class FakeAuthorization:
    def __init__(self, fault=None):
        self.fault = fault
        self.calls = []

    def HasUserPrivilegeOnEntities(self, entities, userName, privId):
        self.calls.append(("HasUserPrivilegeOnEntities", [e._moId for e in entities], userName, privId))
        if self.fault:
            raise self.fault
        return [Answer(e._moId, [SNAPSHOT]) for e in entities]

    def HasPrivilegeOnEntities(self, entity, sessionId, privId):
        self.calls.append(("HasPrivilegeOnEntities", [e._moId for e in entity], sessionId, privId))
        return [Answer(e._moId, [READ]) for e in entity]


class FakeClient:
    def __init__(self, manager):
        self.content = collections.namedtuple("Content", "authorizationManager sessionManager")(
            manager, collections.namedtuple("SessionManager", "currentSession")(
                collections.namedtuple("Session", "key")("session-1")))


VMS = [vim.VirtualMachine("vm-1"), vim.VirtualMachine("vm-2")]


def test_session_user_is_answered_by_vcenter_in_one_call():
    manager = FakeAuthorization()
    holder = SessionPrivileges(FakeClient(manager))
    assert holder.held_on(VMS, [READ, SNAPSHOT]) == {"vm-1": frozenset([READ]), "vm-2": frozenset([READ])}
    assert manager.calls == [("HasPrivilegeOnEntities", ["vm-1", "vm-2"], "session-1", sorted([READ, SNAPSHOT]))]
    assert holder.evaluated_by == "vcenter: HasPrivilegeOnEntities"


def test_another_principal_is_answered_by_vcenter_in_one_call(monkeypatch):
    manager = FakeAuthorization()
    holder = PrincipalPrivileges(FakeClient(manager), "backup@vsphere.local", ["ignored"])
    monkeypatch.setattr(holder, "_evaluate", lambda *args: pytest.fail("vCenter answered"))
    assert holder.held_on(VMS, [SNAPSHOT]) == {"vm-1": frozenset([SNAPSHOT]), "vm-2": frozenset([SNAPSHOT])}
    assert manager.calls == [("HasUserPrivilegeOnEntities", ["vm-1", "vm-2"], "backup@vsphere.local", [SNAPSHOT])]
    assert holder.evaluated_by == holders.BY_VCENTER


def test_an_older_vcenter_falls_back_to_the_evaluation_and_says_so(monkeypatch):
    holder = PrincipalPrivileges(FakeClient(FakeAuthorization(vmodl.fault.MethodNotFound())), "backup@vsphere.local")
    monkeypatch.setattr(holder, "_evaluate", lambda entities, privileges: {"vm-1": frozenset(["evaluated"])})
    assert holder.held_on(VMS[:1], [SNAPSHOT]) == {"vm-1": frozenset(["evaluated"])}
    assert holder.evaluated_by == holders.BY_PERMISSIONS


def test_vcenter_evaluation_insisted_on_fails_on_an_older_vcenter():
    holder = PrincipalPrivileges(FakeClient(FakeAuthorization(vmodl.fault.MethodNotFound())), "backup@vsphere.local",
                                 evaluation="vcenter")
    with pytest.raises(InvalidArgumentError) as raised:
        holder.held_on(VMS[:1], [SNAPSHOT])
    assert "HasUserPrivilegeOnEntities" in str(raised.value)


def test_permissions_evaluation_asked_for_does_not_ask_vcenter(monkeypatch):
    manager = FakeAuthorization()
    holder = PrincipalPrivileges(FakeClient(manager), "backup@vsphere.local", evaluation="permissions")
    monkeypatch.setattr(holder, "_evaluate", lambda entities, privileges: {"vm-1": frozenset()})
    assert holder.held_on(VMS[:1], [SNAPSHOT]) == {"vm-1": frozenset()}
    assert manager.calls == []
    assert holder.evaluated_by == holders.BY_PERMISSIONS_ASKED


def test_unknown_evaluation_is_one_clear_line():
    with pytest.raises(InvalidArgumentError) as raised:
        PrincipalPrivileges(FakeClient(FakeAuthorization()), "backup", evaluation="guess")
    assert str(raised.value) == "evaluation must be one of auto, vcenter, permissions, not 'guess'"
