"""The restore decision on plain values: the guide's four situations, without a vCenter."""
import copy

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError, NotFoundError
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.restore_plan import (
    GUIDE_NO_POWER_ON,
    LOST_KEY_PATH,
    decide_restore,
    key_availability,
    key_check_entry,
    resolve_saved_policy,
)

HOME_KEY = {"key_id": "k-home", "provider_id": "kms-a"}
DISK_KEY = {"key_id": "k-disk", "provider_id": "kms-a"}
SAMPLE_ID = "4d5f673c-536f-11e6-beb8-9e71128cae77"
SAVED = {"id": "p-saved", "name": "Gold encrypted"}
POLICIES = {SAMPLE_ID: "VM Encryption Policy", "p-saved": "Gold encrypted", "p-admin": "Admin choice"}
PROVIDER_A = {"id": "kms-a", "management_type": "vCenter", "default": True, "servers": ["kms-01"]}
PROVIDER_B = {"id": "kms-b", "management_type": "vCenter", "default": True, "servers": ["kms-02"]}


def facts(firmware="bios", secure_boot=False, vtpm=False, bundle=True, nvram=True, metadata=True):
    config = {
        "firmware": firmware,
        "boot_options": {"efi_secure_boot_enabled": secure_boot},
        "vtpm_present": vtpm,
        "disks": [{"key": 2000, "label": "Hard disk 1", "capacity_bytes": 16 << 20, "key_id": DISK_KEY},
                  {"key": 2001, "label": "Hard disk 2", "capacity_bytes": 8 << 20, "key_id": None}],
    }
    return {
        "backup_id": "20250101T000000Z-0001",
        "vm": {"name": "app01"},
        "metadata": {"format": 1, "key_id": HOME_KEY, "config": config,
                     "storage_policies": {"vm_home": dict(SAVED), "disks": {"2000": dict(SAVED), "2001": None}}}
        if metadata else None,
        "bundle_saved": bundle and metadata,
        "nvram": {"size": 8684, "sha256": "ab" * 32} if nvram else None,
        "disk_keys": ["2000", "2001"],
    }


def target(available=True, providers=(PROVIDER_A,), policies=None, status=True, reason="KeyStateClusterInvalid"):
    statuses = None
    if status:
        answer = {"available": available, "reason": None if available else reason}
        statuses = dict(((key["key_id"], key["provider_id"]), dict(answer)) for key in (HOME_KEY, DISK_KEY))
    return {"key_providers": [dict(p) for p in providers] if providers is not None else None,
            "key_providers_error": None if providers is not None else "ListKmipServers refused",
            "key_status": statuses, "key_status_error": None if status else "QueryCryptoKeyStatus refused",
            "policies": dict(POLICIES if policies is None else policies)}


def test_original_key_available_restores_everything_and_powers_on():
    plan, sentences, warnings = decide_restore(facts(), target())
    assert plan["key_mode"] == {"requested": "auto", "chosen": "original", "reason": (
        "the original key and encryption.bundle were saved and the key is available on this vCenter")}
    assert plan["vm_home"] == {"key_mode": "original", "key_id": HOME_KEY, "encryption_bundle": "restored",
                               "storage_policy": {"id": "p-saved", "name": "Gold encrypted", "source": "saved"}}
    assert [(d["key"], d["key_mode"], d["key_id"]) for d in plan["disks"]] == [
        ("2000", "original", DISK_KEY), ("2001", "none", None)]
    assert plan["disks"][0]["storage_policy"] == {"id": "p-saved", "name": "Gold encrypted", "source": "saved"}
    assert plan["disks"][1]["storage_policy"] is None
    assert plan["nvram"]["action"] == "restore" and plan["nvram"]["consequences"] == []
    assert plan["power_on"]["predicted"] is True
    assert plan["feasible"] is True and plan["problems"] == []
    assert plan["original_key"] == {"key_id": HOME_KEY, "encryption_bundle_saved": True, "provider_registered": True,
                                    "available": True, "reason": None, "verified_by": "QueryCryptoKeyStatus"}
    assert warnings == []
    assert sentences[0].startswith("Key mode original: ")


def test_saved_policy_gone_uses_the_sample_with_a_warning():
    policies = dict(POLICIES)
    del policies["p-saved"]
    plan, _sentences, warnings = decide_restore(facts(), target(policies=policies))
    sample = {"id": SAMPLE_ID, "name": "VM Encryption Policy", "source": "sample"}
    assert plan["vm_home"]["storage_policy"] == sample and plan["disks"][0]["storage_policy"] == sample
    assert warnings == [
        "the VM home: its saved storage policy 'Gold encrypted' (id p-saved) no longer exists and no storage_policy "
        "was given; the sample encryption policy 'VM Encryption Policy' is used",
        "disk 2000 (Hard disk 1): its saved storage policy 'Gold encrypted' (id p-saved) no longer exists and no "
        "storage_policy was given; the sample encryption policy 'VM Encryption Policy' is used"]


