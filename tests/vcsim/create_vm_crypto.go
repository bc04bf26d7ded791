package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// CreateVM_Task with config.crypto = CryptoSpecEncrypt carrying a key.
//
// vCenter creates the VM encrypted with exactly the key sent: that is how a
// restore keeps a VM under its original key (VDDK programming guide: "the
// keyId and encryption.bundle go into the new ConfigSpec"). govmomi
// v0.56.0's simulator (folder.go, createVM.Run) only handles an empty keyId
// (it generates a key); with a given one it leaves config.keyId unset,
// because VirtualMachine.create never applies the crypto spec.
//
// Through the registry's task hooks (task_hooks.go) the launcher:
//   - before the simulator creates the VM, checks that vCenter could get the
//     key: its provider must be a registered key provider of the
//     CryptoManager (a KMIP cluster in KmipServers, matched by cluster id as
//     crypto_keys.go does); a key id without a provider names its provider
//     through the keys vCenter knows (the simulator's GenerateKey cache). A
//     key of a registered provider that the simulator never generated is
//     accepted: a KMS keeps keys this vCenter did not mint (a restore after
//     vCenter was reinstalled against the same KMS cluster). Otherwise the
//     task fails and no VM, folder or file is created;
//   - after the simulator created the VM, sets its config.keyId to the key
//     through the registry's property update, so PropertyCollector clients
//     (WaitForUpdates) see the change as they see any other.
//
// The fault is a stand-in, not vCenter's documented answer: no source found
// (the vSphere Web Services API reference, pyVmomi, govmomi, the vSphere
// security guide) says which fault CreateVM_Task ends with when vCenter
// cannot get the key sent. The reference lists no crypto fault for
// CreateVM_Task; EncryptionKeyRequired ("an operation fails due to one or
// more required encryption keys", an InvalidState) exists but is not
// documented as one of its faults. So the task fails with InvalidArgument
// naming configSpec.crypto, the property at fault.
//
// An empty keyId is left to the simulator (it generates a key, unchanged).

// createVMCryptoProperty is the invalid property the fault names.
const createVMCryptoProperty = "configSpec.crypto"

func installCreateVMCrypto(model *simulator.Model) {
	taskHooksFor(model.Map()).watch(watchCreateVMCrypto)
}

// watchCreateVMCrypto hooks a CreateVM_Task whose ConfigSpec encrypts with a given key.
func watchCreateVMCrypto(method *simulator.Method) *taskHook {
	req, ok := method.Body.(*types.CreateVM_Task)
	if !ok {
		return nil
	}
	encrypt, ok := req.Config.Crypto.(*types.CryptoSpecEncrypt)
	if !ok || encrypt.CryptoKeyId.KeyId == "" {
		return nil
	}
	requested := encrypt.CryptoKeyId
	var key types.CryptoKeyId
	return &taskHook{
		descriptionID: "Folder.createVm",
		before: func(ctx *simulator.Context, _ types.ManagedObjectReference) types.BaseMethodFault {
			resolved, found := obtainableKey(ctx, requested)
			if !found {
				return &types.InvalidArgument{InvalidProperty: createVMCryptoProperty}
			}
			key = resolved
			return nil
		},
		after: func(ctx *simulator.Context, _ types.ManagedObjectReference, result types.AnyType) {
			ref, ok := result.(types.ManagedObjectReference)
			if !ok {
				return
			}
			vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
			if !ok {
				return
			}
			ctx.WithLock(vm, func() {
				ctx.Update(vm, []types.PropertyChange{{
					Name: "config.keyId",
					Op:   types.PropertyChangeOpAssign,
					Val:  &key,
				}})
			})
		},
	}
}

// obtainableKey is the key vCenter would encrypt with - its own copy, with
// the provider filled in - and whether vCenter could get it: the provider is
// a registered key provider.
func obtainableKey(ctx *simulator.Context, requested types.CryptoKeyId) (types.CryptoKeyId, bool) {
	providers, keys := (&cryptoKeyStatus{}).keyStore(ctx)
	providerID := ""
	if requested.ProviderId != nil {
		providerID = requested.ProviderId.Id
	} else {
		providerID = keys[requested.KeyId]
	}
	if _, registered := providers[providerID]; providerID == "" || !registered {
		return types.CryptoKeyId{}, false
	}
	return types.CryptoKeyId{KeyId: requested.KeyId, ProviderId: &types.KeyProviderId{Id: providerID}}, true
}
