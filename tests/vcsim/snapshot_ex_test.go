package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func readSnapshotRequests(t *testing.T, file string) []snapshotRequest {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var records []snapshotRequest
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var record snapshotRequest
		if err := json.Unmarshal(scanner.Bytes(), &record); err != nil {
			t.Fatalf("line %q: %v", scanner.Text(), err)
		}
		records = append(records, record)
	}
	return records
}

func snapshotEx(ctx context.Context, t *testing.T, client *govmomi.Client, vm *object.VirtualMachine, name string,
	spec types.BaseVirtualMachineGuestQuiesceSpec) types.ManagedObjectReference {
	t.Helper()
	res, err := methods.CreateSnapshotEx_Task(ctx, client.Client, &types.CreateSnapshotEx_Task{
		This: vm.Reference(), Name: name, Description: "d-" + name, Memory: false, QuiesceSpec: spec,
	})
	if err != nil {
		t.Fatal(err)
	}
	info, err := object.NewTask(client.Client, res.Returnval).WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.Result.(types.ManagedObjectReference)
}

// TestSnapshotRequestsRecorded: both snapshot methods are logged with their
// spec, the Ex path still gets CBT changeIds, and a powered-off VM's
// quiesced snapshot is not marked quiesced.
func TestSnapshotRequestsRecorded(t *testing.T) {
	model := simulator.VPX()
	model.Autostart = false
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	installChangeTracking(model)
	file := filepath.Join(t.TempDir(), snapshotRequestLogName)
	installSnapshotRecorder(model.Map(), file)
	ctx, client := connect(t, model)
	vm := findVM(ctx, t, client, "/DC0/vm/DC0_H0_VM0")
	enableChangeTracking(ctx, t, vm)
	// model.Autostart is false: the VM is powered off.

	backupType, no := int32(5), false
	windows := &types.VirtualMachineWindowsQuiesceSpec{
		VirtualMachineGuestQuiesceSpec: types.VirtualMachineGuestQuiesceSpec{Timeout: 7},
		VssBackupType:                  backupType, VssBootableSystemState: &no, VssPartialFileSupport: &no,
		VssBackupContext: "ctx_file_share_backup",
	}
	offSnapshot := snapshotEx(ctx, t, client, vm, "off", windows)

	task, err := vm.PowerOn(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	onSnapshot := snapshotEx(ctx, t, client, vm, "on", &types.VirtualMachineGuestQuiesceSpec{Timeout: 3})
	task, err = vm.CreateSnapshot(ctx, "legacy", "", false, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}

	records := readSnapshotRequests(t, file)
	if len(records) != 3 {
		t.Fatalf("want 3 records, got %+v", records)
	}
	off, on, legacy := records[0], records[1], records[2]
	if off.Method != "CreateSnapshotEx_Task" || off.VM != vm.Reference().Value || off.Name != "off" ||
		off.Description != "d-off" || off.PowerState != "poweredOff" || off.Memory || off.Task == "" {
		t.Errorf("off: %+v", off)
	}
	spec := off.QuiesceSpec
	if spec == nil || spec.Type != "VirtualMachineWindowsQuiesceSpec" || spec.Timeout != 7 ||
		spec.VssBackupType == nil || *spec.VssBackupType != 5 || spec.VssBackupContext != "ctx_file_share_backup" ||
		spec.VssBootableSystemState == nil || *spec.VssBootableSystemState || spec.VssPartialFileSupport == nil {
		t.Errorf("off spec: %+v", spec)
	}
	if on.PowerState != "poweredOn" || on.QuiesceSpec == nil || on.QuiesceSpec.Type != "VirtualMachineGuestQuiesceSpec" ||
		on.QuiesceSpec.Timeout != 3 || on.QuiesceSpec.VssBackupType != nil {
		t.Errorf("on: %+v", on)
	}
	if legacy.Method != "CreateSnapshot_Task" || legacy.Quiesce == nil || !*legacy.Quiesce ||
		legacy.QuiesceSpec == nil || legacy.QuiesceSpec.Type != "VirtualMachineGuestQuiesceSpec" {
		t.Errorf("legacy: %+v", legacy)
	}

	var props mo.VirtualMachine
	if err := client.RetrieveOne(ctx, vm.Reference(), []string{"snapshot"}, &props); err != nil {
		t.Fatal(err)
	}
	quiesced := map[types.ManagedObjectReference]bool{}
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(trees []types.VirtualMachineSnapshotTree) {
		for _, tree := range trees {
			quiesced[tree.Snapshot] = tree.Quiesced
			walk(tree.ChildSnapshotList)
		}
	}
	walk(props.Snapshot.RootSnapshotList)
	if quiesced[offSnapshot] || !quiesced[onSnapshot] {
		t.Errorf("quiesced: powered off %v (want false), powered on %v (want true)", quiesced[offSnapshot], quiesced[onSnapshot])
	}

	var snapshot mo.VirtualMachineSnapshot
	if err := client.RetrieveOne(ctx, onSnapshot, []string{"config.hardware.device"}, &snapshot); err != nil {
		t.Fatal(err)
	}
	for _, disk := range flatDisks(snapshot.Config.Hardware.Device) {
		if id := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId; !changeIDPattern.MatchString(id) {
			t.Errorf("CreateSnapshotEx_Task snapshot disk %d changeId %q", disk.Key, id)
		}
	}
}
