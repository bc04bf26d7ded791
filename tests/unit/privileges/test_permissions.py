"""Evaluating another principal's privileges from permissions and roles."""
import collections

from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.catalog import IMPLICIT_PRIVILEGES
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.permissions import (
    effective_privileges,
    normalize_principal,
)

Permission = collections.namedtuple("Permission", "principal group roleId propagate")

ROLES = {
    10: frozenset(["VirtualMachine.State.CreateSnapshot", "Cryptographer.Access"]),
    11: frozenset(["VirtualMachine.State.CreateSnapshot"]),
    12: frozenset(["Datastore.Browse"]),
    -5: frozenset(),
}


def test_principal_names_compare_in_either_form():
    assert normalize_principal("backup@VSPHERE.LOCAL") == normalize_principal("vsphere.local\\Backup")
    assert normalize_principal("backup") == ("", "backup")


def test_nearest_permission_wins_over_inherited_one():
    chain = [(0, [Permission("VSPHERE.LOCAL\\backup", False, 11, True)]),
             (2, [Permission("VSPHERE.LOCAL\\backup", False, 10, True)])]
    held = effective_privileges("backup@vsphere.local", [], chain, ROLES)
    assert "Cryptographer.Access" not in held
    assert held == ROLES[11] | IMPLICIT_PRIVILEGES


def test_inherited_permission_counts_only_when_it_propagates():
    chain = [(1, [Permission("VSPHERE.LOCAL\\backup", False, 10, False)]),
             (3, [Permission("VSPHERE.LOCAL\\backup", False, 12, True)])]
    assert effective_privileges("VSPHERE.LOCAL\\backup", [], chain, ROLES) == ROLES[12] | IMPLICIT_PRIVILEGES


def test_user_permission_overrides_group_permission_at_the_same_level():
    chain = [(1, [Permission("VSPHERE.LOCAL\\backup", False, 11, True),
                  Permission("VSPHERE.LOCAL\\admins", True, 10, True)])]
    held = effective_privileges("VSPHERE.LOCAL\\backup", ["VSPHERE.LOCAL\\admins"], chain, ROLES)
    assert held == ROLES[11] | IMPLICIT_PRIVILEGES


def test_group_permissions_count_when_membership_is_given():
    chain = [(1, [Permission("VSPHERE.LOCAL\\admins", True, 10, True)])]
    assert effective_privileges("VSPHERE.LOCAL\\backup", [], chain, ROLES) == frozenset()
    assert "Cryptographer.Access" in effective_privileges("VSPHERE.LOCAL\\backup", ["admins@vsphere.local"],
                                                          chain, ROLES)


def test_no_access_role_holds_nothing_at_all():
    chain = [(0, [Permission("VSPHERE.LOCAL\\backup", False, -5, True)]),
             (2, [Permission("VSPHERE.LOCAL\\backup", False, 10, True)])]
    assert effective_privileges("VSPHERE.LOCAL\\backup", [], chain, ROLES) == frozenset()


def test_someone_else_s_permission_grants_nothing():
    chain = [(0, [Permission("VSPHERE.LOCAL\\other", False, 10, True)])]
    assert effective_privileges("VSPHERE.LOCAL\\backup", [], chain, ROLES) == frozenset()
