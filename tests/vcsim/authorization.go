package main

import (
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

// authorizationManager makes privilege checks honest: the simulator grants
// every privilege to everybody, which would hide the "no Cryptographer.Access"
// failure path. Privileges here come from the permissions actually set.
type authorizationManager struct {
	*simulator.AuthorizationManager
	nextRoleID int32
}

func installAuthorization(model *simulator.Model, administrator string) {
	registry := model.Map()
	inner := registry.Get(*model.ServiceContent.AuthorizationManager).(*simulator.AuthorizationManager)
	manager := &authorizationManager{AuthorizationManager: inner, nextRoleID: firstCustomRoleID}
	registry.Put(manager)

	// Real vCenter gives its administrator the Admin role on the root folder.
	ctx := &simulator.Context{Map: registry}
	root := model.ServiceContent.RootFolder
	existing := manager.permissionsOn(ctx, root)
	inner.SetEntityPermissions(&types.SetEntityPermissions{
		Entity: root,
		Permission: append(existing, types.Permission{
			Entity: &root, Principal: principalOf(administrator), RoleId: -1, Propagate: true,
		}),
	})
}

// principalOf turns a login ("user@vsphere.local") into the principal form
// permissions use ("VSPHERE.LOCAL\user"); principals pass through.
func principalOf(user string) string {
	if name, domain, ok := strings.Cut(user, "@"); ok && !strings.Contains(user, "\\") {
		return strings.ToUpper(domain) + "\\" + name
	}
	return user
}

func (m *authorizationManager) permissionsOn(ctx *simulator.Context, entity types.ManagedObjectReference) []types.Permission {
	body := m.AuthorizationManager.RetrieveEntityPermissions(ctx, &types.RetrieveEntityPermissions{Entity: entity})
	return body.(*methods.RetrieveEntityPermissionsBody).Res.Returnval
}

// privileges applies vCenter's rule for a user (groups are not modelled):
// the permission nearest to the entity wins; ancestors count only if they
// propagate.
func (m *authorizationManager) privileges(ctx *simulator.Context, entity types.ManagedObjectReference, user string) map[string]bool {
	principal := principalOf(user)
	granted := map[string]bool{}
	current := &entity
	for depth := 0; current != nil; depth++ {
		for _, permission := range m.permissionsOn(ctx, *current) {
			if permission.Group || !strings.EqualFold(permission.Principal, principal) {
				continue
			}
			if depth > 0 && !permission.Propagate {
				continue
			}
			for _, role := range m.RoleList {
				if role.RoleId == permission.RoleId {
					for _, id := range role.Privilege {
						granted[id] = true
					}
				}
			}
			return granted
		}
		object, ok := ctx.Map.Get(*current).(mo.Entity)
		if !ok {
			break
		}
		current = object.Entity().Parent
	}
	return granted
}

func sessionUser(ctx *simulator.Context) string {
	if ctx.Session == nil {
		return ""
	}
	return ctx.Session.UserName
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
