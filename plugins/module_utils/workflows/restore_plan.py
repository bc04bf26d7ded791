# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a restore of one backup will do on this vCenter, decided before anything is created.

The VDDK guide's section on encrypted VMs, sentence by sentence, is the rule
book (docs/restore.md explains it to an administrator):

- Key mode. "When a VM is saved, the backup agent should include the
  ConfigInfo.keyId, the encryption.bundle ... Later when the backup is
  restored, these values should be provided in the new VirtualMachine
  ConfigSpec": ``original`` needs both saved, and the key available here -
  "the same key server as the original, or a replicated key server instance
  with the same cluster name" (the key provider's id), which vCenter answers
  with QueryCryptoKeyStatus. "If the ConfigInfo.keyId and encryption.bundle
  were not saved, it will be impossible to encrypt the recovered VM using its
  original encryption keys. However the VM may be encrypted with new keys":
  ``new``. ``none`` only when the administrator asks. ``auto``: original,
  else new (a VM the backup records as never encrypted stays unencrypted).
- Storage policy. "the backup agent can remember the storage policy and apply
  it to the restored disk. If that storage policy no longer exists in the
  system, the backup agent could ask the administrator what policy to apply
  for encrypted disks, or use the sample VM encryption storage policy":
  saved (by id, then by name), else ``storage_policy``, else the sample
  "VM Encryption Policy" with a warning. "Optionally the backup agent can
  remember a disk's key ID and provide it at restore time": a disk keeps its
  key under the original key mode when that key is available, else "vCenter
  Server gets a new key from the key server".
- NVRAM. "without saving the additional ConfigInfo properties ... the NVRAM
  will be unusable. This is because it is encrypted with the key that is
  found in the encryption.bundle": restored only under the original key;
  otherwise "a generic one can be used instead. After NVRAM is lost and
  regenerated, UEFI enabled VMs may require Secure Boot to be reconfigured,
  or the boot disk to be reconfigured" - and a vTPM, whose secrets live in
  the encrypted configuration, starts empty.
- Power-on. "if the vCenter Server lacks key server access, the VM will not
  power on after restore, because vCenter Server cannot push encryption keys
  to its ESXi host."
- Lost key server. "a restore operation may remove the encryption.bundle from
  ConfigInfo.extraConfig and specify only a VM encryption storage policy for
  the VM and its disks. Again this will cause any data present in the NVRAM
  to be unusable."

``decide_restore`` is the decision on plain values (unit-tested without a
vCenter); ``plan_restore`` gathers those values from the repository, vCenter
and PBM. ``check_backup_keys`` answers, per backup, whether its original key
is still usable here. Nothing returned contains the encryption.bundle.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AmbiguousError,
    InvalidArgumentError,
    NotFoundError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.crypto_facts import ENCRYPTION_BUNDLE_KEY
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.key_providers import (
    crypto_key_status,
    key_reason_text,
    list_key_providers,
)

KEY_MODES = ("auto", "original", "new", "none")
SAMPLE_ENCRYPTION_POLICY = "VM Encryption Policy"

GUIDE_NO_POWER_ON = ("the VM will not power on after restore, because vCenter Server cannot push encryption keys "
                     "to its ESXi host")
LOST_KEY_PATH = ("the restore removes encryption.bundle from extraConfig and gives only a VM encryption storage "
                 "policy for the VM and its disks, which get new keys from the key server; any data in the saved "
                 "NVRAM is unusable and a generic NVRAM is used")


def _key_text(key):
    return "%s of key provider %s" % (key["key_id"], key.get("provider_id") or "(none named)")


# -- facts -------------------------------------------------------------------------------------------------

def backup_facts(manifest):
    """The plain facts of a committed backup a plan needs (no secret: only whether the bundle was saved)."""
    return {
        "backup_id": manifest.backup_id,
        "vm": dict(manifest.vm),
        "metadata": manifest.metadata,
        "bundle_saved": bool(manifest.secrets.get(ENCRYPTION_BUNDLE_KEY)),
        "nvram": manifest.nvram,
        "disk_keys": [str(key) for key in manifest.disk_keys],
    }


