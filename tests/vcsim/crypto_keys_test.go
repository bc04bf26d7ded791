package main

import (
	"testing"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// keyBed is a VPX inventory with the launcher's authorization and one KMIP key provider "prov-a".
type keyBed struct {
	*authBed
	manager *simulator.CryptoManagerKmip
	status  *cryptoKeyStatus
	admin   *simulator.Context
}

func newKeyBed(t *testing.T) *keyBed {
	bed := &keyBed{authBed: newAuthBed(t, nil), status: &cryptoKeyStatus{}}
	bed.manager = bed.model.Map().CryptoManager()
	bed.admin = bed.session("administrator@vsphere.local")
	bed.registerServer("prov-a", "kms-a")
	return bed
}

func (b *keyBed) session(user string) *simulator.Context {
	return &simulator.Context{Map: b.model.Map(), Session: &simulator.Session{UserSession: types.UserSession{UserName: user}}}
}

func (b *keyBed) registerServer(provider, server string) {
	b.t.Helper()
	body := b.manager.RegisterKmipServer(b.admin, &types.RegisterKmipServer{Server: types.KmipServerSpec{
		ClusterId: types.KeyProviderId{Id: provider},
		Info:      types.KmipServerInfo{Name: server, Address: "127.0.0.1", Port: 5696},
	}}).(*methods.RegisterKmipServerBody)
	if body.Fault_ != nil {
		b.t.Fatal(body.Fault_)
	}
}

func (b *keyBed) generateKey(provider string) types.CryptoKeyId {
	b.t.Helper()
	body := b.manager.GenerateKey(b.admin, &types.GenerateKey{KeyProvider: &types.KeyProviderId{Id: provider}}).(*methods.GenerateKeyBody)
	if body.Fault_ != nil {
		b.t.Fatal(body.Fault_)
	}
	return body.Res.Returnval.KeyId
}

func (b *keyBed) query(ctx *simulator.Context, bits int32, ids ...types.CryptoKeyId) []types.CryptoManagerKmipCryptoKeyStatus {
	b.t.Helper()
	body := b.status.QueryCryptoKeyStatus(ctx, &types.QueryCryptoKeyStatus{KeyIds: ids, CheckKeyBitMap: bits}).(*methods.QueryCryptoKeyStatusBody)
	if body.Fault_ != nil {
		b.t.Fatalf("QueryCryptoKeyStatus: %v", body.Fault_.String)
	}
	if len(body.Res.Returnval) != len(ids) {
		b.t.Fatalf("%d statuses for %d keys", len(body.Res.Returnval), len(ids))
	}
	return body.Res.Returnval
}

func expectStatus(t *testing.T, status types.CryptoManagerKmipCryptoKeyStatus, available bool, reason string) {
	t.Helper()
	if status.KeyAvailable == nil || *status.KeyAvailable != available || status.Reason != reason {
		got := "unset"
		if status.KeyAvailable != nil {
			got = map[bool]string{true: "true", false: "false"}[*status.KeyAvailable]
		}
		t.Fatalf("key %s: available %s reason %q, want %v %q", status.KeyId.KeyId, got, status.Reason, available, reason)
	}
}

func TestKeyOfARegisteredProviderIsAvailable(t *testing.T) {
	bed := newKeyBed(t)
	key := bed.generateKey("prov-a")
	status := bed.query(bed.admin, checkKeyAvailable, key)[0]
	expectStatus(t, status, true, "")
	if status.KeyId != key {
		t.Fatalf("status of %v, asked about %v", status.KeyId, key)
	}
	if status.EncryptedVMs != nil {
		t.Fatalf("bit 0x02 was not asked, got VMs %v", status.EncryptedVMs)
	}
}

// The guide's lost key server: the provider is unregistered, another one (another cluster name) registered.
// A provider registered again under the old cluster name is "a replicated key server instance with the same
// cluster name": the key is available again.
func TestKeyOfAnUnregisteredProviderIsClusterInvalidUntilTheSameClusterNameReturns(t *testing.T) {
	bed := newKeyBed(t)
	key := bed.generateKey("prov-a")
	if body := bed.manager.RemoveKmipServer(bed.admin, &types.RemoveKmipServer{
		ClusterId: types.KeyProviderId{Id: "prov-a"}, ServerName: "kms-a"}).(*methods.RemoveKmipServerBody); body.Fault_ != nil {
		t.Fatal(body.Fault_)
	}
	expectStatus(t, bed.query(bed.admin, checkKeyAvailable, key)[0], false,
		string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateClusterUnreachable))
	if body := bed.manager.UnregisterKmsCluster(bed.admin, &types.UnregisterKmsCluster{
		ClusterId: types.KeyProviderId{Id: "prov-a"}}).(*methods.UnregisterKmsClusterBody); body.Fault_ != nil {
		t.Fatal(body.Fault_)
	}
	bed.registerServer("prov-b", "kms-b")
	expectStatus(t, bed.query(bed.admin, checkKeyAvailable, key)[0], false,
		string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateClusterInvalid))
	// The stock simulator answered "available" here: the key was generated once by a provider of that id.
	expectStatus(t, bed.query(bed.admin, checkKeyAvailable, bed.generateKey("prov-b"))[0], true, "")
	bed.registerServer("prov-a", "kms-a-replica")
	expectStatus(t, bed.query(bed.admin, checkKeyAvailable, key)[0], true, "")
}

