package main

import (
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/pbm"
	pbmmethods "github.com/vmware/govmomi/pbm/methods"
	pbmsim "github.com/vmware/govmomi/pbm/simulator"
	pbmtypes "github.com/vmware/govmomi/pbm/types"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The simulator drops the storage policies a ConfigSpec asks for and PBM
// always reports "no policy", so nothing could prove that our product reads
// VM home and disk policies correctly. This file keeps the associations
// vCenter would keep and answers PBM's association queries from them.
//
// How it hooks in, without touching govmomi:
//   - through the registry's task hooks (task_hooks.go): for the four
//     methods that carry policies the store returns a hook that writes the
//     association after the simulator applied the spec (device keys are
//     final then) and before the task turns "success" - a client that
//     waited for the task always sees it;
//   - a Registry RegisterObject handler forgets a VM's associations when the
//     VM leaves the inventory (Destroy_Task, UnregisterVM);
//   - on /pbm the ProfileManager is swapped for a wrapper that only answers
//     PbmQueryAssociatedProfile(s) differently.

// policyStore holds storage policy associations, keyed by VM moref value.
type policyStore struct {
	mu    sync.Mutex
	home  map[string]string
	disks map[string]map[int32]string
}

func newPolicyStore() *policyStore {
	return &policyStore{
		home:  map[string]string{},
		disks: map[string]map[int32]string{},
	}
}

// installPolicyAssociations wires the store into the vim25 registry now and
// into the PBM endpoint when the server starts.
func installPolicyAssociations(model *simulator.Model) *policyStore {
	store := newPolicyStore()
	registry := model.Map()
	taskHooksFor(registry).watch(store.watch)
	registry.AddHandler(store)
	// Runs after pbm/simulator's endpoint (registered in its init), so the
	// merge below replaces its ProfileManager rather than being replaced.
	simulator.RegisterEndpoint(func(service *simulator.Service, _ *simulator.Registry) {
		service.RegisterSDK(store.pbmOverrides())
	})
	return store
}

// pbmOverrides is a registry for /pbm holding only the wrapped
// ProfileManager; RegisterSDK merges it into the live PBM registry. The
// inner manager comes from a fresh pbm/simulator instance, identical to the
// one it replaces since no request has been served yet.
func (s *policyStore) pbmOverrides() *simulator.Registry {
	fresh := pbmsim.New()
	content := fresh.Get(pbm.ServiceInstance).(*pbmsim.ServiceInstance).Content
	inner := fresh.Get(content.ProfileManager).(*pbmsim.ProfileManager)

	overrides := simulator.NewRegistry()
	overrides.Namespace = pbm.Namespace
	overrides.Path = pbm.Path
	overrides.Put(&associatingProfileManager{ProfileManager: inner, store: s})
	return overrides
}

// --- vim25 side: observing requests and their tasks ---------------------

// watch gives a policy-carrying request the hook that records it once its
// task succeeded.
func (s *policyStore) watch(method *simulator.Method) *taskHook {
	switch req := method.Body.(type) {
	case *types.CreateVM_Task:
		return &taskHook{descriptionID: "Folder.createVm", after: func(_ *simulator.Context, _ types.ManagedObjectReference, result types.AnyType) {
			if vm, ok := result.(types.ManagedObjectReference); ok {
				s.applyConfigSpec(vm.Value, &req.Config)
			}
		}}
	case *types.ReconfigVM_Task:
		return &taskHook{descriptionID: "VirtualMachine.reconfigVm", after: func(_ *simulator.Context, vm types.ManagedObjectReference, _ types.AnyType) {
			s.applyConfigSpec(vm.Value, &req.Spec)
		}}
	case *types.RelocateVM_Task:
		return &taskHook{descriptionID: "VirtualMachine.relocateVm", after: func(_ *simulator.Context, vm types.ManagedObjectReference, _ types.AnyType) {
			s.applyRelocateSpec(vm.Value, &req.Spec)
		}}
	case *types.CloneVM_Task:
		return &taskHook{descriptionID: "VirtualMachine.cloneVm", after: func(_ *simulator.Context, source types.ManagedObjectReference, result types.AnyType) {
			if clone, ok := result.(types.ManagedObjectReference); ok {
				s.applyCloneSpec(source.Value, clone.Value, &req.Spec)
			}
		}}
	}
	return nil
}

// Reference names the store among the registry's RegisterObject handlers.
func (s *policyStore) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherPolicyStore", Value: "policy-store"}
}

func (s *policyStore) PutObject(*simulator.Context, mo.Reference) {}

func (s *policyStore) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

// RemoveObject drops a VM's associations with the VM, as vCenter does.
func (s *policyStore) RemoveObject(_ *simulator.Context, ref types.ManagedObjectReference) {
	if ref.Type != "VirtualMachine" {
		return
	}
	s.mu.Lock()
	delete(s.home, ref.Value)
	delete(s.disks, ref.Value)
	s.mu.Unlock()
}

// --- recording -----------------------------------------------------------

// requestedProfile reads a profile spec list: a defined profile sets its id,
// an empty profile spec clears (""), and no spec leaves things as they are.
func requestedProfile(specs []types.BaseVirtualMachineProfileSpec) (id string, given bool) {
	for _, spec := range specs {
		switch spec := spec.(type) {
		case *types.VirtualMachineDefinedProfileSpec:
			id, given = spec.ProfileId, true
		case *types.VirtualMachineEmptyProfileSpec:
			id, given = "", true
		}
	}
	return id, given
}