def key_availability(key, key_providers, key_status):
    """{"registered", "available", "reason", "verified_by"} of one saved key on this vCenter.

    ``key_providers`` is the list of registered providers or None (not
    readable); ``key_status`` maps (key_id, provider_id) to vCenter's
    QueryCryptoKeyStatus answer, or is None (not askable). Without an
    answer, a registered provider of that cluster name counts (the guide's
    criterion), and with neither, availability is None (unknown).
    """
    provider_id = key.get("provider_id")
    registered = None
    if key_providers is not None:
        registered = any(provider["id"] == provider_id for provider in key_providers)
    status = (key_status or {}).get((key["key_id"], provider_id))
    if status is not None:
        reason = None if status["available"] else key_reason_text(status["reason"])
        return {"registered": registered, "available": status["available"], "reason": reason,
                "verified_by": "QueryCryptoKeyStatus"}
    if registered is not None:
        return {"registered": registered, "available": registered,
                "reason": None if registered else "its key provider is not registered on this vCenter",
                "verified_by": "ListKmipServers"}
    return {"registered": None, "available": None, "reason": "neither the key providers nor the key status "
            "could be read on this vCenter", "verified_by": None}


# -- storage policies -----------------------------------------------------------------------------------------

def _find_policy(wanted, policies):
    """{"id", "name"} of the policy whose id, else whose name, is ``wanted``; None when none; raises when ambiguous."""
    if wanted in policies:
        return {"id": wanted, "name": policies[wanted]}
    named = sorted(policy_id for policy_id, name in policies.items() if name == wanted)
    if len(named) > 1:
        raise AmbiguousError("storage policy name '%s' is ambiguous: ids %s" % (wanted, ", ".join(named)))
    return {"id": named[0], "name": wanted} if named else None


def resolve_saved_policy(saved, policies):
    """The saved policy on this vCenter: by id, then by name; None when it no longer exists."""
    if not saved:
        return None
    if saved.get("id") in policies:
        return {"id": saved["id"], "name": policies[saved["id"]], "source": "saved"}
    named = sorted(policy_id for policy_id, name in policies.items() if saved.get("name") and name == saved["name"])
    if len(named) == 1:  # two policies of that name: neither is known to be the one saved
        return {"id": named[0], "name": saved["name"], "source": "saved_by_name"}
    return None


class _PolicyChooser:
    """The storage policy of each restored object, with the sentences its choice needs."""

    def __init__(self, policies, storage_policy, sentences, warnings):
        self.policies = policies
        self.sentences = sentences
        self.warnings = warnings
        self.administrator = None
        if storage_policy:
            found = _find_policy(storage_policy, policies)
            if found is None:
                raise NotFoundError("storage_policy '%s' is neither the id nor the name of a storage policy on this "
                                    "vCenter" % storage_policy)
            self.administrator = dict(found, source="administrator")
        sample = _find_policy(SAMPLE_ENCRYPTION_POLICY, policies)
        self.sample = dict(sample, source="sample") if sample else None
        self.problems = []

    def encrypted(self, what, saved):
        """Policy of an object restored encrypted: saved, else the administrator's, else the sample one."""
        found = resolve_saved_policy(saved, self.policies)
        if found is not None:
            if found["source"] == "saved_by_name":
                self.sentences.append("%s: the saved storage policy id %s no longer exists; the policy of the same "
                                      "name '%s' (id %s) is used" % (what, saved["id"], found["name"], found["id"]))
            return found
        gone = ("its saved storage policy %s no longer exists" % _policy_text(saved)) if saved else (
            "no storage policy was saved")
        if self.administrator is not None:
            self.sentences.append("%s: %s; the administrator's storage_policy '%s' is used"
                                  % (what, gone, self.administrator["name"]))
            return self.administrator
        if self.sample is not None:
            self.warnings.append("%s: %s and no storage_policy was given; the sample encryption policy '%s' is "
                                 "used" % (what, gone, SAMPLE_ENCRYPTION_POLICY))
            return self.sample
        self.problems.append("%s: %s, no storage_policy was given and the sample '%s' does not exist on this "
                             "vCenter: give storage_policy" % (what, gone, SAMPLE_ENCRYPTION_POLICY))
        return None

    def plain(self, what, saved, unencrypted_by_request):
        """Policy of an object restored unencrypted (its saved one when it still exists, or the administrator's)."""
        if unencrypted_by_request:
            if self.administrator is not None:
                return self.administrator
            return None
        found = resolve_saved_policy(saved, self.policies)
        if found is None and saved:
            self.sentences.append("%s: its saved storage policy %s no longer exists; the datastore's default "
                                  "applies" % (what, _policy_text(saved)))
        return found


