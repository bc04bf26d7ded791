package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// firstCustomRoleID keeps custom role ids positive and clear of 0; the
// simulator itself numbers them 0, 1, ... and returns no id at all.
const firstCustomRoleID = 1001

// authorizationManager makes privilege checks honest. Stock vcsim grants
// every privilege to everybody, replaces an entity's whole permission list on
// SetEntityPermissions and returns non-propagating ancestors' permissions as
// inherited. Here privileges come from the permissions actually set, with
// vCenter's rules (vSphere Security, "Hierarchical Inheritance of
// Permissions" and "Multiple Permission Settings"):
//
//   - a permission set on the entity itself wins over anything inherited
//     ("permissions applied on a child object always override permissions
//     that are applied on a parent object");
//   - an ancestor's permission reaches the entity only if it propagates;
//   - a VM inherits from its folder and from its resource pool (or vApp):
//     "the permissions on one object are added to the permissions on the
//     other object";
//   - on one entity, the user's own permission takes precedence over all
//     group permissions; without one, the groups' privileges add up;
//   - NoAccess (a role without privileges) holds nothing there.
//
// Group membership is the directory's (vCenter's SSO), which the vim API
// cannot change: the launcher takes it from -group flags.
type authorizationManager struct {
	*simulator.AuthorizationManager
	nextRoleID  int32
	permissions map[types.ManagedObjectReference][]types.Permission
	// groups maps a normalized user ("vsphere.local\\operator") to the
	// normalized groups it belongs to.
	groups map[string][]string
}

// groupList collects repeated -group 'DOMAIN\group=user@domain,...' flags.
type groupList map[string][]string

func (g groupList) String() string { return fmt.Sprintf("%d groups", len(g)) }

func (g groupList) Set(value string) error {
	group, members, ok := strings.Cut(value, "=")
	if !ok || group == "" || members == "" {
		return fmt.Errorf("want group=user[,user...], got %q", value)
	}
	for _, member := range strings.Split(members, ",") {
		if member = strings.TrimSpace(member); member != "" {
			g[group] = append(g[group], member)
		}
	}
	return nil
}

func installAuthorization(model *simulator.Model, administrator string, groups groupList) *authorizationManager {
	registry := model.Map()
	inner := registry.Get(*model.ServiceContent.AuthorizationManager).(*simulator.AuthorizationManager)
	manager := &authorizationManager{
		AuthorizationManager: inner,
		nextRoleID:           firstCustomRoleID,
		permissions:          map[types.ManagedObjectReference][]types.Permission{},
		groups:               map[string][]string{},
	}
	for group, members := range groups {
		for _, member := range members {
			user := normalizePrincipal(member)
			manager.groups[user] = append(manager.groups[user], normalizePrincipal(group))
		}
	}
	ctx := &simulator.Context{Map: registry}
	all := inner.RetrieveAllPermissions(&types.RetrieveAllPermissions{}).(*methods.RetrieveAllPermissionsBody)
	for _, permission := range all.Res.Returnval {
		manager.permissions[*permission.Entity] = append(manager.permissions[*permission.Entity], permission)
	}
	registry.Put(manager)

	// Real vCenter gives its administrator the Admin role on the root folder.
	root := model.ServiceContent.RootFolder
	manager.SetEntityPermissions(ctx, &types.SetEntityPermissions{
		Entity:     root,
		Permission: []types.Permission{{Principal: principalOf(administrator), RoleId: -1, Propagate: true}},
	})
	return manager
}

// principalOf turns a login ("user@vsphere.local") into the principal form
// permissions use ("VSPHERE.LOCAL\user"); principals pass through.
func principalOf(user string) string {
	if name, domain, ok := strings.Cut(user, "@"); ok && !strings.Contains(user, "\\") {
		return strings.ToUpper(domain) + "\\" + name
	}
	return user
}

