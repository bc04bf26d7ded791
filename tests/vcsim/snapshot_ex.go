package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Snapshot requests, recorded so a test can assert exactly what was asked.
//
// govmomi v0.56.0's simulator implements CreateSnapshotEx_Task (and runs
// CreateSnapshot_Task through it, turning quiesce=true into an empty
// GuestQuiesceSpec), but it keeps nothing of the quiesce spec except
// "quiesced: true" on the snapshot tree. A backup product must ask for the
// kind of quiescing it promises (file-system only, a VSS context without
// application writers on Windows), so this file records every
// CreateSnapshotEx_Task and CreateSnapshot_Task request as one JSON line in
// SnapshotRequestLog(home) ("snapshot-requests.jsonl" in the simulator
// home, the "home" of the ready line): the VM, its power state when the
// call arrived, name, description, memory, and the quiesce spec with its
// type and every field.
//
// One vSphere rule is emulated, from the API reference of
// CreateSnapshotEx_Task (and CreateSnapshot_Task's quiesce flag): "If the
// virtual machine is powered off or VMware Tools are not available, the
// quiesce spec is ignored." (https://developer.broadcom.com/xapis/
// virtual-infrastructure-json-api/latest/data-structures/CreateSnapshotExRequestType).
// So a quiesced snapshot of a powered-off VM is NOT refused: it is taken,
// and its tree entry says quiesced=false, where the stock simulator says
// true. No refusal was found documented for that case, so none is made up.
//
// How it hooks in (same mechanisms as cbt.go, where the comment explains
// why a Registry.Handler has to redirect method.This to add behaviour):
//   - the Handler, installed when the server starts (RegisterEndpoint, so
//     it wraps the handlers registerExtensions installed), sends both
//     snapshot methods of a VirtualMachine to the recorder, which logs the
//     request and calls the simulator's own implementation under the VM's
//     lock - so the task is the simulator's "createSnapshotEx" task and
//     cbt.go's hook still assigns changeIds on either path;
//   - a RegisterObject handler wraps that task's Execute to clear
//     "quiesced" on the new tree entry when the VM is powered off.

// snapshotRequestLogName is the recorder's file in the simulator home.
const snapshotRequestLogName = "snapshot-requests.jsonl"

// SnapshotRequestLog is where the requests of the simulator at home are logged.
func SnapshotRequestLog(home string) string {
	return filepath.Join(home, snapshotRequestLogName)
}

// quiesceRecord is a quiesce spec as received, with its vSphere type name.
type quiesceRecord struct {
	Type                   string `json:"type"`
	Timeout                int32  `json:"timeout"`
	VssBackupType          *int32 `json:"vssBackupType,omitempty"`
	VssBootableSystemState *bool  `json:"vssBootableSystemState,omitempty"`
	VssPartialFileSupport  *bool  `json:"vssPartialFileSupport,omitempty"`
	VssBackupContext       string `json:"vssBackupContext,omitempty"`
}

// snapshotRequest is one logged call.
type snapshotRequest struct {
	Time        string         `json:"time"`
	Method      string         `json:"method"`
	VM          string         `json:"vm"`
	VMName      string         `json:"vm_name"`
	PowerState  string         `json:"power_state"`
	Name        string         `json:"name"`
	Description string         `json:"description"`
	Memory      bool           `json:"memory"`
	Quiesce     *bool          `json:"quiesce,omitempty"` // CreateSnapshot_Task only
	QuiesceSpec *quiesceRecord `json:"quiesce_spec"`
	Task        string         `json:"task,omitempty"`
	Fault       string         `json:"fault,omitempty"`
}

// snapshotRecorder logs snapshot requests and runs them.
type snapshotRecorder struct {
	mu   sync.Mutex
	file string
}

func init() {
	simulator.RegisterEndpoint(func(service *simulator.Service, registry *simulator.Registry) {
		home := simulatorHome(&simulator.Model{Service: service})
		if home == "" {
			log.Printf("snapshot requests are not recorded: the simulator has no home")
			return
		}
		installSnapshotRecorder(registry, SnapshotRequestLog(home))
	})
}

func installSnapshotRecorder(registry *simulator.Registry, file string) *snapshotRecorder {
	recorder := &snapshotRecorder{file: file}
	previous := registry.Handler
	registry.Handler = func(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if previous != nil {
			if handler, fault := previous(ctx, method); handler != nil || fault != nil {
				return handler, fault
			}
		}
		if method.This.Type == "VirtualMachine" && (method.Name == "CreateSnapshotEx_Task" || method.Name == "CreateSnapshot_Task") {
			method.This = recorder.Reference()
			return recorder, nil
		}
		return nil, nil
	}
	registry.AddHandler(recorder)
	return recorder
}

// Reference is the method.This of redirected calls; no registry holds it.
func (r *snapshotRecorder) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherSnapshotRecorder", Value: "snapshots"}
}

func (r *snapshotRecorder) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	record := &snapshotRequest{Method: "CreateSnapshotEx_Task", Name: req.Name, Description: req.Description,
		Memory: req.Memory, QuiesceSpec: quiesceOf(req.QuiesceSpec)}
	return r.run(ctx, req.This, "CreateSnapshotEx_Task", record, func(vm *simulator.VirtualMachine) soap.HasFault {
		return vm.CreateSnapshotExTask(ctx, req)
	})
}