def _policy_text(policy):
    return "'%s' (id %s)" % (policy.get("name"), policy.get("id")) if policy.get("name") else "id %s" % policy.get("id")


# -- the decision ----------------------------------------------------------------------------------------------

def _choose_key_mode(requested, facts, original):
    """(chosen mode, reason) for the requested key mode."""
    if requested not in KEY_MODES:
        raise InvalidArgumentError("key_mode must be one of %s, not %r" % (", ".join(KEY_MODES), requested))
    if requested == "none":
        return "none", "the administrator asked for an unencrypted restore (key_mode: none)"
    if requested == "new":
        return "new", "the administrator asked for new keys (key_mode: new)"
    if requested == "original":
        return "original", "the administrator asked for the original key (key_mode: original)"
    if facts["metadata"] is None:
        return "new", ("no VM metadata was saved with this backup: keyId and encryption.bundle were not saved, so "
                       "the VM cannot get its original keys; it is encrypted with new keys from the key server")
    if not facts["encrypted"]:
        return "none", "the VM was not encrypted when it was backed up"
    if not original["saved"]:
        return "new", original["why_not_saved"] + "; it is encrypted with new keys from the key server"
    if original["available"] is False:
        return "new", ("vCenter has lost access to the original key (%s): %s" % (original["reason"], LOST_KEY_PATH))
    if original["available"] is None:
        return "original", ("the original key was saved; whether vCenter can use it could not be verified (%s)"
                            % original["reason"])
    return "original", "the original key and encryption.bundle were saved and the key is available on this vCenter"


def _original(facts, key_providers, key_status):
    metadata = facts["metadata"]
    key = (metadata or {}).get("key_id")
    original = {"key_id": key, "encryption_bundle_saved": facts["bundle_saved"],
                "saved": bool(key) and facts["bundle_saved"], "provider_registered": None,
                "available": None, "reason": None, "verified_by": None, "why_not_saved": None}
    if metadata is None:
        original["why_not_saved"] = "no VM metadata was saved: keyId and encryption.bundle are unknown"
    elif not key:
        original["why_not_saved"] = "the VM home had no keyId when it was backed up"
    elif not facts["bundle_saved"]:
        original["why_not_saved"] = "the keyId was saved but the encryption.bundle was not"
    if key:
        found = key_availability(key, key_providers, key_status)
        original.update(provider_registered=found["registered"], available=found["available"],
                        reason=found["reason"], verified_by=found["verified_by"])
    return original


def _disks(facts, mode, chooser, key_providers, key_status, sentences):
    metadata = facts["metadata"]
    config_disks = dict((str(disk["key"]), disk) for disk in ((metadata or {}).get("config") or {}).get("disks", []))
    saved_policies = ((metadata or {}).get("storage_policies") or {}).get("disks") or {}
    keys = list(facts["disk_keys"])
    keys += [key for key in sorted(config_disks) if key not in keys]
    disks = []
    for key in keys:
        disk = config_disks.get(key, {})
        what = "disk %s%s" % (key, " (%s)" % disk["label"] if disk.get("label") else "")
        saved_key = disk.get("key_id")
        encrypted = (saved_key is not None) if metadata is not None else None
        entry = {"key": key, "label": disk.get("label"), "capacity_bytes": disk.get("capacity_bytes"),
                 "in_backup": key in facts["disk_keys"], "encrypted_at_backup": encrypted,
                 "saved_key_id": saved_key, "key_mode": "none", "key_id": None, "storage_policy": None}
        if not entry["in_backup"]:
            sentences.append("%s was part of the VM but its data is not in this backup: it is created blank" % what)
        if mode == "none" or (encrypted is False):
            entry["storage_policy"] = chooser.plain(what, saved_policies.get(key), mode == "none")
        else:
            entry["storage_policy"] = chooser.encrypted(what, saved_policies.get(key))
            entry["key_mode"] = "new"
            if mode == "original" and saved_key:
                found = key_availability(saved_key, key_providers, key_status)
                if found["available"] is False:
                    sentences.append("%s: its saved key %s is not available here (%s); vCenter gets a new key from "
                                     "the key server" % (what, _key_text(saved_key), found["reason"]))
                else:
                    entry["key_mode"], entry["key_id"] = "original", saved_key
        disks.append(entry)
    return disks