// normalizePrincipal makes "user@Domain" and "DOMAIN\user" one key.
func normalizePrincipal(name string) string {
	name = strings.TrimSpace(name)
	if domain, user, ok := strings.Cut(name, "\\"); ok {
		return strings.ToLower(domain) + "\\" + strings.ToLower(user)
	}
	if i := strings.LastIndex(name, "@"); i >= 0 {
		return strings.ToLower(name[i+1:]) + "\\" + strings.ToLower(name[:i])
	}
	return "\\" + strings.ToLower(name)
}

// SetEntityPermissions adds the rules or updates the one already there for
// the same user or group, as the API reference says; others stay.
func (m *authorizationManager) SetEntityPermissions(ctx *simulator.Context, req *types.SetEntityPermissions) soap.HasFault {
	body := &methods.SetEntityPermissionsBody{}
	if _, ok := ctx.Map.Get(req.Entity).(mo.Entity); !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Entity})
		return body
	}
	for _, permission := range req.Permission {
		if !m.roleExists(permission.RoleId) {
			body.Fault_ = simulator.Fault(fmt.Sprintf("no role %d", permission.RoleId),
				&types.InvalidArgument{InvalidProperty: "roleId"})
			return body
		}
	}
	for _, permission := range req.Permission {
		entity := req.Entity
		permission.Entity = &entity
		kept := m.permissions[req.Entity][:0:0]
		for _, existing := range m.permissions[req.Entity] {
			if !samePrincipal(existing, permission.Principal, permission.Group) {
				kept = append(kept, existing)
			}
		}
		m.permissions[req.Entity] = append(kept, permission)
	}
	body.Res = &types.SetEntityPermissionsResponse{}
	return body
}

func samePrincipal(permission types.Permission, principal string, group bool) bool {
	return permission.Group == group && normalizePrincipal(permission.Principal) == normalizePrincipal(principal)
}

func (m *authorizationManager) roleExists(id int32) bool {
	for _, role := range m.RoleList {
		if role.RoleId == id {
			return true
		}
	}
	return false
}

func (m *authorizationManager) RemoveEntityPermission(req *types.RemoveEntityPermission) soap.HasFault {
	kept := m.permissions[req.Entity][:0:0]
	for _, existing := range m.permissions[req.Entity] {
		if !samePrincipal(existing, req.User, req.IsGroup) {
			kept = append(kept, existing)
		}
	}
	m.permissions[req.Entity] = kept
	return &methods.RemoveEntityPermissionBody{Res: &types.RemoveEntityPermissionResponse{}}
}

// parents are the entities an entity inherits from: its inventory parent
// and, for a VM, its resource pool or vApp.
func parents(ctx *simulator.Context, ref types.ManagedObjectReference) []types.ManagedObjectReference {
	var found []types.ManagedObjectReference
	object := ctx.Map.Get(ref)
	if entity, ok := object.(mo.Entity); ok && entity.Entity().Parent != nil {
		found = append(found, *entity.Entity().Parent)
	}
	if vm, ok := object.(*simulator.VirtualMachine); ok {
		for _, other := range []*types.ManagedObjectReference{vm.ResourcePool, vm.ParentVApp} {
			if other != nil && !containsRef(found, *other) {
				found = append(found, *other)
			}
		}
	}
	return found
}

func containsRef(refs []types.ManagedObjectReference, ref types.ManagedObjectReference) bool {
	for _, each := range refs {
		if each == ref {
			return true
		}
	}
	return false
}

// RetrieveEntityPermissions returns the entity's own permissions and, when
// inherited, the propagating ones of every ancestor on every path, once each.
func (m *authorizationManager) RetrieveEntityPermissions(ctx *simulator.Context, req *types.RetrieveEntityPermissions) soap.HasFault {
	body := &methods.RetrieveEntityPermissionsBody{}
	if _, ok := ctx.Map.Get(req.Entity).(mo.Entity); !ok {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.Entity})
		return body
	}
	result := append([]types.Permission(nil), m.permissions[req.Entity]...)
	if req.Inherited {
		seen := map[types.ManagedObjectReference]bool{req.Entity: true}
		queue := parents(ctx, req.Entity)
		for len(queue) > 0 {
			current := queue[0]
			queue = queue[1:]
			if seen[current] {
				continue
			}
			seen[current] = true
			for _, permission := range m.permissions[current] {
				if permission.Propagate {
					result = append(result, permission)
				}
			}
			queue = append(queue, parents(ctx, current)...)
		}
	}
	body.Res = &types.RetrieveEntityPermissionsResponse{Returnval: result}
	return body
}

