package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// QueryCryptoKeyStatus as the vSphere API reference describes it
// (CryptoManagerKmip.QueryCryptoKeyStatus, since vSphere API 6.7.2 / 6.7U1;
// privilege Cryptographer.ManageKeys; CryptoManagerKmipCryptoKeyStatus and
// its KeyUnavailableReason enum). restore_plan and backup_keys_check ask it
// whether a backup's key can still be used on this vCenter.
//
// govmomi v0.56.0's simulator implements the method but gets it wrong in
// ways those modules depend on:
//
//   - it looks the key's provider up in a map keyed by KmipClusterInfo.KeyId
//     (a provider's own key, empty for a KMIP provider) instead of the
//     provider's cluster id, and then judges availability only by the key
//     having been generated once by a provider of that id. A key whose
//     provider was unregistered therefore stays "available", and the guide's
//     "key server lost" situation cannot be seen;
//   - it fills EncryptedVMs (bit 0x02) into the status slot and then
//     overwrites the slot with a fresh status, so the list is always empty;
//   - it checks no privilege.
//
// The launcher answers the call itself, from the simulator's own key
// provider registrations (KmipServers) and the keys its GenerateKey handed
// out (ListKeys):
//
//   - bit 0x01 (key available to vCenter): the key's provider must be a
//     registered key provider with that cluster id - the guide counts "a
//     replicated key server instance with the same cluster name" as the same
//     one, so a provider unregistered and registered again under its old
//     name serves its old keys again. Otherwise keyAvailable is false with
//     reason KeyStateClusterInvalid ("Key provider is invalid"); with no
//     provider in the key id and the key unknown, KeyStateMissingInCache
//     ("Key not found in VC cache and does not specify a provider"); a
//     provider managed by Trust Authority or the Native Key Provider gives
//     KeyStateManagedByTrustAuthority / KeyStateManagedByNKP; a standard
//     (KMIP) provider with no server left gives KeyStateClusterUnreachable
//     ("Can not reach the key provider"); a key that provider never
//     generated gives KeyStateMissingInKMS ("Key not found in KMS");
//   - bit 0x02: encryptedVMs lists the VMs whose home (config.keyId) or any
//     disk backing uses the key;
//   - bit 0x04: affectedHosts lists the hosts whose host key
//     (runtime.cryptoKeyId) is the key;
//   - other bits are ignored, as the reference says ("Other bits - reserved
//     and will be ignored"; 0x08, third-party users, is never set here);
//   - the session user needs Cryptographer.ManageKeys on the root folder,
//     else NoPermission, the privilege the reference names for the method.
//
// Hooked in the way snapshot_faults.go is: a Registry Handler redirects the
// call to this object, whose method the dispatcher then finds by name.

const (
	checkKeyAvailable   = 0x01
	checkKeyUsedByVms   = 0x02
	checkKeyUsedByHosts = 0x04

	keyStatusPrivilege = "Cryptographer.ManageKeys"
)

type cryptoKeyStatus struct{}

func init() {
	simulator.RegisterEndpoint(func(_ *simulator.Service, registry *simulator.Registry) {
		installCryptoKeyStatus(registry)
	})
}

func installCryptoKeyStatus(registry *simulator.Registry) {
	status := &cryptoKeyStatus{}
	previous := registry.Handler
	registry.Handler = func(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if method.Name == "QueryCryptoKeyStatus" && method.This.Type == "CryptoManagerKmip" {
			method.This = status.Reference()
			return status, nil
		}
		if previous != nil {
			return previous(ctx, method)
		}
		return nil, nil
	}
}

func (s *cryptoKeyStatus) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherCryptoKeyStatus", Value: "crypto-key-status"}
}

// providerState is what vCenter knows of one registered key provider.
type providerState struct {
	managementType string
	servers        int
}

func (s *cryptoKeyStatus) QueryCryptoKeyStatus(ctx *simulator.Context, req *types.QueryCryptoKeyStatus) soap.HasFault {
	body := &methods.QueryCryptoKeyStatusBody{}
	root := ctx.Map.Get(vim25.ServiceInstance).(interface {
		ServiceContent() types.ServiceContent
	}).ServiceContent().RootFolder
	if fault := requirePrivilege(ctx, root, keyStatusPrivilege); fault != nil {
		body.Fault_ = fault
		return body
	}
	providers, keys := s.keyStore(ctx)
	result := make([]types.CryptoManagerKmipCryptoKeyStatus, 0, len(req.KeyIds))
	for _, id := range req.KeyIds {
		status := types.CryptoManagerKmipCryptoKeyStatus{KeyId: id}
		if req.CheckKeyBitMap&checkKeyAvailable != 0 {
			available, reason := availability(id, providers, keys)
			status.KeyAvailable = types.NewBool(available)
			status.Reason = reason
		}
		if req.CheckKeyBitMap&checkKeyUsedByVms != 0 {
			status.EncryptedVMs = vmsUsingKey(ctx, id)
		}
		if req.CheckKeyBitMap&checkKeyUsedByHosts != 0 {
			status.AffectedHosts = hostsUsingKey(ctx, id)
		}
		result = append(result, status)
	}
	body.Res = &types.QueryCryptoKeyStatusResponse{Returnval: result}
	return body
}

