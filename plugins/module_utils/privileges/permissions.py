# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Privileges held on entities: by the session user, or by another principal.

The session user's come from HasPrivilegeOnEntities, which asks vCenter
itself.  Another principal's are evaluated from the permissions that apply
to each entity (RetrieveEntityPermissions with inheritance) and the roles'
privilege lists, with vCenter's rules: the permission nearest the entity
wins, one inherited from an ancestor counts only if it propagates, and a
permission given to the user overrides those of its groups at that level.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.catalog import IMPLICIT_PRIVILEGES
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve_one

ADMIN_ROLE_ID = -1


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


def _matches(permission, user, groups):
    principal = normalize_principal(permission.principal)
    if permission.group:
        return principal in groups
    return principal == user


def effective_privileges(principal, groups, chain_permissions, role_privileges):
    """Privileges ``principal`` holds on an entity.

    ``chain_permissions`` lists (depth, permissions) from the entity (depth 0)
    up to the root; ``role_privileges`` maps role ids to privilege sets.
    """
    user = normalize_principal(principal)
    group_names = set(normalize_principal(group) for group in groups)
    for depth, permissions in sorted(chain_permissions, key=lambda entry: entry[0]):
        applicable = [permission for permission in permissions
                      if (depth == 0 or permission.propagate) and _matches(permission, user, group_names)]
        if not applicable:
            continue
        own = [permission for permission in applicable if not permission.group]
        held = set()
        for permission in own or applicable:
            held |= set(role_privileges.get(permission.roleId, ()))
        return frozenset(held | IMPLICIT_PRIVILEGES) if held else frozenset()
    return frozenset()


class SessionPrivileges:
    """What the logged-in user holds, as vCenter answers it."""

    def __init__(self, client):
        self.client = client

    def held(self, entity, privileges):
        manager = self.client.content.authorizationManager
        session = self.client.content.sessionManager.currentSession
        answers = manager.HasPrivilegeOnEntities(entity=[entity], sessionId=session.key, privId=sorted(privileges))
        held = set()
        for answer in answers or []:
            held.update(item.privId for item in answer.privAvailability or [] if item.isGranted)
        return frozenset(held)


class PrincipalPrivileges:
    """What another account holds, from permissions and roles."""

    def __init__(self, client, principal, groups=()):
        self.client = client
        self.principal = principal
        self.groups = list(groups)
        manager = client.content.authorizationManager
        every_privilege = [privilege.privId for privilege in manager.privilegeList or []]
        self.role_privileges = dict((role.roleId, frozenset(every_privilege if role.roleId == ADMIN_ROLE_ID
                                                            else role.privilege or ()))
                                    for role in manager.roleList or [])
        self._ancestry = {}

    def _depths(self, entity):
        # Distance of each ancestor from the entity, walking 'parent' to the root.
        if entity._moId not in self._ancestry:
            depths, current, depth = {}, entity, 0
            while current is not None and current._moId not in depths:
                depths[current._moId] = depth
                current = retrieve_one(self.client, current, ["parent"]).get("parent")
                depth += 1
            self._ancestry[entity._moId] = depths
        return self._ancestry[entity._moId]

    def held(self, entity, privileges):
        manager = self.client.content.authorizationManager
        permissions = manager.RetrieveEntityPermissions(entity=entity, inherited=True) or []
        depths = self._depths(entity)
        farthest = max(depths.values()) + 1 if depths else 1
        by_depth = {}
        for permission in permissions:
            # Off the folder chain (a resource pool, say) counts as farther than the root.
            depth = depths.get(permission.entity._moId, farthest) if permission.entity is not None else farthest
            by_depth.setdefault(depth, []).append(permission)
        holding = effective_privileges(self.principal, self.groups, list(by_depth.items()), self.role_privileges)
        return frozenset(holding & set(privileges))