func (m *authorizationManager) RetrieveAllPermissions(req *types.RetrieveAllPermissions) soap.HasFault {
	var result []types.Permission
	refs := make([]types.ManagedObjectReference, 0, len(m.permissions))
	for ref := range m.permissions {
		refs = append(refs, ref)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].Value < refs[j].Value })
	for _, ref := range refs {
		result = append(result, m.permissions[ref]...)
	}
	return &methods.RetrieveAllPermissionsBody{Res: &types.RetrieveAllPermissionsResponse{Returnval: result}}
}

func (m *authorizationManager) RetrieveRolePermissions(req *types.RetrieveRolePermissions) soap.HasFault {
	var result []types.Permission
	for _, set := range m.permissions {
		for _, permission := range set {
			if permission.RoleId == req.RoleId {
				result = append(result, permission)
			}
		}
	}
	return &methods.RetrieveRolePermissionsBody{Res: &types.RetrieveRolePermissionsResponse{Returnval: result}}
}

func (m *authorizationManager) rolePrivileges(id int32) []string {
	for _, role := range m.RoleList {
		if role.RoleId == id {
			return role.Privilege
		}
	}
	return nil
}

// setHere is what the permissions set on one entity give the user, or nil
// when none applies; inherited keeps only propagating ones.
func (m *authorizationManager) setHere(entity types.ManagedObjectReference, user string, groups map[string]bool, inherited bool) map[string]bool {
	var own, viaGroups []types.Permission
	for _, permission := range m.permissions[entity] {
		if inherited && !permission.Propagate {
			continue
		}
		principal := normalizePrincipal(permission.Principal)
		switch {
		case permission.Group && groups[principal]:
			viaGroups = append(viaGroups, permission)
		case !permission.Group && principal == user:
			own = append(own, permission)
		}
	}
	chosen := own
	if len(chosen) == 0 {
		chosen = viaGroups
	}
	if len(chosen) == 0 {
		return nil
	}
	granted := map[string]bool{}
	for _, permission := range chosen {
		for _, id := range m.rolePrivileges(permission.RoleId) {
			granted[id] = true
		}
	}
	return granted
}

// privileges applies the rules above for a user (login or principal form).
func (m *authorizationManager) privileges(ctx *simulator.Context, entity types.ManagedObjectReference, login string) map[string]bool {
	user := normalizePrincipal(login)
	groups := map[string]bool{}
	for _, group := range m.groups[user] {
		groups[group] = true
	}
	var held func(current types.ManagedObjectReference, inherited bool, visiting map[types.ManagedObjectReference]bool) map[string]bool
	held = func(current types.ManagedObjectReference, inherited bool, visiting map[types.ManagedObjectReference]bool) map[string]bool {
		if here := m.setHere(current, user, groups, inherited); here != nil {
			return here
		}
		granted := map[string]bool{}
		for _, parent := range parents(ctx, current) {
			if visiting[parent] {
				continue
			}
			visiting[parent] = true
			for id := range held(parent, true, visiting) {
				granted[id] = true
			}
			delete(visiting, parent)
		}
		return granted
	}
	return held(entity, false, map[types.ManagedObjectReference]bool{entity: true})
}

func sessionUser(ctx *simulator.Context) string {
	if ctx.Session == nil {
		return ""
	}
	return ctx.Session.UserName
}

// hasPrivilege is for other handlers of the launcher that check a privilege
// the way vCenter does before they act.
func (m *authorizationManager) hasPrivilege(ctx *simulator.Context, entity types.ManagedObjectReference, privilege string) bool {
	return m.privileges(ctx, entity, sessionUser(ctx))[privilege]
}

