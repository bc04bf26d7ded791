package main

import (
	"reflect"
	"sort"
	"testing"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// authBed is one VPX inventory with the launcher's authorization: a VM in
// DC0/vm, in the root resource pool of cluster DC0_C0.
type authBed struct {
	t       *testing.T
	model   *simulator.Model
	manager *authorizationManager
	ctx     *simulator.Context
	roles   map[string]int32
	root    types.ManagedObjectReference
	vm      *simulator.VirtualMachine
	folder  types.ManagedObjectReference
	pool    types.ManagedObjectReference
	cluster types.ManagedObjectReference
}

func newAuthBed(t *testing.T, groups groupList) *authBed {
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(model.Remove)
	bed := &authBed{t: t, model: model, roles: map[string]int32{}}
	bed.manager = installAuthorization(model, "administrator@vsphere.local", groups)
	bed.ctx = &simulator.Context{Map: model.Map()}
	bed.root = model.ServiceContent.RootFolder
	for _, object := range model.Map().All("VirtualMachine") {
		vm := object.(*simulator.VirtualMachine)
		if owner := *model.Map().Get(*vm.ResourcePool).(*simulator.ResourcePool).Parent; owner.Type == "ClusterComputeResource" {
			bed.vm, bed.cluster = vm, owner
			break
		}
	}
	if bed.vm == nil {
		t.Fatal("the model has no VM in a cluster's root pool")
	}
	bed.folder = *bed.vm.Parent
	bed.pool = *bed.vm.ResourcePool
	for name, privileges := range map[string][]string{
		"snapshot": {"VirtualMachine.State.CreateSnapshot"},
		"read":     {"VirtualMachine.Provisioning.DiskRandomRead"},
		"crypto":   {"Cryptographer.Access"},
	} {
		body := bed.manager.AddAuthorizationRole(&types.AddAuthorizationRole{Name: name, PrivIds: privileges}).(*methods.AddAuthorizationRoleBody)
		if body.Fault_ != nil {
			t.Fatal(body.Fault_)
		}
		bed.roles[name] = body.Res.Returnval
	}
	bed.roles["NoAccess"] = -5
	bed.roles["ReadOnly"] = -2
	return bed
}

func (b *authBed) grant(entity types.ManagedObjectReference, principal string, group bool, role string, propagate bool) {
	b.t.Helper()
	body := b.manager.SetEntityPermissions(b.ctx, &types.SetEntityPermissions{Entity: entity, Permission: []types.Permission{
		{Principal: principal, Group: group, RoleId: b.roles[role], Propagate: propagate},
	}}).(*methods.SetEntityPermissionsBody)
	if body.Fault_ != nil {
		b.t.Fatal(body.Fault_)
	}
}

// held lists the test roles' privileges the user holds on the VM.
func (b *authBed) held(user string) []string {
	wanted := []string{"Cryptographer.Access", "VirtualMachine.Provisioning.DiskRandomRead", "VirtualMachine.State.CreateSnapshot"}
	body := b.manager.HasUserPrivilegeOnEntities(b.ctx, &types.HasUserPrivilegeOnEntities{
		Entities: []types.ManagedObjectReference{b.vm.Self}, UserName: user, PrivId: wanted,
	}).(*methods.HasUserPrivilegeOnEntitiesBody)
	var granted []string
	for _, availability := range body.Res.Returnval[0].PrivAvailability {
		if availability.IsGranted {
			granted = append(granted, availability.PrivId)
		}
	}
	sort.Strings(granted)
	return granted
}

func expect(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("held %v, want %v", got, want)
	}
}

// vSphere Security, "Multiple Permission Settings": a VM in a folder and a
// resource pool "inherits all permission settings from both"; and a
// ReadOnly on the root does not hide a role granted on the cluster.
func TestVMInheritsFromFolderAndResourcePool(t *testing.T) {
	bed := newAuthBed(t, nil)
	bed.grant(bed.folder, "VSPHERE.LOCAL\\backup", false, "snapshot", true)
	bed.grant(bed.pool, "VSPHERE.LOCAL\\backup", false, "read", true)
	expect(t, bed.held("backup@vsphere.local"), "VirtualMachine.Provisioning.DiskRandomRead", "VirtualMachine.State.CreateSnapshot")

	bed.grant(bed.root, "VSPHERE.LOCAL\\clusterop", false, "ReadOnly", true)
	bed.grant(bed.cluster, "VSPHERE.LOCAL\\clusterop", false, "read", true)
	expect(t, bed.held("VSPHERE.LOCAL\\clusterop"), "VirtualMachine.Provisioning.DiskRandomRead")
}

