package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// createBed is a VPX inventory served over HTTPS with the launcher's
// CreateVM crypto hook and one KMIP key provider "prov-a".
type createBed struct {
	t       *testing.T
	model   *simulator.Model
	ctx     context.Context
	client  *govmomi.Client
	folder  *object.Folder
	pool    *object.ResourcePool
	manager types.ManagedObjectReference
	updates *keyIDUpdates
}

func newCreateBed(t *testing.T) *createBed {
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(model.Remove)
	installCreateVMCrypto(model)
	updates := &keyIDUpdates{seen: map[string]types.CryptoKeyId{}}
	model.Map().AddHandler(updates)
	ctx, client := connect(t, model)
	finder := find.NewFinder(client.Client, true)
	datacenter, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(datacenter)
	folders, err := datacenter.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := finder.ResourcePool(ctx, "/DC0/host/DC0_C0/Resources")
	if err != nil {
		t.Fatal(err)
	}
	bed := &createBed{t: t, model: model, ctx: ctx, client: client, folder: folders.VmFolder, pool: pool,
		manager: *client.ServiceContent.CryptoManager, updates: updates}
	bed.register("prov-a")
	return bed
}

func (b *createBed) register(provider string) {
	b.t.Helper()
	if _, err := methods.RegisterKmipServer(b.ctx, b.client.Client, &types.RegisterKmipServer{This: b.manager,
		Server: types.KmipServerSpec{ClusterId: types.KeyProviderId{Id: provider},
			Info: types.KmipServerInfo{Name: "kms-" + provider, Address: "127.0.0.1", Port: 5696}}}); err != nil {
		b.t.Fatal(err)
	}
}

func (b *createBed) generateKey(provider string) types.CryptoKeyId {
	b.t.Helper()
	res, err := methods.GenerateKey(b.ctx, b.client.Client, &types.GenerateKey{This: b.manager,
		KeyProvider: &types.KeyProviderId{Id: provider}})
	if err != nil {
		b.t.Fatal(err)
	}
	return res.Returnval.KeyId
}

// createVM runs CreateVM_Task with the crypto spec and waits for it.
func (b *createBed) createVM(name string, crypto types.BaseCryptoSpec) (types.ManagedObjectReference, error) {
	b.t.Helper()
	spec := types.VirtualMachineConfigSpec{Name: name, GuestId: string(types.VirtualMachineGuestOsIdentifierOtherGuest64),
		Files: &types.VirtualMachineFileInfo{VmPathName: "[LocalDS_0]"}, Crypto: crypto}
	created, err := b.folder.CreateVM(b.ctx, spec, b.pool, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	info, err := created.WaitForResult(b.ctx, nil)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	return info.Result.(types.ManagedObjectReference), nil
}

// keyIDOf reads config.keyId through the PropertyCollector.
func (b *createBed) keyIDOf(vm types.ManagedObjectReference) *types.CryptoKeyId {
	b.t.Helper()
	var content mo.VirtualMachine
	if err := b.client.PropertyCollector().RetrieveOne(b.ctx, vm, []string{"config.keyId"}, &content); err != nil {
		b.t.Fatal(err)
	}
	if content.Config == nil {
		return nil
	}
	return content.Config.KeyId
}

func encryptWith(keyID string, provider string) *types.CryptoSpecEncrypt {
	key := types.CryptoKeyId{KeyId: keyID}
	if provider != "" {
		key.ProviderId = &types.KeyProviderId{Id: provider}
	}
	return &types.CryptoSpecEncrypt{CryptoKeyId: key}
}

func providerOf(key *types.CryptoKeyId) string {
	if key == nil || key.ProviderId == nil {
		return ""
	}
	return key.ProviderId.Id
}

// keyIDUpdates records the config.keyId changes the registry dispatches to
// its RegisterObject handlers - what PropertyCollector's WaitForUpdates reports.
type keyIDUpdates struct {
	mu   sync.Mutex
	seen map[string]types.CryptoKeyId // by VM moref value
}

func (u *keyIDUpdates) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "TestKeyIdUpdates", Value: "key-id-updates"}
}

func (u *keyIDUpdates) PutObject(*simulator.Context, mo.Reference) {}

func (u *keyIDUpdates) UpdateObject(_ *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	for _, change := range changes {
		if key, ok := change.Val.(*types.CryptoKeyId); ok && change.Name == "config.keyId" && key != nil {
			u.mu.Lock()
			u.seen[obj.Reference().Value] = *key
			u.mu.Unlock()
		}
	}
}

func (u *keyIDUpdates) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

func (u *keyIDUpdates) of(vm types.ManagedObjectReference) (types.CryptoKeyId, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	key, ok := u.seen[vm.Value]
	return key, ok
}

// vCenter encrypts a new VM with the key its ConfigSpec sends; the stock simulator left config.keyId unset.
func TestCreateVMEncryptsWithTheGivenKey(t *testing.T) {
	bed := newCreateBed(t)
	generated := bed.generateKey("prov-a")
	for _, tc := range []struct {
		name string
		spec *types.CryptoSpecEncrypt
		want types.CryptoKeyId
	}{
		{"generated", encryptWith(generated.KeyId, "prov-a"), generated},
		// The KMS holds keys this vCenter never generated (a restore after vCenter was reinstalled).
		{"kms-only", encryptWith("5d6c0e9a-kept-by-the-kms", "prov-a"),
			types.CryptoKeyId{KeyId: "5d6c0e9a-kept-by-the-kms", ProviderId: &types.KeyProviderId{Id: "prov-a"}}},
		// Without a provider, the key vCenter knows names it.
		{"known-key-no-provider", encryptWith(generated.KeyId, ""), generated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vm, err := bed.createVM("restored-"+tc.name, tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			got := bed.keyIDOf(vm)
			if got == nil || got.KeyId != tc.want.KeyId || providerOf(got) != providerOf(&tc.want) {
				t.Fatalf("config.keyId %+v (provider %q), want %s of %s", got, providerOf(got), tc.want.KeyId, providerOf(&tc.want))
			}
			if seen, ok := bed.updates.of(vm); !ok || seen.KeyId != tc.want.KeyId || providerOf(&seen) != providerOf(&tc.want) {
				t.Fatalf("no registry update of config.keyId to the key (saw %+v, %v)", seen, ok)
			}
		})
	}
}