def _nvram(facts, mode, encrypted):
    """The NVRAM decision and the consequences of a generic one."""
    config = (facts["metadata"] or {}).get("config") or {}
    saved = facts["nvram"] is not None
    if mode == "original":
        usable = saved and facts["bundle_saved"]
        why = "it is restored under the original key, with the saved keyId and encryption.bundle"
    elif encrypted is False and mode == "none":
        usable = saved
        why = "the VM was not encrypted: its NVRAM was saved in the clear"
    else:
        usable = False
        why = ("it is encrypted with the key in the encryption.bundle, which is not restored: the saved NVRAM is "
               "unusable")
    if not saved:
        why = "no NVRAM was saved with this backup"
    nvram = {"saved": saved, "size": (facts["nvram"] or {}).get("size"), "action": "restore" if usable else "generic",
             "reason": why, "consequences": []}
    if usable:
        return nvram
    firmware = config.get("firmware")
    secure_boot = bool((config.get("boot_options") or {}).get("efi_secure_boot_enabled"))
    if firmware == "efi":
        nvram["consequences"].append(
            "the VM uses UEFI firmware: with a generic NVRAM %sits boot disk may need to be reselected in the "
            "firmware" % ("Secure Boot (enabled at backup) may need to be reconfigured and " if secure_boot else ""))
    elif firmware is None:
        nvram["consequences"].append(
            "the VM's firmware is unknown (no metadata): if it used UEFI, Secure Boot may need to be reconfigured "
            "or its boot disk reselected with a generic NVRAM")
    if mode != "original":
        if config.get("vtpm_present"):
            nvram["consequences"].append("the VM had a vTPM: its contents (keys, measurements) are lost; it starts "
                                         "empty")
        elif facts["metadata"] is None:
            nvram["consequences"].append("if the VM had a vTPM, its contents are lost")
    return nvram


def _power_on(mode, original, key_providers, feasible):
    if not feasible:
        return {"predicted": False, "reason": "the restore cannot be done as planned"}
    if mode == "original":
        if original["available"] is True:
            return {"predicted": True, "reason": "vCenter has access to the original key: it can push it to the "
                                                 "ESXi host, so the VM will boot"}
        if original["available"] is False:
            return {"predicted": False, "reason": "vCenter lacks access to the original key (%s): %s"
                                                  % (original["reason"], GUIDE_NO_POWER_ON)}
        return {"predicted": None, "reason": "whether vCenter can use the original key is unknown (%s): if it "
                                             "cannot, %s" % (original["reason"], GUIDE_NO_POWER_ON)}
    if mode == "new":
        if key_providers is None:
            return {"predicted": None, "reason": "the key providers of this vCenter could not be read"}
        return {"predicted": True, "reason": "the VM gets new keys from key provider %s"
                                             % _default_provider(key_providers)}
    return {"predicted": True, "reason": "the VM is restored unencrypted: no key is needed"}


def _default_provider(key_providers):
    defaults = [provider["id"] for provider in key_providers if provider["default"]]
    return defaults[0] if defaults else key_providers[0]["id"]


