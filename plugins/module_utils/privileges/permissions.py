# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Privileges held on entities: by the session user, or by another principal.

vCenter decides whenever it can: the session user's privileges come from
HasPrivilegeOnEntities, another principal's from HasUserPrivilegeOnEntities
(vSphere 6.5 and later), each one call for every entity, so vCenter applies
its own inheritance, group membership and overrides.  Only when vCenter lacks
that method (an older vCenter) are another principal's privileges evaluated
here, from every permission (RetrieveAllPermissions) and the inventory's
parents, with the rules of vSphere Security ("Hierarchical Inheritance of
Permissions", "Multiple Permission Settings"):

- a permission set on the entity itself wins over anything inherited;
- an ancestor's permission reaches the entity only if it propagates;
- an entity with two parents (a VM: its folder and its resource pool or
  vApp) inherits from both, and what arrives on either path is added up;
- on one entity, a permission given to the user takes precedence over those
  of its groups; the permissions of several groups add up;
- a role with no privileges (NoAccess) holds nothing there.

Group membership is not exposed by this API: the fallback counts the groups
given as ``principal_groups``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve

ADMIN_ROLE_ID = -1
EVALUATIONS = ("auto", "vcenter", "permissions")

# How the privileges were decided, as the result reports it.
BY_SESSION = "vcenter: HasPrivilegeOnEntities"
BY_VCENTER = "vcenter: HasUserPrivilegeOnEntities"
BY_PERMISSIONS = "evaluated from permissions (vCenter lacks HasUserPrivilegeOnEntities)"
BY_PERMISSIONS_ASKED = "evaluated from permissions (as asked)"


def normalize_principal(name):
    """'user@Domain' and 'DOMAIN\\user' compare equal; case does not matter."""
    name = name.strip()
    if "\\" in name:
        domain, user = name.split("\\", 1)
    elif "@" in name:
        user, domain = name.rsplit("@", 1)
    else:
        domain, user = "", name
    return domain.lower(), user.lower()


def _privileges_set_here(permissions, user, groups, inherited, role_privileges):
    """What the permissions set on one entity give, or None when none applies.

    ``inherited``: the entity is an ancestor of the one asked about, so only
    propagating permissions count.
    """
    applicable = []
    for permission in permissions:
        if inherited and not permission.propagate:
            continue
        principal = normalize_principal(permission.principal)
        if (permission.group and principal in groups) or (not permission.group and principal == user):
            applicable.append(permission)
    if not applicable:
        return None
    own = [permission for permission in applicable if not permission.group]
    held = set()
    for permission in own or applicable:
        held |= set(role_privileges.get(permission.roleId, ()))
    return frozenset(held)


def effective_privileges(entity, principal, groups, permissions_of, parents_of, role_privileges):
    """Privileges ``principal`` (with ``groups``) holds on ``entity``.

    ``permissions_of(entity)`` lists the permissions set on an entity,
    ``parents_of(entity)`` its parents (two for a VM in a resource pool),
    ``role_privileges`` maps role ids to privilege sets.  Entities are any
    hashable ids.
    """
    user = normalize_principal(principal)
    group_names = frozenset(normalize_principal(group) for group in groups)
    memo = {}

    def held(current, inherited, visiting):
        key = (current, inherited)
        if key in memo:
            return memo[key]
        here = _privileges_set_here(permissions_of(current), user, group_names, inherited, role_privileges)
        if here is None:
            here = frozenset()
            for parent in parents_of(current):
                if parent not in visiting:
                    here = here | held(parent, True, visiting | {parent})
        memo[key] = here
        return here

    return held(entity, False, frozenset((entity,)))


def _granted(answers):
    """{moid: frozenset of granted privilege ids} from EntityPrivilege answers."""
    held = {}
    for answer in answers or []:
        held[answer.entity._moId] = frozenset(item.privId for item in answer.privAvailability or [] if item.isGranted)
    return held


class SessionPrivileges:
    """What the logged-in user holds, as vCenter answers it."""

    evaluated_by = BY_SESSION

    def __init__(self, client):
        self.client = client

    def held_on(self, entities, privileges):
        """{moid: privileges held among ``privileges``}, for every entity in one call."""
        if not entities or not privileges:
            return dict((entity._moId, frozenset()) for entity in entities)
        manager = self.client.content.authorizationManager
        session = self.client.content.sessionManager.currentSession
        return _granted(manager.HasPrivilegeOnEntities(entity=list(entities), sessionId=session.key,
                                                       privId=sorted(privileges)))

    def held(self, entity, privileges):
        return self.held_on([entity], privileges).get(entity._moId, frozenset())


class PrincipalPrivileges:
    """What another account holds: vCenter's answer, or the permissions evaluated here."""

    def __init__(self, client, principal, groups=(), evaluation="auto"):
        if evaluation not in EVALUATIONS:
            raise InvalidArgumentError("evaluation must be one of %s, not '%s'" % (", ".join(EVALUATIONS), evaluation))
        self.client = client
        self.principal = principal
        self.groups = list(groups)
        self.evaluation = evaluation
        self.evaluated_by = None

    def held_on(self, entities, privileges):
        """{moid: privileges held among ``privileges``}, for every entity."""
        if not entities or not privileges:
            return dict((entity._moId, frozenset()) for entity in entities)
        if self.evaluation != "permissions":
            try:
                answers = self.client.content.authorizationManager.HasUserPrivilegeOnEntities(
                    entities=list(entities), userName=self.principal, privId=sorted(privileges))
            except (vmodl.fault.MethodNotFound, vmodl.fault.NotSupported, vmodl.fault.NotImplemented,
                    AttributeError):
                if self.evaluation == "vcenter":
                    raise InvalidArgumentError("this vCenter cannot evaluate another principal's privileges "
                                               "(HasUserPrivilegeOnEntities, vSphere 6.5 and later)")
                self.evaluated_by = BY_PERMISSIONS
            else:
                self.evaluated_by = BY_VCENTER
                return _granted(answers)
        else:
            self.evaluated_by = BY_PERMISSIONS_ASKED
        return self._evaluate(entities, privileges)

    def held(self, entity, privileges):
        return self.held_on([entity], privileges).get(entity._moId, frozenset())

    # -- the fallback ------------------------------------------------------
    def _role_privileges(self, manager):
        every_privilege = [privilege.privId for privilege in manager.privilegeList or []]
        return dict((role.roleId, frozenset(every_privilege if role.roleId == ADMIN_ROLE_ID else role.privilege or ()))
                    for role in manager.roleList or [])

    def _parents(self, entities):
        """{moid: [parent moids]}: the inventory parent of every entity, and a VM's pool or vApp too."""
        parents = {}
        for item in retrieve(self.client, vim.ManagedEntity, ["parent"]):
            parent = item.get("parent")
            parents[item.moid] = [parent._moId] if parent is not None else []
        vms = [entity for entity in entities if isinstance(entity, vim.VirtualMachine)]
        for item in retrieve(self.client, vim.VirtualMachine, ["resourcePool", "parentVApp"], objects=vms):
            for path in ("resourcePool", "parentVApp"):
                other = item.get(path)
                if other is not None and other._moId not in parents.setdefault(item.moid, []):
                    parents[item.moid].append(other._moId)
        return parents

    def _evaluate(self, entities, privileges):
        manager = self.client.content.authorizationManager
        role_privileges = self._role_privileges(manager)
        by_entity = {}
        for permission in manager.RetrieveAllPermissions() or []:
            if permission.entity is not None:
                by_entity.setdefault(permission.entity._moId, []).append(permission)
        parents = self._parents(entities)
        wanted = frozenset(privileges)
        return dict((entity._moId, effective_privileges(entity._moId, self.principal, self.groups,
                                                        lambda moid: by_entity.get(moid, ()),
                                                        lambda moid: parents.get(moid, ()),
                                                        role_privileges) & wanted)
                    for entity in entities)
