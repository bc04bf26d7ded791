package main

import (
	"context"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// connect serves model over HTTPS for the test and returns a logged-in client.
func connect(t *testing.T, model *simulator.Model) (context.Context, *govmomi.Client) {
	t.Helper()
	server := model.Service.NewServer()
	t.Cleanup(server.Close)
	ctx := context.Background()
	client, err := govmomi.NewClient(ctx, server.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, client
}

// findVM is the VM at an inventory path ("/DC0/vm/DC0_H0_VM0").
func findVM(ctx context.Context, t *testing.T, client *govmomi.Client, path string) *object.VirtualMachine {
	t.Helper()
	vm, err := find.NewFinder(client.Client, true).VirtualMachine(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// enableChangeTracking turns CBT on, as a backup product does before its first backup.
func enableChangeTracking(ctx context.Context, t *testing.T, vm *object.VirtualMachine) {
	t.Helper()
	enabled := true
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: &enabled})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
}
