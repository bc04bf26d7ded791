package main

import (
	"context"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// TestSnapshotChangeIDAndQuery runs the hooks in-process (run it with -race:
// epochs are recorded on the task goroutine).
func TestSnapshotChangeIDAndQuery(t *testing.T) {
	model := simulator.VPX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	installChangeTracking(model)
	ctx, client := connect(t, model)
	vm := findVM(ctx, t, client, "/DC0/vm/DC0_H0_VM0")
	enableChangeTracking(ctx, t, vm)

	simVM := model.Map().Get(vm.Reference()).(*simulator.VirtualMachine)
	disk := flatDisks(simVM.Config.Hardware.Device)
	if len(disk) != 1 {
		t.Fatalf("want one flat disk, got %d", len(disk))
	}
	var key int32
	for key = range disk {
	}
	file, err := flatExtentPath(&simulator.Context{Map: model.Map()}, simVM, disk[key].Backing.(*types.VirtualDiskFlatVer2BackingInfo))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, offset := range []int64{10, 200 << 10} {
		if _, err := f.WriteAt([]byte("data"), offset); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()

	task, err := vm.CreateSnapshot(ctx, "cbt", "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snapshotRef := info.Result.(types.ManagedObjectReference)
	var snapshot mo.VirtualMachineSnapshot
	if err := client.RetrieveOne(ctx, snapshotRef, []string{"config.hardware.device"}, &snapshot); err != nil {
		t.Fatal(err)
	}
	changeID := flatDisks(snapshot.Config.Hardware.Device)[key].Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
	if !changeIDPattern.MatchString(changeID) {
		t.Fatalf("snapshot changeId %q", changeID)
	}

	query := func(change string) []types.DiskChangeExtent {
		t.Helper()
		res, err := methods.QueryChangedDiskAreas(ctx, client.Client, &types.QueryChangedDiskAreas{
			This: vm.Reference(), Snapshot: &snapshotRef, DeviceKey: key, ChangeId: change,
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.Returnval.ChangedArea
	}
	want := []types.DiskChangeExtent{{Start: 0, Length: cbtBlockSize}, {Start: 3 * cbtBlockSize, Length: cbtBlockSize}}
	if got := query("*"); !reflect.DeepEqual(got, want) {
		t.Errorf("*: got %+v, want %+v", got, want)
	}
	if got := query(changeID); len(got) != 0 {
		t.Errorf("%s: got %+v, want nothing", changeID, got)
	}
}

func TestPageCaps(t *testing.T) {
	// Blocks 0-1 merge; a 2 GiB page starting at block 1 clips the first area.
	got := page([]int64{0, 1, 5}, cbtBlockSize, 1<<40)
	want := &types.DiskChangeInfo{StartOffset: cbtBlockSize, Length: cbtPageBytes, ChangedArea: []types.DiskChangeExtent{
		{Start: cbtBlockSize, Length: cbtBlockSize}, {Start: 5 * cbtBlockSize, Length: cbtBlockSize},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	var spaced []int64
	for i := int64(0); i < cbtPageAreas+10; i++ {
		spaced = append(spaced, 2*i)
	}
	got = page(spaced, 0, 1<<40)
	if len(got.ChangedArea) != cbtPageAreas || got.Length != (2*(cbtPageAreas-1)+1)*cbtBlockSize {
		t.Errorf("area cap: %d areas, length %d", len(got.ChangedArea), got.Length)
	}
}

// trackedBed is a simulator with change tracking, a client, and two CBT-enabled VMs.
type trackedBed struct {
	ctx    context.Context
	model  *simulator.Model
	client *govmomi.Client
	vms    []*object.VirtualMachine
}

func newTrackedBed(t *testing.T) *trackedBed {
	t.Helper()
	model := simulator.VPX()
	t.Cleanup(model.Remove)
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	installChangeTracking(model)
	ctx, client := connect(t, model)
	bed := &trackedBed{ctx: ctx, model: model, client: client}
	for _, name := range []string{"DC0_H0_VM0", "DC0_H0_VM1"} {
		vm := findVM(ctx, t, client, "/DC0/vm/"+name)
		enableChangeTracking(ctx, t, vm)
		bed.vms = append(bed.vms, vm)
	}
	return bed
}

// disk is the key and flat file of a VM's only flat disk.
func (bed *trackedBed) disk(t *testing.T, vm *object.VirtualMachine) (int32, string) {
	t.Helper()
	simVM := bed.model.Map().Get(vm.Reference()).(*simulator.VirtualMachine)
	for key, disk := range flatDisks(simVM.Config.Hardware.Device) {
		file, err := flatExtentPath(&simulator.Context{Map: bed.model.Map()}, simVM, disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo))
		if err != nil {
			t.Fatal(err)
		}
		return key, file
	}
	t.Fatal("no flat disk")
	return 0, ""
}

func (bed *trackedBed) write(t *testing.T, vm *object.VirtualMachine, offset int64, data string) {
	t.Helper()
	_, file := bed.disk(t, vm)
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		_, err = f.WriteAt([]byte(data), offset)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

// snapshot takes one and returns it with its disk's changeId.
func (bed *trackedBed) snapshot(t *testing.T, vm *object.VirtualMachine, name string) (types.ManagedObjectReference, string) {
	t.Helper()
	task, err := vm.CreateSnapshot(bed.ctx, name, "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(bed.ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	var snapshot mo.VirtualMachineSnapshot
	if err := bed.client.RetrieveOne(bed.ctx, ref, []string{"config.hardware.device"}, &snapshot); err != nil {
		t.Fatal(err)
	}
	key, _ := bed.disk(t, vm)
	return ref, flatDisks(snapshot.Config.Hardware.Device)[key].Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
}

func (bed *trackedBed) query(vm *object.VirtualMachine, snapshot types.ManagedObjectReference, key int32, change string) ([]types.DiskChangeExtent, error) {
	res, err := methods.QueryChangedDiskAreas(bed.ctx, bed.client.Client, &types.QueryChangedDiskAreas{
		This: vm.Reference(), Snapshot: &snapshot, DeviceKey: key, ChangeId: change,
	})
	if err != nil {
		return nil, err
	}
	return res.Returnval.ChangedArea, nil
}

// faultOf is the vSphere fault a call failed with (nil if it did not).
func faultOf(t *testing.T, err error) types.AnyType {
	t.Helper()
	if err == nil {
		return nil
	}
	if !soap.IsSoapFault(err) {
		t.Fatalf("not a SOAP fault: %v", err)
	}
	return soap.ToSoapFault(err).VimFault()
}

// The API reference of QueryChangedDiskAreas lists NotFound "if the snapshot
// specified does not exist": a removed snapshot, or another VM's.
func TestQueryOfASnapshotThatDoesNotExistIsNotFound(t *testing.T) {
	bed := newTrackedBed(t)
	vm, other := bed.vms[0], bed.vms[1]
	key, _ := bed.disk(t, vm)
	bed.write(t, vm, 0, "data")
	snapshot, changeID := bed.snapshot(t, vm, "backup")
	otherSnapshot, _ := bed.snapshot(t, other, "other")

	if _, err := bed.query(vm, snapshot, key, changeID); err != nil {
		t.Fatalf("own snapshot: %v", err)
	}
	_, err := bed.query(vm, otherSnapshot, key, "*")
	if fault, ok := faultOf(t, err).(types.NotFound); !ok {
		t.Errorf("another VM's snapshot: want NotFound, got %#v (%v)", fault, err)
	}

	task, err := vm.RemoveSnapshot(bed.ctx, snapshot.Value, false, nil)
	if err == nil {
		err = task.Wait(bed.ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = bed.query(vm, snapshot, key, changeID)
	if fault, ok := faultOf(t, err).(types.NotFound); !ok {
		t.Errorf("removed snapshot: want NotFound, got %#v (%v)", fault, err)
	}
}

// A changeId is the beginning of the interval whose end is the snapshot
// queried; one handed out after that snapshot is invalid (InvalidArgument,
// "changeId is invalid" in the method's faults).
func TestChangeIDNewerThanTheSnapshotIsInvalid(t *testing.T) {
	bed := newTrackedBed(t)
	vm := bed.vms[0]
	key, _ := bed.disk(t, vm)
	bed.write(t, vm, 0, "first")
	older, olderID := bed.snapshot(t, vm, "older")
	bed.write(t, vm, 300<<10, "second")
	newer, newerID := bed.snapshot(t, vm, "newer")

	got, err := bed.query(vm, newer, key, olderID)
	want := []types.DiskChangeExtent{{Start: 4 * cbtBlockSize, Length: cbtBlockSize}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("newer against the older changeId: got %+v, %v; want %+v", got, err, want)
	}
	_, err = bed.query(vm, older, key, newerID)
	fault, ok := faultOf(t, err).(types.InvalidArgument)
	if !ok || fault.InvalidProperty != "changeId" {
		t.Errorf("older against the newer changeId: want InvalidArgument(changeId), got %#v (%v)", fault, err)
	}
	// The same point is no interval at all: nothing changed.
	if got, err := bed.query(vm, newer, key, newerID); err != nil || len(got) != 0 {
		t.Errorf("newer against its own changeId: got %+v, %v", got, err)
	}
}

// The simulator keeps no delta disk: the snapshot's disk is the live flat
// file. Once it was written after the snapshot, the launcher refuses to
// describe that snapshot rather than let a reader of live data pass.
func TestWriteAfterTheSnapshotIsRefused(t *testing.T) {
	bed := newTrackedBed(t)
	vm := bed.vms[0]
	key, _ := bed.disk(t, vm)
	bed.write(t, vm, 0, "before")
	snapshot, changeID := bed.snapshot(t, vm, "backup")
	if _, err := bed.query(vm, snapshot, key, "*"); err != nil {
		t.Fatalf("untouched: %v", err)
	}
	bed.write(t, vm, 0, "before") // same bytes: the content is still the snapshot's
	if _, err := bed.query(vm, snapshot, key, changeID); err != nil {
		t.Fatalf("rewritten with the same bytes: %v", err)
	}
	bed.write(t, vm, 1<<20, "after")
	for _, change := range []string{"*", changeID} {
		_, err := bed.query(vm, snapshot, key, change)
		fault, ok := faultOf(t, err).(types.SystemError)
		if !ok || !strings.Contains(fault.Reason, "written after snapshot") {
			t.Errorf("%s after a write: want SystemError, got %#v (%v)", change, fault, err)
		}
	}
}
