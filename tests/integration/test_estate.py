"""The simulator test bed tells the truth: what estate.py claims, vSphere shows.

Everything is read back through raw pyVmomi (PropertyCollector with explicit
paths, PBM over the vCenter session), never through the collection's code.
"""
import hashlib
import os
import ssl

import pytest
from pyVmomi import SoapStubAdapter, VmomiSupport, pbm, vim, vmodl

from estate import CRYPTO_PRIVILEGES, ENCRYPTION_POLICY_ID, ENCRYPTION_POLICY_NAME, KEY_PROVIDER_ID

VM_PATHS = [
    "name", "config.keyId", "config.extraConfig", "config.hardware.device", "config.firmware",
    "config.bootOptions.efiSecureBootEnabled", "config.uuid", "config.instanceUuid",
    "config.files.vmPathName", "layoutEx.file", "runtime.powerState",
]


def _vm_properties(si, moid):
    vm = vim.VirtualMachine(moid, si._stub)
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=vm)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PATHS)])
    result = si.RetrieveContent().propertyCollector.RetrieveContents([spec])
    return dict((prop.name, prop.val) for prop in result[0].propSet)


def _key(crypto_key_id):
    if crypto_key_id is None:
        return None
    return {"key_id": crypto_key_id.keyId, "provider_id": crypto_key_id.providerId.id}