// An empty keyId is the simulator's own case, unchanged: a key is generated by the provider named, or the default one.
func TestCreateVMWithAnEmptyKeyIdStillGeneratesOne(t *testing.T) {
	bed := newCreateBed(t)
	if _, err := methods.MarkDefault(bed.ctx, bed.client.Client, &types.MarkDefault{This: bed.manager,
		ClusterId: types.KeyProviderId{Id: "prov-a"}}); err != nil {
		t.Fatal(err)
	}
	for name, spec := range map[string]*types.CryptoSpecEncrypt{
		"named-provider":   encryptWith("", "prov-a"),
		"default-provider": encryptWith("", ""),
	} {
		t.Run(name, func(t *testing.T) {
			vm, err := bed.createVM("generated-"+name, spec)
			if err != nil {
				t.Fatal(err)
			}
			got := bed.keyIDOf(vm)
			if got == nil || got.KeyId == "" || providerOf(got) != "prov-a" {
				t.Fatalf("config.keyId %+v, want a generated key of prov-a", got)
			}
			listed, err := methods.ListKeys(bed.ctx, bed.client.Client, &types.ListKeys{This: bed.manager})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, key := range listed.Returnval {
				found = found || (key.KeyId == got.KeyId && providerOf(&key) == "prov-a")
			}
			if !found {
				t.Fatalf("key %s is not among the keys vCenter generated", got.KeyId)
			}
		})
	}
}

// A key vCenter cannot get fails the task before anything is created: no VM, no folder on the datastore.
func TestCreateVMWithAKeyOfNoRegisteredProviderFailsAndCreatesNothing(t *testing.T) {
	bed := newCreateBed(t)
	bed.register("prov-gone")
	orphaned := bed.generateKey("prov-gone")
	if _, err := methods.UnregisterKmsCluster(bed.ctx, bed.client.Client, &types.UnregisterKmsCluster{This: bed.manager,
		ClusterId: types.KeyProviderId{Id: "prov-gone"}}); err != nil {
		t.Fatal(err)
	}
	datastore := bed.model.Map().Any("Datastore").(*simulator.Datastore)
	for _, tc := range []struct {
		name string
		spec *types.CryptoSpecEncrypt
	}{
		{"never-registered", encryptWith("key-of-prov-x", "prov-x")},
		{"unregistered", encryptWith(orphaned.KeyId, "prov-gone")},
		{"unknown-key-no-provider", encryptWith("key-nobody-knows", "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "refused-" + tc.name
			_, err := bed.createVM(name, tc.spec)
			var taskErr task.Error
			if !errors.As(err, &taskErr) {
				t.Fatalf("want the task to fail, got %v", err)
			}
			if fault, ok := taskErr.Fault().(*types.InvalidArgument); !ok || fault.InvalidProperty != createVMCryptoProperty {
				t.Fatalf("want InvalidArgument for %s, got %#v", createVMCryptoProperty, taskErr.Fault())
			}
			if _, err := find.NewFinder(bed.client.Client, false).VirtualMachine(bed.ctx, "/DC0/vm/"+name); !errors.As(err, new(*find.NotFoundError)) {
				t.Fatalf("a VM named %s: %v", name, err)
			}
			for _, obj := range bed.model.Map().All("VirtualMachine") {
				if obj.Entity().Name == name {
					t.Fatalf("the inventory holds %s (%s)", name, obj.Reference().Value)
				}
			}
			if _, err := os.Stat(filepath.Join(datastore.Info.GetDatastoreInfo().Url, name)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the datastore holds a folder for %s: %v", name, err)
			}
		})
	}
}

// Several features hook the same CreateVM_Task (pbm_associations.go does for its policies): each hook runs, in the
// order the features were installed, and one feature's refusal stops the others' after hooks with the task.
func TestEveryFeaturesHookOfACreateVMRuns(t *testing.T) {
	bed := newCreateBed(t)
	var mu sync.Mutex
	var created []string
	taskHooksFor(bed.model.Map()).watch(func(method *simulator.Method) *taskHook {
		if _, ok := method.Body.(*types.CreateVM_Task); !ok {
			return nil
		}
		return &taskHook{descriptionID: "Folder.createVm", after: func(ctx *simulator.Context, _ types.ManagedObjectReference, result types.AnyType) {
			vm := ctx.Map.Get(result.(types.ManagedObjectReference)).(*simulator.VirtualMachine)
			mu.Lock()
			defer mu.Unlock()
			// The crypto hook ran first: the key is already set.
			if vm.Config.KeyId != nil {
				created = append(created, vm.Name+" "+vm.Config.KeyId.KeyId)
			} else {
				created = append(created, vm.Name)
			}
		}}
	})
	if _, err := bed.createVM("both", encryptWith("key-1", "prov-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := bed.createVM("refused", encryptWith("key-2", "prov-x")); err == nil {
		t.Fatal("a key of an unregistered provider was accepted")
	}
	if _, err := bed.createVM("plain", nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(created) != 2 || created[0] != "both key-1" || created[1] != "plain" {
		t.Fatalf("the second feature's hook saw %q", created)
	}
}
