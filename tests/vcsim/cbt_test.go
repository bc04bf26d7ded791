package main

import (
	"context"
	"os"
	"reflect"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
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
	server := model.Service.NewServer()
	defer server.Close()

	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := find.NewFinder(client.Client, true).VirtualMachine(ctx, "/DC0/vm/DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	enabled := true
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: &enabled})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

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

	task, err = vm.CreateSnapshot(ctx, "cbt", "", false, false)
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