def test_saved_policy_gone_uses_the_administrators_by_name_or_id():
    policies = dict(POLICIES)
    del policies["p-saved"]
    for given in ("Admin choice", "p-admin"):
        plan, sentences, warnings = decide_restore(facts(), target(policies=policies), storage_policy=given)
        assert plan["vm_home"]["storage_policy"] == {"id": "p-admin", "name": "Admin choice", "source": "administrator"}
        assert warnings == []
        assert "the VM home: its saved storage policy 'Gold encrypted' (id p-saved) no longer exists; the " \
               "administrator's storage_policy 'Admin choice' is used" in sentences


def test_saved_policy_recreated_under_another_id_is_found_by_name():
    assert resolve_saved_policy(SAVED, {"p-new": "Gold encrypted"}) == {
        "id": "p-new", "name": "Gold encrypted", "source": "saved_by_name"}
    assert resolve_saved_policy(SAVED, {"p-new": "Gold encrypted", "p-other": "Gold encrypted"}) is None
    assert resolve_saved_policy(None, POLICIES) is None


def test_unknown_storage_policy_and_unknown_key_mode_are_refused():
    with pytest.raises(NotFoundError, match="storage_policy 'Silver'"):
        decide_restore(facts(), target(), storage_policy="Silver")
    with pytest.raises(InvalidArgumentError, match="key_mode must be one of"):
        decide_restore(facts(), target(), key_mode="reuse")


def test_no_sample_and_no_saved_policy_is_not_feasible():
    plan, sentences, _warnings = decide_restore(facts(), target(policies={}))
    assert plan["feasible"] is False and plan["power_on"]["predicted"] is False
    assert plan["problems"][0].startswith("the VM home: its saved storage policy 'Gold encrypted' (id p-saved) no "
                                          "longer exists, no storage_policy was given")
    assert sentences[-1].startswith("Not possible: ")


def test_no_metadata_means_new_keys_generic_nvram_and_the_uefi_warning():
    plan, _sentences, warnings = decide_restore(facts(metadata=False, nvram=False), target())
    assert plan["metadata_saved"] is False and plan["encrypted_at_backup"] is None
    assert plan["key_mode"]["chosen"] == "new"
    assert plan["key_mode"]["reason"].startswith("no VM metadata was saved with this backup: keyId and "
                                                 "encryption.bundle were not saved")
    assert plan["vm_home"] == {"key_mode": "new", "key_id": None, "encryption_bundle": "not_saved",
                               "storage_policy": {"id": SAMPLE_ID, "name": "VM Encryption Policy", "source": "sample"}}
    assert [(d["key_mode"], d["encrypted_at_backup"]) for d in plan["disks"]] == [("new", None), ("new", None)]
    assert plan["nvram"]["action"] == "generic" and plan["nvram"]["reason"] == "no NVRAM was saved with this backup"
    assert "NVRAM regenerated: the VM's firmware is unknown (no metadata): if it used UEFI, Secure Boot may need to " \
           "be reconfigured or its boot disk reselected with a generic NVRAM" in warnings
    assert "NVRAM regenerated: if the VM had a vTPM, its contents are lost" in warnings
    assert plan["power_on"] == {"predicted": True, "reason": "the VM gets new keys from key provider kms-a"}


def test_bundle_not_saved_uefi_vm_loses_secure_boot_and_vtpm():
    plan, _sentences, warnings = decide_restore(facts(firmware="efi", secure_boot=True, vtpm=True, bundle=False),
                                                target())
    assert plan["key_mode"]["chosen"] == "new"
    assert plan["key_mode"]["reason"] == ("the keyId was saved but the encryption.bundle was not; it is encrypted "
                                          "with new keys from the key server")
    assert plan["nvram"]["saved"] is True and plan["nvram"]["action"] == "generic"
    assert warnings == [
        "NVRAM regenerated: the VM uses UEFI firmware: with a generic NVRAM Secure Boot (enabled at backup) may need "
        "to be reconfigured and its boot disk may need to be reselected in the firmware",
        "NVRAM regenerated: the VM had a vTPM: its contents (keys, measurements) are lost; it starts empty"]


