package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// A snapshot that vCenter will not remove, on request of a test.
//
// A real vCenter fails RemoveSnapshot_Task when the snapshot's disks are
// still in use, for example hot-added to a backup proxy that did not release
// them, or locked by another host: the task ends in error with a FileLocked
// fault ("Unable to access file ... since it is locked"). A backup product
// must then keep the backup it has (every disk is stored) and name the
// snapshot left behind. The stock simulator always removes a snapshot, so
// the launcher fails the removal task with FileLocked for a VM whose
// extraConfig has removeSnapshotFaultKey set to "FileLocked".
const removeSnapshotFaultKey = "vmcrypt.test.removeSnapshotFault"

type snapshotRemovalFaults struct{}

func init() {
	simulator.RegisterEndpoint(func(_ *simulator.Service, registry *simulator.Registry) {
		installSnapshotRemovalFaults(registry)
	})
}

func installSnapshotRemovalFaults(registry *simulator.Registry) {
	faults := &snapshotRemovalFaults{}
	previous := registry.Handler
	registry.Handler = func(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if previous != nil {
			if handler, fault := previous(ctx, method); handler != nil || fault != nil {
				return handler, fault
			}
		}
		if method.This.Type == "VirtualMachineSnapshot" && method.Name == "RemoveSnapshot_Task" &&
			removalRefused(ctx, method.This) {
			method.This = faults.Reference()
			return faults, nil
		}
		return nil, nil
	}
}

// removalRefused says whether the snapshot's VM asks for its removal to fail.
func removalRefused(ctx *simulator.Context, ref types.ManagedObjectReference) bool {
	snapshot, ok := ctx.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return false
	}
	vm, ok := ctx.Map.Get(snapshot.Vm).(*simulator.VirtualMachine)
	if !ok || vm.Config == nil {
		return false
	}
	for _, option := range vm.Config.ExtraConfig {
		if value := option.GetOptionValue(); value.Key == removeSnapshotFaultKey && value.Value == "FileLocked" {
			return true
		}
	}
	return false
}

func (f *snapshotRemovalFaults) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherSnapshotRemovalFaults", Value: "faults"}
}

func (f *snapshotRemovalFaults) RemoveSnapshotTask(ctx *simulator.Context, req *types.RemoveSnapshot_Task) soap.HasFault {
	var entity mo.Reference = ctx.Map.Get(req.This)
	if snapshot, ok := entity.(*simulator.VirtualMachineSnapshot); ok {
		if vm := ctx.Map.Get(snapshot.Vm); vm != nil {
			entity = vm
		}
	}
	task := simulator.CreateTask(entity, "removeSnapshot",
		func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
			return nil, &types.FileLocked{FileFault: types.FileFault{File: req.This.Value}}
		})
	return &methods.RemoveSnapshot_TaskBody{Res: &types.RemoveSnapshot_TaskResponse{Returnval: task.Run(ctx)}}
}