// vSphere Security, "Example 2: Child Permissions Overriding Parent Permissions".
func TestNearestPermissionWins(t *testing.T) {
	bed := newAuthBed(t, nil)
	bed.grant(bed.root, "VSPHERE.LOCAL\\backup", false, "crypto", true)
	bed.grant(bed.folder, "VSPHERE.LOCAL\\backup", false, "snapshot", true)
	bed.grant(bed.pool, "VSPHERE.LOCAL\\backup", false, "snapshot", true)
	expect(t, bed.held("backup@vsphere.local"), "VirtualMachine.State.CreateSnapshot")
	bed.grant(bed.vm.Self, "VSPHERE.LOCAL\\backup", false, "read", false)
	expect(t, bed.held("backup@vsphere.local"), "VirtualMachine.Provisioning.DiskRandomRead")
}

// vSphere Security, "Hierarchical Inheritance of Permissions": a permission
// that does not propagate applies to its own object only.
func TestNonPropagatingPermissionStaysOnItsEntity(t *testing.T) {
	bed := newAuthBed(t, nil)
	bed.grant(bed.folder, "VSPHERE.LOCAL\\backup", false, "snapshot", false)
	expect(t, bed.held("backup@vsphere.local"))
	body := bed.manager.HasUserPrivilegeOnEntities(bed.ctx, &types.HasUserPrivilegeOnEntities{
		Entities: []types.ManagedObjectReference{bed.folder}, UserName: "backup@vsphere.local",
		PrivId: []string{"VirtualMachine.State.CreateSnapshot"},
	}).(*methods.HasUserPrivilegeOnEntitiesBody)
	if !body.Res.Returnval[0].PrivAvailability[0].IsGranted {
		t.Fatal("the folder itself should hold its own non-propagating permission")
	}
	// RetrieveEntityPermissions(inherited) lists propagating ancestors only.
	inherited := bed.manager.RetrieveEntityPermissions(bed.ctx, &types.RetrieveEntityPermissions{Entity: bed.vm.Self, Inherited: true}).(*methods.RetrieveEntityPermissionsBody)
	for _, permission := range inherited.Res.Returnval {
		if !permission.Propagate {
			t.Fatalf("inherited permissions include a non-propagating one: %+v", permission)
		}
	}
}

// vSphere Security, "Example 1: Inheritance of Multiple Permissions": the
// groups' permissions add up; group membership comes from -group.
func TestGroupPermissionsAddUp(t *testing.T) {
	bed := newAuthBed(t, groupList{
		"VSPHERE.LOCAL\\snapshotters": {"operator@vsphere.local"},
		"VSPHERE.LOCAL\\readers":      {"VSPHERE.LOCAL\\Operator"},
	})
	bed.grant(bed.folder, "VSPHERE.LOCAL\\snapshotters", true, "snapshot", true)
	bed.grant(bed.folder, "vsphere.local\\readers", true, "read", true)
	expect(t, bed.held("operator@vsphere.local"), "VirtualMachine.Provisioning.DiskRandomRead", "VirtualMachine.State.CreateSnapshot")
	expect(t, bed.held("outsider@vsphere.local"))
}

// vSphere Security, "Multiple Permission Settings": "the user's permission
// takes precedence over all group permissions" on the same object; NoAccess
// ("Example 3: User Role Overriding Group Role") then holds nothing.
func TestUserPermissionOverridesGroupsOnTheSameEntity(t *testing.T) {
	bed := newAuthBed(t, groupList{"VSPHERE.LOCAL\\operators": {"blocked@vsphere.local", "operator@vsphere.local"}})
	bed.grant(bed.folder, "VSPHERE.LOCAL\\operators", true, "snapshot", true)
	bed.grant(bed.folder, "VSPHERE.LOCAL\\blocked", false, "NoAccess", true)
	expect(t, bed.held("operator@vsphere.local"), "VirtualMachine.State.CreateSnapshot")
	expect(t, bed.held("blocked@vsphere.local"))
}

