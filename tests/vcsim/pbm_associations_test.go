package main

import (
	"strconv"
	"testing"

	"github.com/vmware/govmomi/pbm"
	pbmtypes "github.com/vmware/govmomi/pbm/types"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

const encryptionPolicy = "4d5f673c-536f-11e6-beb8-9e71128cae77"

// TestReconfigurePolicyReachesPBM exercises the hooks in-process (run it with
// -race: recording happens on the task goroutine).
func TestReconfigurePolicyReachesPBM(t *testing.T) {
	model := simulator.VPX()
	defer model.Remove()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	installPolicyAssociations(model)
	model.Service.RegisterEndpoints = true
	ctx, client := connect(t, model)
	vm := findVM(ctx, t, client, "/DC0/vm/DC0_H0_VM0")
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disk := devices.SelectByType((*types.VirtualDisk)(nil))[0]
	policy := []types.BaseVirtualMachineProfileSpec{&types.VirtualMachineDefinedProfileSpec{ProfileId: encryptionPolicy}}
	reconfigure := func(spec types.VirtualMachineConfigSpec) {
		task, err := vm.Reconfigure(ctx, spec)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	reconfigure(types.VirtualMachineConfigSpec{
		VmProfile: policy,
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationEdit, Device: disk, Profile: policy,
		}},
	})

	pbmClient, err := pbm.NewClient(ctx, client.Client)
	if err != nil {
		t.Fatal(err)
	}
	home := pbmtypes.PbmServerObjectRef{ObjectType: "virtualMachine", Key: vm.Reference().Value}
	diskRef := pbmtypes.PbmServerObjectRef{ObjectType: "virtualDiskId", Key: vm.Reference().Value + ":" + strconv.Itoa(int(disk.GetVirtualDevice().Key))}
	check := func(want string) {
		t.Helper()
		results, err := pbmClient.QueryAssociatedProfiles(ctx, []pbmtypes.PbmServerObjectRef{home, diskRef})
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != 2 {
			t.Fatalf("want 2 results, got %d", len(results))
		}
		for _, result := range results {
			var got string
			if len(result.ProfileId) == 1 {
				got = result.ProfileId[0].UniqueId
			} else if len(result.ProfileId) > 1 {
				t.Fatalf("%s: %d profiles", result.Object.Key, len(result.ProfileId))
			}
			if got != want {
				t.Errorf("%s: got %q, want %q", result.Object.Key, got, want)
			}
		}
	}
	check(encryptionPolicy)

	empty := []types.BaseVirtualMachineProfileSpec{&types.VirtualMachineEmptyProfileSpec{}}
	reconfigure(types.VirtualMachineConfigSpec{VmProfile: empty})
	reconfigure(types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
		Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: disk,
	}}})
	check("")
}