def decide_restore(facts, target, key_mode="auto", storage_policy=None):
    """(plan, sentences, warnings) for a backup's ``facts`` (``backup_facts``) on a ``target``.

    ``target`` = {"key_providers": [...] or None, "key_providers_error", "key_status": {(key_id, provider_id):
    {"available", "reason"}} or None, "key_status_error", "policies": {policy id: name}}.  Pure: no I/O.
    """
    metadata = facts["metadata"]
    config = (metadata or {}).get("config") or {}
    encrypted = None
    if metadata is not None:
        encrypted = bool(metadata.get("key_id")) or any(disk.get("key_id") for disk in config.get("disks", []))
    facts = dict(facts, encrypted=encrypted)
    key_providers, key_status = target.get("key_providers"), target.get("key_status")
    sentences, warnings, problems = [], [], []
    for error in (target.get("key_providers_error"), target.get("key_status_error")):
        if error:
            warnings.append(error)
    original = _original(facts, key_providers, key_status)
    mode, reason = _choose_key_mode(key_mode, facts, original)
    sentences.append("Key mode %s: %s." % (mode, reason))

    if mode == "original" and not original["saved"]:
        problems.append("key_mode original is impossible: %s" % original["why_not_saved"])
    if mode == "original" and original["available"] is False:
        sentences.append("Without access to the original key: %s. To restore anyway, key_mode new is the lost-key "
                         "path: %s." % (GUIDE_NO_POWER_ON, LOST_KEY_PATH))
    if mode == "original" and original["available"] is None and original["saved"]:
        warnings.append("the original key could not be checked on this vCenter (%s): if vCenter cannot use it, %s"
                        % (original["reason"], GUIDE_NO_POWER_ON))
    if mode == "new" and original["saved"] and original["available"] is not False and key_mode == "new":
        sentences.append("The original key is usable here, but new keys were asked for: the saved NVRAM and any "
                         "vTPM contents are lost.")
    if mode == "new" and key_providers == []:
        problems.append("no key provider is registered on this vCenter: it cannot get new keys from a key server")
    elif mode == "new" and key_providers and not any(provider["default"] for provider in key_providers):
        warnings.append("no key provider is the default on this vCenter: the encryption policy needs one "
                        "(key provider %s would have to be marked default)" % key_providers[0]["id"])
    if mode == "none" and facts["encrypted"] is not False:
        warnings.append("the VM is restored unencrypted at the administrator's request: its disks and "
                        "configuration are stored in the clear on the datastore")
        if config.get("vtpm_present"):
            warnings.append("the VM had a vTPM, which vSphere allows only in an encrypted VM: it is not restored")

    chooser = _PolicyChooser(target["policies"], storage_policy, sentences, warnings)
    saved_policies = (metadata or {}).get("storage_policies") or {}
    if mode == "none":
        home_policy = chooser.plain("the VM home", saved_policies.get("vm_home"), True)
    elif facts["encrypted"] is False and mode != "new":
        home_policy = chooser.plain("the VM home", saved_policies.get("vm_home"), False)
    else:
        home_policy = chooser.encrypted("the VM home", saved_policies.get("vm_home"))
    disks = _disks(facts, mode, chooser, key_providers, key_status, sentences)
    problems.extend(chooser.problems)

    nvram = _nvram(facts, mode, facts["encrypted"])
    if nvram["action"] == "restore":
        sentences.append("NVRAM: restored from the backup (%s)." % nvram["reason"])
    else:
        sentences.append("NVRAM: a generic NVRAM is used (%s)." % nvram["reason"])
        for consequence in nvram["consequences"]:
            warnings.append("NVRAM regenerated: %s" % consequence)

    feasible = not problems
    power_on = _power_on(mode, original, key_providers, feasible)
    sentences.append("Power-on: %s: %s." % ({True: "expected", False: "NOT expected", None: "unknown"}[
        power_on["predicted"]], power_on["reason"]))
    for problem in problems:
        sentences.append("Not possible: %s." % problem)
    bundle = "restored" if mode == "original" and original["saved"] else (
        "removed" if facts["bundle_saved"] else "not_saved")
    plan = {
        "backup_id": facts["backup_id"],
        "vm": facts["vm"],
        "metadata_saved": metadata is not None,
        "encrypted_at_backup": facts["encrypted"],
        "key_mode": {"requested": key_mode, "chosen": mode, "reason": reason},
        "original_key": dict((name, original[name]) for name in (
            "key_id", "encryption_bundle_saved", "provider_registered", "available", "reason", "verified_by")),
        "feasible": feasible,
        "problems": problems,
        "vm_home": {"key_mode": mode, "key_id": original["key_id"] if mode == "original" else None,
                    "encryption_bundle": bundle, "storage_policy": home_policy},
        "disks": disks,
        "nvram": nvram,
        "power_on": power_on,
        "key_providers": key_providers,
    }
    return plan, sentences, warnings