func TestUnknownKeysAreMissingInKMSOrInTheCache(t *testing.T) {
	bed := newKeyBed(t)
	other := bed.generateKey("prov-a")
	statuses := bed.query(bed.admin, checkKeyAvailable,
		types.CryptoKeyId{KeyId: "never-generated", ProviderId: &types.KeyProviderId{Id: "prov-a"}},
		types.CryptoKeyId{KeyId: "never-generated"},
		types.CryptoKeyId{KeyId: other.KeyId})
	expectStatus(t, statuses[0], false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateMissingInKMS))
	expectStatus(t, statuses[1], false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateMissingInCache))
	// Without a provider in the id, vCenter's cache (the key it knows) names the provider.
	expectStatus(t, statuses[2], true, "")
}

func TestEncryptedVMsListsTheVMsUsingTheKey(t *testing.T) {
	bed := newKeyBed(t)
	home, disk, unused := bed.generateKey("prov-a"), bed.generateKey("prov-a"), bed.generateKey("prov-a")
	bed.vm.Config.KeyId = &home
	for _, device := range bed.vm.Config.Hardware.Device {
		if d, ok := device.(*types.VirtualDisk); ok {
			d.Backing.(*types.VirtualDiskFlatVer2BackingInfo).KeyId = &disk
			break
		}
	}
	statuses := bed.query(bed.admin, checkKeyAvailable|checkKeyUsedByVms, home, disk, unused)
	for i, want := range [][]types.ManagedObjectReference{{bed.vm.Self}, {bed.vm.Self}, nil} {
		if len(statuses[i].EncryptedVMs) != len(want) || (want != nil && statuses[i].EncryptedVMs[0] != want[0]) {
			t.Fatalf("key %d: encryptedVMs %v, want %v", i, statuses[i].EncryptedVMs, want)
		}
		expectStatus(t, statuses[i], true, "")
	}
	// Only the bits asked for are answered.
	if status := bed.query(bed.admin, checkKeyUsedByVms, home)[0]; status.KeyAvailable != nil || len(status.EncryptedVMs) != 1 {
		t.Fatalf("bit 0x02 alone: %+v", status)
	}
}

func TestQueryCryptoKeyStatusNeedsManageKeys(t *testing.T) {
	bed := newKeyBed(t)
	key := bed.generateKey("prov-a")
	bed.grant(bed.root, "VSPHERE.LOCAL\\operator", false, "crypto", true) // Cryptographer.Access only
	body := bed.status.QueryCryptoKeyStatus(bed.session("operator@vsphere.local"), &types.QueryCryptoKeyStatus{
		KeyIds: []types.CryptoKeyId{key}, CheckKeyBitMap: checkKeyAvailable}).(*methods.QueryCryptoKeyStatusBody)
	if body.Fault_ == nil {
		t.Fatal("a user without Cryptographer.ManageKeys queried key status")
	}
	if fault, ok := body.Fault_.VimFault().(*types.NoPermission); !ok || fault.PrivilegeId != keyStatusPrivilege {
		t.Fatalf("want NoPermission for %s, got %#v", keyStatusPrivilege, body.Fault_.VimFault())
	}
}

// Through a server: the Handler sends CryptoManagerKmip's QueryCryptoKeyStatus to the launcher.
func TestQueryCryptoKeyStatusIsAnsweredByTheLauncher(t *testing.T) {
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		t.Fatal(err)
	}
	defer model.Remove()
	model.Service.RegisterEndpoints = true // as the launcher's startServer does
	ctx, client := connect(t, model)
	manager := *client.ServiceContent.CryptoManager
	if _, err := methods.RegisterKmipServer(ctx, client.Client, &types.RegisterKmipServer{This: manager, Server: types.KmipServerSpec{
		ClusterId: types.KeyProviderId{Id: "prov-a"}, Info: types.KmipServerInfo{Name: "kms-a"}}}); err != nil {
		t.Fatal(err)
	}
	generated, err := methods.GenerateKey(ctx, client.Client, &types.GenerateKey{This: manager, KeyProvider: &types.KeyProviderId{Id: "prov-a"}})
	if err != nil {
		t.Fatal(err)
	}
	key := generated.Returnval.KeyId
	if _, err := methods.UnregisterKmsCluster(ctx, client.Client, &types.UnregisterKmsCluster{This: manager,
		ClusterId: types.KeyProviderId{Id: "prov-a"}}); err != nil {
		t.Fatal(err)
	}
	res, err := methods.QueryCryptoKeyStatus(ctx, client.Client, &types.QueryCryptoKeyStatus{This: manager,
		KeyIds: []types.CryptoKeyId{key}, CheckKeyBitMap: checkKeyAvailable})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res.Returnval[0], false, string(types.CryptoManagerKmipCryptoKeyStatusKeyUnavailableReasonKeyStateClusterInvalid))
}