// setHome and setDisk expect s.mu held; "" removes the association.
func (s *policyStore) setHome(vm, id string) {
	if id == "" {
		delete(s.home, vm)
	} else {
		s.home[vm] = id
	}
}

func (s *policyStore) setDisk(vm string, key int32, id string) {
	disks := s.disks[vm]
	if id == "" {
		delete(disks, key)
		return
	}
	if disks == nil {
		disks = map[int32]string{}
		s.disks[vm] = disks
	}
	disks[key] = id
}

func (s *policyStore) applyConfigSpec(vm string, spec *types.VirtualMachineConfigSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, given := requestedProfile(spec.VmProfile); given {
		s.setHome(vm, id)
	}
	s.applyDeviceChanges(vm, spec.DeviceChange)
}

// applyDeviceChanges reads device keys after the simulator applied the
// change: it assigns keys to new devices in the request's own structs.
func (s *policyStore) applyDeviceChanges(vm string, changes []types.BaseVirtualDeviceConfigSpec) {
	for _, change := range changes {
		dspec := change.GetVirtualDeviceConfigSpec()
		if _, isDisk := dspec.Device.(*types.VirtualDisk); !isDisk {
			continue
		}
		key := dspec.Device.GetVirtualDevice().Key
		id, given := requestedProfile(dspec.Profile)
		switch dspec.Operation {
		case types.VirtualDeviceConfigSpecOperationAdd:
			// A new disk starts without a policy unless one is asked for.
			s.setDisk(vm, key, id)
		case types.VirtualDeviceConfigSpecOperationEdit:
			if given {
				s.setDisk(vm, key, id)
			}
		case types.VirtualDeviceConfigSpecOperationRemove:
			s.setDisk(vm, key, "")
		}
	}
}

// applyRelocateSpec: relocating keeps the policies unless the spec names
// new ones for the home (profile) or for disks (disk[].profile).
func (s *policyStore) applyRelocateSpec(vm string, spec *types.VirtualMachineRelocateSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applyLocation(vm, spec)
}

func (s *policyStore) applyLocation(vm string, spec *types.VirtualMachineRelocateSpec) {
	if id, given := requestedProfile(spec.Profile); given {
		s.setHome(vm, id)
	}
	for _, locator := range spec.Disk {
		if id, given := requestedProfile(locator.Profile); given {
			s.setDisk(vm, locator.DiskId, id)
		}
	}
	s.applyDeviceChanges(vm, spec.DeviceChange)
}

// applyCloneSpec: the clone starts with the source's policies (the simulator
// keeps the source's disk keys), like vSphere's "keep existing VM storage
// policies", then takes whatever the location and config specs ask for.
func (s *policyStore) applyCloneSpec(source, clone string, spec *types.VirtualMachineCloneSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, ok := s.home[source]; ok {
		s.home[clone] = id
	}
	for key, id := range s.disks[source] {
		s.setDisk(clone, key, id)
	}
	s.applyLocation(clone, &spec.Location)
	if spec.Config != nil {
		if id, given := requestedProfile(spec.Config.VmProfile); given {
			s.setHome(clone, id)
		}
		s.applyDeviceChanges(clone, spec.Config.DeviceChange)
	}
}

// profilesOf answers for one PBM entity: "vm-N" for a VM home,
// "vm-N:<disk key>" for a disk; other object types have none here.
func (s *policyStore) profilesOf(entity pbmtypes.PbmServerObjectRef) []pbmtypes.PbmProfileId {
	s.mu.Lock()
	defer s.mu.Unlock()
	var id string
	switch pbmtypes.PbmObjectType(entity.ObjectType) {
	case pbmtypes.PbmObjectTypeVirtualMachine:
		id = s.home[entity.Key]
	case pbmtypes.PbmObjectTypeVirtualDiskId:
		vm, diskKey, ok := strings.Cut(entity.Key, ":")
		if !ok {
			return nil
		}
		key, err := strconv.ParseInt(diskKey, 10, 32)
		if err != nil {
			return nil
		}
		id = s.disks[vm][int32(key)]
	}
	if id == "" {
		return nil
	}
	return []pbmtypes.PbmProfileId{{UniqueId: id}}
}

// --- PBM side ------------------------------------------------------------

// associatingProfileManager is pbm/simulator's ProfileManager with the
// association queries answered from the store.
type associatingProfileManager struct {
	*pbmsim.ProfileManager
	store *policyStore
}

func (m *associatingProfileManager) PbmQueryAssociatedProfile(req *pbmtypes.PbmQueryAssociatedProfile) soap.HasFault {
	return &pbmmethods.PbmQueryAssociatedProfileBody{Res: &pbmtypes.PbmQueryAssociatedProfileResponse{
		Returnval: m.store.profilesOf(req.Entity),
	}}
}

func (m *associatingProfileManager) PbmQueryAssociatedProfiles(req *pbmtypes.PbmQueryAssociatedProfiles) soap.HasFault {
	results := make([]pbmtypes.PbmQueryProfileResult, 0, len(req.Entities))
	for _, entity := range req.Entities {
		results = append(results, pbmtypes.PbmQueryProfileResult{
			Object:    entity,
			ProfileId: m.store.profilesOf(entity),
		})
	}
	return &pbmmethods.PbmQueryAssociatedProfilesBody{Res: &pbmtypes.PbmQueryAssociatedProfilesResponse{
		Returnval: results,
	}}
}