# -- gathering from the repository and vCenter ----------------------------------------------------------------

def _saved_keys(facts):
    metadata = facts["metadata"] or {}
    keys = [metadata["key_id"]] if metadata.get("key_id") else []
    keys += [disk["key_id"] for disk in (metadata.get("config") or {}).get("disks", []) if disk.get("key_id")]
    return keys


def target_facts(client, saved_keys, policies=True):
    """What this vCenter offers: key providers, the status of the saved keys and (optionally) every storage policy."""
    providers, providers_error = list_key_providers(client)
    statuses, status_error = crypto_key_status(client, saved_keys)
    target = {"key_providers": providers, "key_providers_error": providers_error,
              "key_status": statuses, "key_status_error": status_error if saved_keys else None}
    if policies:
        target["policies"] = dict(client.pbm().all_profiles())
    return target


def plan_restore(client, repository, backup_id, key_mode="auto", storage_policy=None):
    """(plan, sentences, warnings) of restoring ``backup_id`` from ``repository`` on ``client``'s vCenter."""
    if key_mode not in KEY_MODES:
        raise InvalidArgumentError("key_mode must be one of %s, not %r" % (", ".join(KEY_MODES), key_mode))
    facts = backup_facts(repository.read_manifest(backup_id))
    target = target_facts(client, _saved_keys(facts))
    return decide_restore(facts, target, key_mode=key_mode, storage_policy=storage_policy)


# -- restorability ahead of time ---------------------------------------------------------------------------------

def key_check_entry(facts, target):
    """Whether one backup can still be restored under its original key here (a pure function)."""
    original = _original(dict(facts), target.get("key_providers"), target.get("key_status"))
    metadata = facts["metadata"]
    config = (metadata or {}).get("config") or {}
    encrypted = None if metadata is None else bool(original["key_id"] or any(
        disk.get("key_id") for disk in config.get("disks", [])))
    if encrypted is False:
        status, detail = "not_encrypted", "the VM was not encrypted when it was backed up"
    elif not original["saved"]:
        status, detail = "not_saved", original["why_not_saved"]
    elif original["available"] is False:
        status, detail = "key_unavailable", "the original key %s cannot be used here: %s" % (
            _key_text(original["key_id"]), original["reason"])
    elif original["available"] is None:
        status, detail = "unverified", original["reason"]
    else:
        status, detail = "available", "the original key %s is available (%s)" % (
            _key_text(original["key_id"]), original["verified_by"])
    unavailable_disks = []
    for disk in config.get("disks", []):
        if disk.get("key_id"):
            found = key_availability(disk["key_id"], target.get("key_providers"), target.get("key_status"))
            if found["available"] is False:
                unavailable_disks.append({"key": str(disk["key"]), "key_id": disk["key_id"],
                                          "reason": found["reason"]})
    return {
        "backup_id": facts["backup_id"],
        "vm": facts["vm"],
        "status": status,
        "restorable_with_original_key": {"available": True, "key_unavailable": False, "not_saved": False}.get(status),
        "flagged": status in ("key_unavailable", "not_saved"),
        "detail": detail,
        "key_id": original["key_id"],
        "provider_registered": original["provider_registered"],
        "key_available": original["available"],
        "verified_by": original["verified_by"],
        "disks_with_unavailable_keys": unavailable_disks,
    }


def check_backup_keys(client, repository, backup_ids=None, vm=None, latest=False):
    """(entries, warnings): for each backup chosen (ids, else every backup, of ``vm`` and ``latest`` as
    backup_info chooses them), whether its original key is still usable on this vCenter."""
    if backup_ids:
        manifests = [repository.read_manifest(backup_id) for backup_id in backup_ids]
    else:
        manifests = repository.list_backups(vm=vm, latest=latest)
    facts = [backup_facts(manifest) for manifest in manifests]
    keys = []
    for item in facts:
        keys.extend(_saved_keys(item))
    target = target_facts(client, keys, policies=False)
    warnings = [error for error in (target["key_providers_error"], target["key_status_error"]) if error]
    return [key_check_entry(item, target) for item in facts], warnings