// keyStore reads the registered providers and the keys each generated, under the crypto manager's lock.
func (s *cryptoKeyStatus) keyStore(ctx *simulator.Context) (map[string]providerState, map[string]string) {
	manager := ctx.Map.CryptoManager()
	providers := map[string]providerState{}
	keys := map[string]string{}
	ctx.WithLock(manager, func() {
		for _, cluster := range manager.KmipServers {
			providers[cluster.ClusterId.Id] = providerState{managementType: cluster.ManagementType,
				servers: len(cluster.Servers)}
		}
		listed := manager.ListKeys(ctx, &types.ListKeys{This: manager.Self})
		if res, ok := listed.(*methods.ListKeysBody); ok && res.Res != nil {
			for _, key := range res.Res.Returnval {
				if key.ProviderId != nil {
					keys[key.KeyId] = key.ProviderId.Id
				}
			}
		}
	})
	return providers, keys
}

// availability is bit 0x01's answer for one key id.
func availability(id types.CryptoKeyId, providers map[string]providerState, keys map[string]string) (bool, string) {
	providerID := ""
	if id.ProviderId != nil {
		providerID = id.ProviderId.Id
	}
	generatedBy, known := keys[id.KeyId]
	if providerID == "" {
		if !known {
			return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateMissingInCache)
		}
		providerID = generatedBy
	}
	provider, registered := providers[providerID]
	switch {
	case !registered:
		return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateClusterInvalid)
	case provider.managementType == string(types.KmipClusterInfoKmsManagementTypeTrustAuthority):
		return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateManagedByTrustAuthority)
	case provider.managementType == string(types.KmipClusterInfoKmsManagementTypeNativeProvider):
		return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateManagedByNKP)
	case provider.servers == 0:
		return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateClusterUnreachable)
	case !known || generatedBy != providerID:
		return false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateMissingInKMS)
	}
	return true, ""
}

func sameKey(a *types.CryptoKeyId, b types.CryptoKeyId) bool {
	if a == nil || a.KeyId != b.KeyId {
		return false
	}
	aProvider, bProvider := "", ""
	if a.ProviderId != nil {
		aProvider = a.ProviderId.Id
	}
	if b.ProviderId != nil {
		bProvider = b.ProviderId.Id
	}
	return aProvider == bProvider
}

func vmsUsingKey(ctx *simulator.Context, id types.CryptoKeyId) []types.ManagedObjectReference {
	var refs []types.ManagedObjectReference
	for _, obj := range ctx.Map.All("VirtualMachine") {
		vm, ok := obj.(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		uses := false
		ctx.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			uses = sameKey(vm.Config.KeyId, id)
			for _, device := range vm.Config.Hardware.Device {
				if disk, isDisk := device.(*types.VirtualDisk); isDisk && !uses {
					uses = sameKey(diskKeyID(disk), id)
				}
			}
		})
		if uses {
			refs = append(refs, vm.Reference())
		}
	}
	return refs
}

// diskKeyID is the keyId of a disk's backing, for the backing types that carry one.
func diskKeyID(disk *types.VirtualDisk) *types.CryptoKeyId {
	switch backing := disk.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		return backing.KeyId
	case *types.VirtualDiskSeSparseBackingInfo:
		return backing.KeyId
	case *types.VirtualDiskSparseVer2BackingInfo:
		return backing.KeyId
	}
	return nil
}

func hostsUsingKey(ctx *simulator.Context, id types.CryptoKeyId) []types.ManagedObjectReference {
	var refs []types.ManagedObjectReference
	for _, obj := range ctx.Map.All("HostSystem") {
		host, ok := obj.(*simulator.HostSystem)
		if !ok {
			continue
		}
		uses := false
		ctx.WithLock(host, func() { uses = sameKey(host.Runtime.CryptoKeyId, id) })
		if uses {
			refs = append(refs, host.Reference())
		}
	}
	return refs
}