func (r *snapshotRecorder) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	quiesce := req.Quiesce
	record := &snapshotRequest{Method: "CreateSnapshot_Task", Name: req.Name, Description: req.Description,
		Memory: req.Memory, Quiesce: &quiesce}
	if req.Quiesce { // what the simulator turns it into
		record.QuiesceSpec = quiesceOf(&types.VirtualMachineGuestQuiesceSpec{})
	}
	return r.run(ctx, req.This, "CreateSnapshot_Task", record, func(vm *simulator.VirtualMachine) soap.HasFault {
		return vm.CreateSnapshotTask(ctx, req)
	})
}

// run does what the dispatcher would have done for the VM (disabled
// methods, the VM's lock), then logs the request with its task or fault.
func (r *snapshotRecorder) run(ctx *simulator.Context, ref types.ManagedObjectReference, method string,
	record *snapshotRequest, call func(*simulator.VirtualMachine) soap.HasFault) soap.HasFault {
	vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
	if !ok {
		return &serverFault{simulator.Fault("", &types.ManagedObjectNotFound{Obj: ref})}
	}
	record.VM = ref.Value
	var body soap.HasFault
	ctx.WithLock(vm, func() {
		record.VMName = vm.Name
		record.PowerState = string(vm.Runtime.PowerState)
		if slices.Contains(vm.DisabledMethod, method) || slices.Contains(vm.DisabledMethod, strings.Replace(method, "_Task", "Task", 1)) {
			body = &serverFault{simulator.Fault(fmt.Sprintf("%s method is disabled: %s", ref, method), &types.MethodDisabled{})}
			return
		}
		body = call(vm)
	})
	if fault := body.Fault(); fault != nil {
		record.Fault = fmt.Sprintf("%T", fault.VimFault())
	} else {
		record.Task = taskOf(body)
	}
	r.write(record)
	return body
}

func taskOf(body soap.HasFault) string {
	switch res := body.(type) {
	case *methods.CreateSnapshotEx_TaskBody:
		return res.Res.Returnval.Value
	case *methods.CreateSnapshot_TaskBody:
		return res.Res.Returnval.Value
	}
	return ""
}

// serverFault is a method body that only carries a fault.
type serverFault struct{ fault *soap.Fault }

func (f *serverFault) Fault() *soap.Fault { return f.fault }

func quiesceOf(spec types.BaseVirtualMachineGuestQuiesceSpec) *quiesceRecord {
	if spec == nil {
		return nil
	}
	switch s := spec.(type) {
	case *types.VirtualMachineWindowsQuiesceSpec:
		return &quiesceRecord{Type: "VirtualMachineWindowsQuiesceSpec", Timeout: s.Timeout,
			VssBackupType: &s.VssBackupType, VssBootableSystemState: s.VssBootableSystemState,
			VssPartialFileSupport: s.VssPartialFileSupport, VssBackupContext: s.VssBackupContext}
	case *types.VirtualMachineGuestQuiesceSpec:
		return &quiesceRecord{Type: "VirtualMachineGuestQuiesceSpec", Timeout: s.Timeout}
	}
	return &quiesceRecord{Type: fmt.Sprintf("%T", spec), Timeout: spec.GetVirtualMachineGuestQuiesceSpec().Timeout}
}

func (r *snapshotRecorder) write(record *snapshotRequest) {
	record.Time = time.Now().UTC().Format(time.RFC3339Nano)
	line, err := json.Marshal(record)
	if err != nil {
		log.Printf("snapshot request not recorded: %v", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	f, err := os.OpenFile(r.file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
	}
	if err != nil {
		log.Printf("snapshot request not recorded in %s: %v", r.file, err)
	}
}

// --- quiesced=false for a powered-off VM ----------------------------------

func (r *snapshotRecorder) PutObject(ctx *simulator.Context, obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok || task.Info.DescriptionId != "VirtualMachine.createSnapshotEx" || task.Info.Entity == nil {
		return
	}
	vm, ok := ctx.Map.Get(*task.Info.Entity).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	execute := task.Execute
	task.Execute = func(run *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		result, fault := execute(run)
		if fault == nil {
			notQuiescedWhenOff(ctx, vm, result)
		}
		return result, fault
	}
}

func (r *snapshotRecorder) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

func (r *snapshotRecorder) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

// notQuiescedWhenOff runs under the VM lock the task holds.
func notQuiescedWhenOff(ctx *simulator.Context, vm *simulator.VirtualMachine, result types.AnyType) {
	ref, ok := result.(types.ManagedObjectReference)
	if !ok || vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn || vm.Snapshot == nil {
		return
	}
	if tree := findTree(vm.Snapshot.RootSnapshotList, ref); tree != nil && tree.Quiesced {
		tree.Quiesced = false
		ctx.Map.Update(ctx, vm, []types.PropertyChange{{Name: "snapshot.rootSnapshotList", Val: vm.Snapshot.RootSnapshotList}})
	}
}

func findTree(trees []types.VirtualMachineSnapshotTree, ref types.ManagedObjectReference) *types.VirtualMachineSnapshotTree {
	for i := range trees {
		if trees[i].Snapshot == ref {
			return &trees[i]
		}
		if found := findTree(trees[i].ChildSnapshotList, ref); found != nil {
			return found
		}
	}
	return nil
}
