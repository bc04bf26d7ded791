"""The guide's transport rules and the privilege verdict, without a vCenter."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.access_rules import decide


def everything(phase, encrypted, with_proxy=True):
    granted = {}
    requirements = [catalog.base_requirements(phase, encrypted)] + [
        catalog.transport_requirements(phase, transport, encrypted) for transport in catalog.TRANSPORTS]
    for requirement in requirements:
        for role, privileges in requirement.items():
            granted[role] = granted.get(role, frozenset()) | privileges
    if not with_proxy:
        granted.pop("proxy_vm", None)
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


def test_restore_of_encrypted_vm_needs_cryptographer_privileges_in_the_folder():
    granted = without(everything("restore", True), "folder", "Cryptographer.EncryptNew")
    decision = decide("restore", ["nbdssl"], True, None, granted)
    assert decision.allowed_transports == []
    assert decision.missing_privileges == {"folder": ["Cryptographer.EncryptNew"]}


def test_roles_without_entities_are_reported_unchecked():
    granted = everything("restore", False)
    del granted["datastore"]
    decision = decide("restore", ["nbdssl"], False, None, granted)
    assert decision.allowed_transports == ["nbdssl"]
    assert decision.unchecked_roles == ["datastore"]
    assert decision.reasons == ["not checked, no entity given: datastore"]


@pytest.mark.parametrize("phase,transports,message", [
    ("archive", ["nbdssl"], "phase must be one of backup, restore, not 'archive'"),
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