def _disks(props):
    return sorted((d for d in props["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualDisk)),
                  key=lambda d: d.key)


def _extra_config(props):
    return dict((o.key, o.value) for o in props["config.extraConfig"])


ENCRYPTED_VMS = ["crypt-vm01", "uefi-vm01", "crypt-proxy01"]
PLAIN_VMS = ["plain-vm01", "plain-proxy01"]


def test_launcher_serves_pinned_tls_and_api_version(vcsim, vcsim_si):
    with open(vcsim.cert_file) as handle:
        der = ssl.PEM_cert_to_DER_cert(handle.read())
    digest = hashlib.sha1(der).hexdigest().upper()
    assert vcsim.thumbprint == ":".join(digest[i:i + 2] for i in range(0, 40, 2))
    # The certificate verifies for 127.0.0.1, so validate_certs=true can be tested.
    context = ssl.create_default_context(cafile=vcsim.cert_file)
    with context.wrap_socket(__import__("socket").create_connection((vcsim.host, vcsim.port)),
                             server_hostname=vcsim.host) as tls:
        assert hashlib.sha1(tls.getpeercert(binary_form=True)).hexdigest().upper() == digest
    about = vcsim_si.RetrieveContent().about
    assert about.apiVersion == "8.0.3.0"
    assert about.apiType == "VirtualCenter"
    assert vcsim.url == "https://127.0.0.1:%d/sdk" % vcsim.port


def test_datastore_folders_are_local_paths(vcsim, estate):
    folder = vcsim.datastores[estate["datastore"]["name"]]
    assert folder.startswith(vcsim.home)
    vm = estate["vms"]["crypt-vm01"]
    vmdk = vm["disks"][0]["file"].split("] ", 1)[1]
    assert os.path.isfile(os.path.join(folder, vmdk))
    assert os.path.isfile(os.path.join(folder, vmdk.replace(".vmdk", "-flat.vmdk")))
    assert os.path.isfile(os.path.join(folder, vm["nvram_path"].split("] ", 1)[1]))


def test_key_provider_is_registered_and_default(vcsim_si, estate):
    crypto = vcsim_si.RetrieveContent().cryptoManager
    assert estate["key_provider"]["id"] == KEY_PROVIDER_ID
    assert estate["key_provider"]["default"] is True
    assert crypto.GetDefaultKmsCluster().id == KEY_PROVIDER_ID
    clusters = dict((c.clusterId.id, c) for c in crypto.ListKmipServers())
    assert [s.name for s in clusters[KEY_PROVIDER_ID].servers] == ["kms-01"]
    keys = [vim.encryption.CryptoKeyId(keyId=estate["vms"][name]["key_id"]["key_id"],
                                       providerId=vim.encryption.KeyProviderId(id=KEY_PROVIDER_ID))
            for name in ENCRYPTED_VMS]
    statuses = crypto.QueryCryptoKeyStatus(keyIds=keys, checkKeyBitMap=1)
    assert [s.keyAvailable for s in statuses] == [True] * len(ENCRYPTED_VMS)


@pytest.mark.parametrize("name", ENCRYPTED_VMS)
def test_encrypted_vm_matches_estate(vcsim_si, estate, name):
    claimed = estate["vms"][name]
    props = _vm_properties(vcsim_si, claimed["moid"])
    assert props["name"] == name
    assert claimed["encrypted"] is True
    assert _key(props["config.keyId"]) == claimed["key_id"]
    assert claimed["key_id"]["provider_id"] == KEY_PROVIDER_ID
    bundle = _extra_config(props)["encryption.bundle"]
    assert bundle == claimed["bundle"]
    assert bundle.startswith("vmware:key/list/(pair/(fqid/")
    assert claimed["key_id"]["key_id"] in bundle
    assert props["config.uuid"] == claimed["uuid"]
    assert props["config.instanceUuid"] == claimed["instance_uuid"]
    assert props["config.files.vmPathName"] == claimed["vmx_path"]
    assert props["runtime.powerState"] == "poweredOff"
    nvram = [f.name for f in props["layoutEx.file"] if f.type == "nvram"]
    assert nvram == [claimed["nvram_path"]] == ["[LocalDS_0] %s/%s.nvram" % (name, name)]
    assert claimed["vm_policy_id"] == ENCRYPTION_POLICY_ID

    boot_disk, data_disk = _disks(props)
    assert [boot_disk.key, data_disk.key] == [d["key"] for d in claimed["disks"]] == [2000, 2001]
    assert _key(boot_disk.backing.keyId) == claimed["disks"][0]["key_id"]
    assert claimed["disks"][0]["key_id"]["provider_id"] == KEY_PROVIDER_ID
    # Disk and VM home have their own keys, as vSphere generates them.
    assert claimed["disks"][0]["key_id"] != claimed["key_id"]
    assert claimed["disks"][0]["policy_id"] == ENCRYPTION_POLICY_ID
    assert data_disk.backing.keyId is None
    assert claimed["disks"][1] == dict(claimed["disks"][1], encrypted=False, key_id=None, policy_id=None)


@pytest.mark.parametrize("name", PLAIN_VMS)
def test_plain_vm_matches_estate(vcsim_si, estate, name):
    claimed = estate["vms"][name]
    props = _vm_properties(vcsim_si, claimed["moid"])
    assert props["name"] == name
    assert props.get("config.keyId") is None and claimed["key_id"] is None
    assert "encryption.bundle" not in _extra_config(props) and claimed["bundle"] is None
    assert [d.backing.keyId for d in _disks(props)] == [None, None]
    assert [d["encrypted"] for d in claimed["disks"]] == [False, False]
    assert props["config.firmware"] == claimed["firmware"] == "bios"


def test_uefi_vm_has_secure_boot_and_vtpm(vcsim_si, estate):
    claimed = estate["vms"]["uefi-vm01"]
    props = _vm_properties(vcsim_si, claimed["moid"])
    assert props["config.firmware"] == claimed["firmware"] == "efi"
    assert props["config.bootOptions.efiSecureBootEnabled"] is True and claimed["secure_boot"] is True
    tpms = [d for d in props["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualTPM)]
    assert [d.key for d in tpms] == [11000] and claimed["vtpm"] is True


def test_bios_vms_have_no_secure_boot(vcsim_si, estate):
    for name in ("crypt-vm01", "plain-vm01"):
        props = _vm_properties(vcsim_si, estate["vms"][name]["moid"])
        assert props["config.firmware"] == "bios"
        assert not props.get("config.bootOptions.efiSecureBootEnabled")


def test_hotadd_proxies(estate):
    proxies = estate["proxies"]
    assert estate["vms"][proxies["encrypted"]]["encrypted"] is True
    assert estate["vms"][proxies["plain"]]["encrypted"] is False


def test_encryption_policy_is_served_over_the_vcenter_session(vcsim, vcsim_si, estate):
    cookie = vcsim_si._stub.cookie.split(";")[0].split("=", 1)[1].strip('"')
    context = VmomiSupport.GetRequestContext()
    context["vcSessionCookie"] = cookie
    try:
        stub = SoapStubAdapter(host=vcsim.host, port=vcsim.port, path="/pbm/sdk",
                               version="pbm.version.v8_0_3_0",
                               sslContext=ssl.create_default_context(cafile=vcsim.cert_file))
        profile_manager = pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent().profileManager
        ids = profile_manager.PbmQueryProfile(
            resourceType=pbm.profile.ResourceType(resourceType="STORAGE"), profileCategory="REQUIREMENT")
        names = dict((p.profileId.uniqueId, p.name) for p in profile_manager.PbmRetrieveContent(profileIds=ids))
    finally:
        context.pop("vcSessionCookie", None)
    assert estate["encryption_policy"] == {"id": ENCRYPTION_POLICY_ID, "name": ENCRYPTION_POLICY_NAME}
    assert names[ENCRYPTION_POLICY_ID] == ENCRYPTION_POLICY_NAME


def test_roles_differ_only_by_crypto_privileges(vcsim_si, estate):
    roles = dict((r.name, r) for r in vcsim_si.RetrieveContent().authorizationManager.roleList)
    nocrypto, full = estate["roles"]["vmcrypt-backup-nocrypto"], estate["roles"]["vmcrypt-backup-full"]
    assert roles["vmcrypt-backup-nocrypto"].roleId == nocrypto["id"]
    assert roles["vmcrypt-backup-full"].roleId == full["id"]
    assert nocrypto["id"] != full["id"]
    assert not [p for p in nocrypto["privileges"] if p.startswith("Cryptographer.")]
    assert sorted(set(full["privileges"]) - set(nocrypto["privileges"])) == sorted(CRYPTO_PRIVILEGES)
    assert "VirtualMachine.Provisioning.DiskRandomRead" in nocrypto["privileges"]


def test_principals_have_propagating_permissions_on_the_root_folder(vcsim, vcsim_si, estate):
    auth = vcsim_si.RetrieveContent().authorizationManager
    vm = vim.VirtualMachine(estate["vms"]["crypt-vm01"]["moid"], vcsim_si._stub)
    inherited = auth.RetrieveEntityPermissions(entity=vm, inherited=True)
    by_principal = dict((p.principal, p) for p in inherited)
    for principal in estate["principals"].values():
        permission = by_principal[principal["principal"]]
        assert permission.roleId == principal["role_id"]
        assert permission.propagate is True
        assert permission.entity._moId == principal["entity"] == vcsim_si.RetrieveContent().rootFolder._moId
        # Each principal can log in with its own password.
        si = vcsim.connect(principal["login"], principal["password"])
        assert si.RetrieveContent().sessionManager.currentSession.userName == principal["login"]


def test_privileges_follow_the_permissions(vcsim, vcsim_si, estate):
    """The launcher evaluates permissions per principal (stock vcsim grants all)."""
    auth = vcsim_si.RetrieveContent().authorizationManager
    vm = vim.VirtualMachine(estate["vms"]["crypt-vm01"]["moid"], vcsim_si._stub)
    wanted = ["Cryptographer.Access", "VirtualMachine.Provisioning.DiskRandomRead"]
    granted = {}
    for short_name, principal in estate["principals"].items():
        result = auth.HasUserPrivilegeOnEntities(entities=[vm], userName=principal["principal"], privId=wanted)
        granted[short_name] = dict((a.privId, a.isGranted) for a in result[0].privAvailability)
        fetched = auth.FetchUserPrivilegeOnEntities(entities=[vm], userName=principal["principal"])[0].privileges
        assert sorted(fetched) == estate["roles"][principal["role"]]["privileges"]
    assert granted == {
        "nocrypto": {"Cryptographer.Access": False, "VirtualMachine.Provisioning.DiskRandomRead": True},
        "backupadmin": {"Cryptographer.Access": True, "VirtualMachine.Provisioning.DiskRandomRead": True},
    }
    assert all(role["id"] >= 1001 for role in estate["roles"].values())
    # HasPrivilegeOnEntities answers for the session's own user.
    nocrypto = estate["principals"]["nocrypto"]
    si = vcsim.connect(nocrypto["login"], nocrypto["password"])
    session = si.RetrieveContent().sessionManager.currentSession
    own = si.RetrieveContent().authorizationManager.HasPrivilegeOnEntities(
        entity=[vim.VirtualMachine(vm._moId, si._stub)], sessionId=session.key, privId=wanted)
    assert [a.isGranted for a in own[0].privAvailability] == [False, True]
    admin = auth.HasPrivilegeOnEntities(entity=[vm], sessionId=vcsim_si.content.sessionManager.currentSession.key,
                                        privId=wanted)
    assert [a.isGranted for a in admin[0].privAvailability] == [True, True]