// The session's own user is evaluated with its groups too (HasPrivilegeOnEntities).
func TestSessionUserHoldsItsGroupsPrivileges(t *testing.T) {
	bed := newAuthBed(t, groupList{"VSPHERE.LOCAL\\operators": {"operator@vsphere.local"}})
	bed.grant(bed.pool, "VSPHERE.LOCAL\\operators", true, "read", true)
	ctx := &simulator.Context{Map: bed.model.Map(), Session: &simulator.Session{UserSession: types.UserSession{UserName: "operator@vsphere.local"}}}
	body := bed.manager.HasPrivilegeOnEntities(ctx, &types.HasPrivilegeOnEntities{
		Entity: []types.ManagedObjectReference{bed.vm.Self}, PrivId: []string{"VirtualMachine.Provisioning.DiskRandomRead"},
	}).(*methods.HasPrivilegeOnEntitiesBody)
	if !body.Res.Returnval[0].PrivAvailability[0].IsGranted {
		t.Fatal("the session user should hold what its group was granted on the VM's resource pool")
	}
	if !bed.manager.hasPrivilege(ctx, bed.vm.Self, "VirtualMachine.Provisioning.DiskRandomRead") {
		t.Fatal("hasPrivilege disagrees with HasPrivilegeOnEntities")
	}
}

// vSphere API reference, AuthorizationManager.SetEntityPermissions: "updates
// rules if already present for the given user or group"; others stay.
func TestSetEntityPermissionsUpdatesOnePrincipalAndKeepsTheOthers(t *testing.T) {
	bed := newAuthBed(t, nil)
	bed.grant(bed.vm.Self, "VSPHERE.LOCAL\\a", false, "snapshot", true)
	bed.grant(bed.vm.Self, "VSPHERE.LOCAL\\b", false, "read", true)
	bed.grant(bed.vm.Self, "vsphere.local\\A", false, "crypto", true)
	own := bed.manager.RetrieveEntityPermissions(bed.ctx, &types.RetrieveEntityPermissions{Entity: bed.vm.Self}).(*methods.RetrieveEntityPermissionsBody)
	roles := map[string]int32{}
	for _, permission := range own.Res.Returnval {
		roles[normalizePrincipal(permission.Principal)] = permission.RoleId
	}
	if !reflect.DeepEqual(roles, map[string]int32{"vsphere.local\\a": bed.roles["crypto"], "vsphere.local\\b": bed.roles["read"]}) {
		t.Fatalf("permissions on the VM: %v", roles)
	}
	bed.manager.RemoveEntityPermission(&types.RemoveEntityPermission{Entity: bed.vm.Self, User: "a@vsphere.local"})
	expect(t, bed.held("a@vsphere.local"))
	expect(t, bed.held("b@vsphere.local"), "VirtualMachine.Provisioning.DiskRandomRead")
}

// The administrator holds Admin on the root, as on a real vCenter.
func TestAdministratorHoldsEverything(t *testing.T) {
	bed := newAuthBed(t, nil)
	expect(t, bed.held("administrator@vsphere.local"), "Cryptographer.Access", "VirtualMachine.Provisioning.DiskRandomRead", "VirtualMachine.State.CreateSnapshot")
}

// vSphere API reference, VirtualMachine.QueryChangedDiskAreas: "Required
// privileges: VirtualMachine.Provisioning.DiskRandomRead".
func TestQueryChangedDiskAreasNeedsDiskRandomRead(t *testing.T) {
	bed := newAuthBed(t, nil)
	tracker := installChangeTracking(bed.model)
	bed.grant(bed.vm.Self, "VSPHERE.LOCAL\\snapshots", false, "snapshot", false)
	bed.grant(bed.vm.Self, "VSPHERE.LOCAL\\reader", false, "read", false)
	query := func(user string) soap.HasFault {
		ctx := &simulator.Context{Map: bed.model.Map(), Session: &simulator.Session{UserSession: types.UserSession{UserName: user}}}
		return tracker.QueryChangedDiskAreas(ctx, &types.QueryChangedDiskAreas{This: bed.vm.Self, DeviceKey: 2000, ChangeId: "*"})
	}
	denied := query("snapshots@vsphere.local").Fault()
	if denied == nil {
		t.Fatal("a user without DiskRandomRead queried changed areas")
	}
	if fault, ok := denied.VimFault().(*types.NoPermission); !ok || fault.PrivilegeId != "VirtualMachine.Provisioning.DiskRandomRead" {
		t.Fatalf("want NoPermission for DiskRandomRead, got %#v", denied.VimFault())
	}
	if allowed := query("reader@vsphere.local").Fault(); allowed != nil {
		if _, ok := allowed.VimFault().(*types.NoPermission); ok {
			t.Fatalf("a user with DiskRandomRead was refused: %v", allowed.String)
		}
	}
}