// requirePrivilege is the NoPermission fault vCenter answers when the
// session user lacks privilege on entity, or nil. Without the launcher's
// authorization (Go tests of other handlers) everything is allowed.
func requirePrivilege(ctx *simulator.Context, entity types.ManagedObjectReference, privilege string) *soap.Fault {
	manager, ok := ctx.Map.Get(types.ManagedObjectReference{Type: "AuthorizationManager", Value: "AuthorizationManager"}).(*authorizationManager)
	if !ok || ctx.Session == nil || manager.hasPrivilege(ctx, entity, privilege) {
		return nil
	}
	return simulator.Fault(fmt.Sprintf("%s lacks %s on %s", sessionUser(ctx), privilege, entity.Value), &types.NoPermission{
		Object:            &entity,
		PrivilegeId:       privilege,
		MissingPrivileges: []types.NoPermissionEntityPrivileges{{Entity: entity, PrivilegeIds: []string{privilege}}},
	})
}

func (m *authorizationManager) availability(ctx *simulator.Context, entities []types.ManagedObjectReference, user string, privIDs []string) []types.EntityPrivilege {
	var result []types.EntityPrivilege
	for _, entity := range entities {
		granted := m.privileges(ctx, entity, user)
		entry := types.EntityPrivilege{Entity: entity}
		for _, id := range privIDs {
			entry.PrivAvailability = append(entry.PrivAvailability, types.PrivilegeAvailability{PrivId: id, IsGranted: granted[id]})
		}
		result = append(result, entry)
	}
	return result
}

func (m *authorizationManager) HasPrivilegeOnEntities(ctx *simulator.Context, req *types.HasPrivilegeOnEntities) soap.HasFault {
	return &methods.HasPrivilegeOnEntitiesBody{Res: &types.HasPrivilegeOnEntitiesResponse{
		Returnval: m.availability(ctx, req.Entity, sessionUser(ctx), req.PrivId),
	}}
}

func (m *authorizationManager) HasPrivilegeOnEntity(ctx *simulator.Context, req *types.HasPrivilegeOnEntity) soap.HasFault {
	granted := m.privileges(ctx, req.Entity, sessionUser(ctx))
	answers := make([]bool, len(req.PrivId))
	for i, id := range req.PrivId {
		answers[i] = granted[id]
	}
	return &methods.HasPrivilegeOnEntityBody{Res: &types.HasPrivilegeOnEntityResponse{Returnval: answers}}
}

func (m *authorizationManager) HasUserPrivilegeOnEntities(ctx *simulator.Context, req *types.HasUserPrivilegeOnEntities) soap.HasFault {
	return &methods.HasUserPrivilegeOnEntitiesBody{Res: &types.HasUserPrivilegeOnEntitiesResponse{
		Returnval: m.availability(ctx, req.Entities, req.UserName, req.PrivId),
	}}
}

func (m *authorizationManager) FetchUserPrivilegeOnEntities(ctx *simulator.Context, req *types.FetchUserPrivilegeOnEntities) soap.HasFault {
	var result []types.UserPrivilegeResult
	for _, entity := range req.Entities {
		entry := types.UserPrivilegeResult{Entity: entity}
		for id := range m.privileges(ctx, entity, req.UserName) {
			entry.Privileges = append(entry.Privileges, id)
		}
		sort.Strings(entry.Privileges)
		result = append(result, entry)
	}
	return &methods.FetchUserPrivilegeOnEntitiesBody{Res: &types.FetchUserPrivilegeOnEntitiesResponse{Returnval: result}}
}

// AddAuthorizationRole renumbers the new role and returns its id, as vCenter does.
func (m *authorizationManager) AddAuthorizationRole(req *types.AddAuthorizationRole) soap.HasFault {
	body := m.AuthorizationManager.AddAuthorizationRole(req).(*methods.AddAuthorizationRoleBody)
	if body.Fault_ != nil {
		return body
	}
	for i := range m.RoleList {
		if m.RoleList[i].Name == req.Name {
			m.RoleList[i].RoleId = m.nextRoleID
			body.Res.Returnval = m.nextRoleID
			m.nextRoleID++
		}
	}
	return body
}
