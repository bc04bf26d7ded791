"""The guide's transport rules and the privilege verdict, without a vCenter."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.access_rules import decide


def everything(phase, encrypted, with_proxy=True, register_host=False):
    granted = {}
    requirements = [catalog.base_requirements(phase, encrypted, register_host)] + [
        catalog.transport_requirements(phase, transport, encrypted) for transport in catalog.TRANSPORTS]
    for requirement in requirements:
        for role, privileges in requirement.items():
            granted[role] = granted.get(role, frozenset()) | privileges
    if not with_proxy:
        granted.pop("proxy_vm", None)
        granted.pop("proxy_datastore", None)
    return granted


def without(granted, role, privilege):
    copy = dict(granted)
    copy[role] = copy[role] - {privilege}
    return copy


def test_encrypted_vm_refuses_san_and_nbd_and_keeps_order():
    decision = decide("backup", ["san", "nbdssl", "nbd", "hotadd"], True, True, everything("backup", True))
    assert decision.allowed_transports == ["nbdssl", "hotadd"]
    assert decision.reasons == [
        "san refused: san is not supported for encrypted disks; use nbdssl or hotadd",
        "nbd refused: nbd would send the decrypted disk data over the network in clear; use nbdssl",
    ]
    assert decision.missing_privileges == {}


def test_unencrypted_vm_allows_every_transport():
    decision = decide("backup", ["san", "nbd", "nbdssl", "hotadd"], False, False, everything("backup", False))
    assert decision.allowed_transports == ["san", "nbd", "nbdssl", "hotadd"]
    assert decision.reasons == []


def test_hotadd_of_encrypted_vm_needs_an_encrypted_proxy():
    decision = decide("backup", ["hotadd", "nbdssl"], True, False, everything("backup", True))
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.reasons == [
        "hotadd refused: hotadd of encrypted disks needs an encrypted proxy VM; the proxy VM is not encrypted"]


def test_hotadd_without_proxy_is_refused_with_the_option_to_set():
    decision = decide("backup", ["hotadd"], False, None, everything("backup", False, with_proxy=False))
    assert decision.allowed_transports == []
    assert decision.reasons == ["hotadd refused: hotadd needs proxy_vm: the VM that would hot-add the disks"]


def test_missing_cryptographer_access_refuses_nbdssl_and_hotadd_only():
    granted = without(everything("backup", True), "vm", "Cryptographer.Access")
    decision = decide("backup", ["nbdssl", "hotadd"], True, True, granted, {"vm": "app01 (vm-42)"})
    assert decision.allowed_transports == []
    assert decision.missing_privileges == {"vm": ["Cryptographer.Access"]}
    assert decision.reasons == ["nbdssl refused: missing Cryptographer.Access on app01 (vm-42)",
                                "hotadd refused: missing Cryptographer.Access on app01 (vm-42)"]
    assert decision.refusal_message().startswith("no requested transport is allowed: nbdssl refused")


def test_cryptographer_privileges_are_not_needed_for_an_unencrypted_vm():
    granted = everything("backup", False)
    assert not any(privilege.startswith("Cryptographer.") for held in granted.values() for privilege in held)
    decision = decide("backup", ["nbdssl", "hotadd"], False, False, granted)
    assert decision.allowed_transports == ["nbdssl", "hotadd"]


def test_missing_add_disk_on_proxy_refuses_hotadd_only():
    granted = without(everything("backup", True), "proxy_vm", "Cryptographer.AddDisk")
    decision = decide("backup", ["hotadd", "nbdssl"], True, True, granted)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.missing_privileges == {"proxy_vm": ["Cryptographer.AddDisk"]}


def test_missing_base_privilege_refuses_everything():
    granted = without(everything("backup", True), "vm", "VirtualMachine.State.CreateSnapshot")
    decision = decide("backup", ["nbdssl"], True, None, granted)
    assert decision.allowed_transports == []
    assert decision.missing_privileges == {"vm": ["VirtualMachine.State.CreateSnapshot"]}
    assert decision.reasons[0] == "every transport needs VirtualMachine.State.CreateSnapshot on vm"


def test_creating_an_encrypted_vm_needs_encrypt_new_in_the_folder():
    granted = without(everything("restore_vm", True), "folder", "Cryptographer.EncryptNew")
    decision = decide("restore_vm", ["nbdssl"], True, None, granted)
    assert decision.allowed_transports == []
    assert decision.missing_privileges == {"folder": ["Cryptographer.EncryptNew"]}


def test_roles_without_entities_are_reported_unchecked():
    granted = everything("restore_vm", False)
    del granted["datastore"]
    decision = decide("restore_vm", ["nbdssl"], False, None, granted)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.unchecked_roles == ["datastore"]
    assert decision.reasons == ["not checked, no entity given: datastore"]


@pytest.mark.parametrize("phase,transports,message", [
    ("archive", ["nbdssl"], "phase must be one of backup, restore, restore_vm, not 'archive'"),
    ("backup", [], "transports must name at least one of nbdssl, hotadd, nbd, san"),
    ("backup", ["nbdssl", "ftp"], "unknown transport 'ftp': choose from nbdssl, hotadd, nbd, san"),
])
def test_bad_input_is_one_clear_line(phase, transports, message):
    with pytest.raises(InvalidArgumentError) as raised:
        decide(phase, transports, False, None, {})
    assert str(raised.value) == message


def test_every_refusal_has_its_transport_and_reason_in_the_order_asked():
    granted = without(everything("backup", True), "proxy_vm", "Cryptographer.AddDisk")
    decision = decide("backup", ["san", "hotadd", "nbd", "nbdssl"], True, True, granted)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.refused == [
        {"transport": "san", "reason": "san is not supported for encrypted disks; use nbdssl or hotadd"},
        {"transport": "hotadd", "reason": "missing Cryptographer.AddDisk on proxy_vm"},
        {"transport": "nbd", "reason": "nbd would send the decrypted disk data over the network in clear; use nbdssl"},
    ]


def test_plain_vm_may_use_san_and_nbd_but_hotadd_needs_a_proxy():
    decision = decide("backup", ["san", "hotadd", "nbd"], False, None, everything("backup", False, with_proxy=False))
    assert decision.allowed_transports == ["san", "nbd"]
    assert decision.refused == [{"transport": "hotadd", "reason": "hotadd needs proxy_vm: the VM that would hot-add "
                                                                  "the disks"}]


def test_a_missing_base_privilege_refuses_each_transport_with_that_reason():
    granted = without(everything("backup", False), "root", "Global.DisableMethods")
    decision = decide("backup", ["nbdssl", "nbd"], False, None, granted, {"root": "Datacenters (group-d1)"})
    assert decision.refused == [
        {"transport": name, "reason": "every transport needs Global.DisableMethods on Datacenters (group-d1)"}
        for name in ("nbdssl", "nbd")]


# -- the lists themselves, against the guide's words ---------------------------------
# VDDK guide, "Credentials and Privileges for VMDK Access", and vSphere Security's
# "Required On" columns, written out here rather than read from the catalogue.
GUIDE_BACKUP = {
    "vm": {"VirtualMachine.Config.ChangeTracking", "VirtualMachine.Provisioning.DiskRandomRead",
           "VirtualMachine.State.CreateSnapshot", "VirtualMachine.State.RemoveSnapshot", "Cryptographer.Access"},
    "root": {"Global.DisableMethods", "Global.EnableMethods", "VirtualMachine.Provisioning.GetVmFiles"},
    "host": {"Global.DisableMethods", "Global.EnableMethods"},
    "datacenter": {"Datastore.Browse", "Datastore.FileManagement"},
    "datastore": {"Datastore.Browse", "Datastore.FileManagement"},
}
GUIDE_PROXY = {
    "proxy_vm": {"VirtualMachine.Config.AddNewDisk", "VirtualMachine.Config.RemoveDisk",
                 "VirtualMachine.Config.Resource", "VirtualMachine.Config.Settings", "Cryptographer.AddDisk"},
    "proxy_datastore": {"Datastore.AllocateSpace"},
}


def test_a_guide_built_backup_account_is_allowed_nbdssl_and_with_the_proxy_role_hotadd():
    assert decide("backup", ["nbdssl"], True, None, GUIDE_BACKUP).allowed_transports == ["nbdssl"]
    granted = dict(GUIDE_BACKUP, **GUIDE_PROXY)
    assert decide("backup", ["hotadd", "nbdssl"], True, True, granted).allowed_transports == ["hotadd", "nbdssl"]


def test_backup_does_not_demand_what_the_guide_does_not_name():
    needed = set()
    for requirement in [catalog.base_requirements("backup", True)] + [
            catalog.transport_requirements("backup", transport, True) for transport in catalog.TRANSPORTS]:
        for privileges in requirement.values():
            needed |= privileges
    assert not needed & {"VirtualMachine.Provisioning.DiskRandomAccess", "VirtualMachine.Config.DiskLease",
                         "Global.Licenses"}


def test_download_and_upload_privileges_count_on_the_root_not_on_the_vm():
    # vSphere Security: Allow virtual machine download / files upload are required on "Root host or vCenter Server"
    granted = dict(GUIDE_BACKUP, root={"Global.DisableMethods", "Global.EnableMethods"})
    granted["vm"] = granted["vm"] | {"VirtualMachine.Provisioning.GetVmFiles"}
    decision = decide("backup", ["nbdssl"], True, None, granted, {"root": "Datacenters (group-d1)"})
    assert decision.missing_privileges == {"root": ["VirtualMachine.Provisioning.GetVmFiles"]}
    assert "VirtualMachine.Provisioning.PutVmFiles" in catalog.base_requirements("restore_vm", True)["root"]


def test_hosts_need_disable_and_enable_methods():
    granted = without(GUIDE_BACKUP, "host", "Global.EnableMethods")
    decision = decide("backup", ["nbdssl"], True, None, granted, {"host": "esx1 (host-21)"})
    assert decision.refused == [{"transport": "nbdssl", "reason": "every transport needs Global.EnableMethods on "
                                                                  "esx1 (host-21)"}]


def test_hotadd_needs_add_new_disk_on_the_proxy_and_space_on_its_datastore():
    granted = dict(GUIDE_BACKUP, **GUIDE_PROXY)
    lacking = without(granted, "proxy_vm", "VirtualMachine.Config.AddNewDisk")
    decision = decide("backup", ["hotadd", "nbdssl"], True, True, lacking)
    assert decision.missing_privileges == {"proxy_vm": ["VirtualMachine.Config.AddNewDisk"]}
    lacking = without(granted, "proxy_datastore", "Datastore.AllocateSpace")
    decision = decide("backup", ["hotadd", "nbdssl"], True, True, lacking)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.missing_privileges == {"proxy_datastore": ["Datastore.AllocateSpace"]}


RESTORE_EXISTING = {
    "vm": {"VirtualMachine.Provisioning.DiskRandomAccess", "Cryptographer.Access"},
    "root": {"Global.DisableMethods", "Global.EnableMethods"},
    "host": {"Global.DisableMethods", "Global.EnableMethods"},
}


def test_writing_an_existing_vm_needs_disk_access_on_that_vm_not_the_create_set():
    decision = decide("restore", ["nbdssl"], True, None, RESTORE_EXISTING)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.unchecked_roles == []
    lacking = without(RESTORE_EXISTING, "vm", "VirtualMachine.Provisioning.DiskRandomAccess")
    decision = decide("restore", ["nbdssl"], True, None, lacking)
    assert decision.missing_privileges == {"vm": ["VirtualMachine.Provisioning.DiskRandomAccess"]}


def test_hotadd_restore_needs_no_snapshot_and_san_restore_is_refused():
    # VDDK 8.0 guide, "Low Level Restore Procedures": a restore snapshot is optional with NBDSSL and HotAdd,
    # required with SAN; disk_import takes none, so SAN is refused rather than half-followed.
    granted = dict(RESTORE_EXISTING, **GUIDE_PROXY)
    decision = decide("restore", ["san", "hotadd", "nbdssl"], False, True, granted)
    assert decision.allowed_transports == ["hotadd", "nbdssl"]
    assert decision.missing_privileges == {}
    assert decision.refused == [{"transport": "san", "reason": "a san restore needs a restore snapshot that "
                                                               "disk_import does not take; use nbdssl or hotadd"}]


def test_creating_an_encrypted_vm_on_a_host_not_in_encryption_mode_needs_register_host():
    granted = everything("restore_vm", True)
    assert "unencrypted_host" not in granted
    assert decide("restore_vm", ["nbdssl"], True, None, granted).allowed_transports == ["nbdssl"]
    decision = decide("restore_vm", ["nbdssl"], True, None, granted, register_host=True)
    assert decision.unchecked_roles == ["unencrypted_host"]
    granted["unencrypted_host"] = frozenset()
    decision = decide("restore_vm", ["nbdssl"], True, None, granted, register_host=True)
    assert decision.missing_privileges == {"unencrypted_host": ["Cryptographer.RegisterHost"]}
    assert decide("restore_vm", ["nbdssl"], False, None, granted, register_host=True).allowed_transports == ["nbdssl"]