def test_key_server_lost_takes_the_lost_key_path_under_auto():
    lost = target(available=False, providers=(PROVIDER_B,))
    plan, sentences, _warnings = decide_restore(facts(), lost)
    assert plan["original_key"]["provider_registered"] is False and plan["original_key"]["available"] is False
    assert plan["original_key"]["reason"] == "its key provider is not registered on this vCenter"
    assert plan["key_mode"]["chosen"] == "new"
    assert plan["key_mode"]["reason"] == ("vCenter has lost access to the original key (its key provider is not "
                                          "registered on this vCenter): " + LOST_KEY_PATH)
    assert plan["vm_home"]["encryption_bundle"] == "removed" and plan["vm_home"]["key_id"] is None
    assert [d["key_mode"] for d in plan["disks"]] == ["new", "none"]
    assert plan["nvram"]["action"] == "generic"
    assert plan["power_on"] == {"predicted": True, "reason": "the VM gets new keys from key provider kms-b"}
    assert sentences[0] == "Key mode new: " + plan["key_mode"]["reason"] + "."


def test_key_server_lost_under_original_predicts_no_power_on():
    plan, sentences, _warnings = decide_restore(facts(), target(available=False, providers=(PROVIDER_B,)),
                                                key_mode="original")
    assert plan["key_mode"]["chosen"] == "original" and plan["feasible"] is True
    assert plan["power_on"] == {"predicted": False, "reason": (
        "vCenter lacks access to the original key (its key provider is not registered on this vCenter): "
        + GUIDE_NO_POWER_ON)}
    # The disk's key is gone too: vCenter gets a new one for it.
    assert plan["disks"][0]["key_mode"] == "new"
    assert ("Without access to the original key: %s. To restore anyway, key_mode new is the lost-key path: %s."
            % (GUIDE_NO_POWER_ON, LOST_KEY_PATH)) in sentences


def test_original_without_bundle_is_not_feasible():
    plan, _sentences, _warnings = decide_restore(facts(bundle=False), target(), key_mode="original")
    assert plan["feasible"] is False
    assert plan["problems"] == ["key_mode original is impossible: the keyId was saved but the encryption.bundle "
                                "was not"]


def test_unverifiable_key_falls_back_to_the_providers_then_to_unknown():
    by_providers = key_availability(HOME_KEY, [PROVIDER_A], None)
    assert by_providers == {"registered": True, "available": True, "reason": None, "verified_by": "ListKmipServers"}
    plan, _sentences, warnings = decide_restore(facts(), target(status=False, providers=None))
    assert plan["key_mode"]["chosen"] == "original" and plan["power_on"]["predicted"] is None
    assert warnings[0] == "ListKmipServers refused" and warnings[1] == "QueryCryptoKeyStatus refused"


def test_none_is_only_on_request_and_never_sends_the_encryption_policy():
    plan, _sentences, warnings = decide_restore(facts(vtpm=True), target(), key_mode="none")
    assert plan["vm_home"] == {"key_mode": "none", "key_id": None, "encryption_bundle": "removed",
                               "storage_policy": None}
    assert [d["storage_policy"] for d in plan["disks"]] == [None, None]
    assert warnings[:2] == [
        "the VM is restored unencrypted at the administrator's request: its disks and configuration are stored in "
        "the clear on the datastore",
        "the VM had a vTPM, which vSphere allows only in an encrypted VM: it is not restored"]
    plain = copy.deepcopy(facts())
    plain["metadata"]["key_id"] = None
    for disk in plain["metadata"]["config"]["disks"]:
        disk["key_id"] = None
    plain["bundle_saved"] = False
    plan, _sentences, _warnings = decide_restore(plain, target())
    assert plan["key_mode"]["chosen"] == "none" and plan["nvram"]["action"] == "restore"


def test_new_without_any_key_provider_is_not_feasible():
    plan, _sentences, _warnings = decide_restore(facts(), target(providers=()), key_mode="new")
    assert plan["problems"] == ["no key provider is registered on this vCenter: it cannot get new keys from a key "
                                "server"]


def test_key_check_flags_lost_and_unsaved_keys_only():
    assert key_check_entry(facts(), target())["status"] == "available"
    lost = key_check_entry(facts(), target(available=False, providers=(PROVIDER_B,)))
    assert (lost["status"], lost["flagged"], lost["restorable_with_original_key"]) == ("key_unavailable", True, False)
    assert lost["detail"] == ("the original key k-home of key provider kms-a cannot be used here: its key provider "
                              "is not registered on this vCenter")
    assert [d["key"] for d in lost["disks_with_unavailable_keys"]] == ["2000"]
    unsaved = key_check_entry(facts(metadata=False), target())
    assert (unsaved["status"], unsaved["flagged"]) == ("not_saved", True)
    unverified = key_check_entry(facts(), target(status=False, providers=None))
    assert (unverified["status"], unverified["flagged"], unverified["restorable_with_original_key"]) == (
        "unverified", False, None)
