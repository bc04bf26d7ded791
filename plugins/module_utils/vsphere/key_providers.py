# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Key providers registered on a vCenter and whether it can still use given keys.

The guide: a VM restored under its original key powers on only where vCenter
"has access to the same key server as the original, or a replicated key
server instance with the same cluster name" - the cluster name is the key
provider's id (``KeyProviderId.id``). vCenter answers the second question
itself with ``CryptoManagerKmip.QueryCryptoKeyStatus`` (vSphere API 6.7.2,
i.e. 6.7 U1; privilege Cryptographer.ManageKeys): bit 0x01 asks whether the
key is available to vCenter, and the reason when it is not.

Both calls may be refused (a backup account without Cryptographer.ManageKeys
or ManageKeyServers, an older vCenter): then the answer says so rather than
guess, and the caller decides what an unverified key means.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import vim, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import describe_fault

CHECK_KEY_AVAILABLE = 0x01

# CryptoManagerKmipCryptoKeyStatusKeyUnavailableReason, as the API reference explains each value.
UNAVAILABLE_REASONS = {
    "KeyStateMissingInCache": "the key is not in vCenter's cache and names no key provider",
    "KeyStateClusterInvalid": "its key provider is not registered on this vCenter",
    "KeyStateClusterUnreachable": "vCenter cannot reach its key provider",
    "KeyStateMissingInKMS": "the key is not found in its key server",
    "KeyStateNotActiveOrEnabled": "the key is not active or enabled in its key server",
    "KeyStateManagedByTrustAuthority": "the key is managed by vSphere Trust Authority",
    "KeyStateManagedByNKP": "the key is managed by the Native Key Provider",
    "NoPermissionToAccessKeyProvider": "this session has no permission to access its key provider",
    "WrappingKeyMissingInKMS": "its wrapping key is not found in the key server",
    "WrappingKeyNotActiveOrEnabled": "its wrapping key is not active or enabled",
}


def key_reason_text(reason):
    """A sentence fragment for a KeyUnavailableReason value (the value itself when it is new to us)."""
    return UNAVAILABLE_REASONS.get(reason, reason or "vCenter gave no reason")


def _crypto_manager(client):
    # The cached service content can hold no cryptoManager with some pyVmomi releases; ask afresh then.
    manager = getattr(client.content, "cryptoManager", None)
    if manager is None:
        manager = client.service_instance.RetrieveContent().cryptoManager
    return manager if isinstance(manager, vim.encryption.CryptoManagerKmip) else None


def list_key_providers(client):
    """(providers, error): providers = [{"id", "management_type", "default", "servers"}] sorted by id.

    ``error`` is None, or one line saying why the providers could not be
    listed (then ``providers`` is None): an ESXi host or a refused call.
    """
    manager = _crypto_manager(client)
    if manager is None:
        return None, "this endpoint has no key management (CryptoManagerKmip): it is not a vCenter Server"
    try:
        clusters = manager.ListKmipServers()
    except vmodl.MethodFault as fault:
        return None, "vCenter refused ListKmipServers (privilege Cryptographer.ManageKeyServers): %s" % (
            describe_fault(fault))
    providers = []
    for cluster in clusters or []:
        providers.append({
            "id": cluster.clusterId.id,
            "management_type": cluster.managementType or None,
            "default": bool(cluster.useAsDefault),
            "servers": sorted(server.name for server in cluster.servers or []),
        })
    providers.sort(key=lambda provider: provider["id"])
    return providers, None


def crypto_key_status(client, key_ids):
    """(statuses, error) for keys given as {"key_id", "provider_id"} dicts.

    statuses maps (key_id, provider_id) to {"available": bool, "reason": the
    KeyUnavailableReason or None}; ``error`` is None, or one line saying why
    vCenter could not be asked (then ``statuses`` is None).
    """
    wanted = []
    for key in key_ids:
        pair = (key["key_id"], key.get("provider_id"))
        if pair not in wanted:
            wanted.append(pair)
    if not wanted:
        return {}, None
    manager = _crypto_manager(client)
    if manager is None:
        return None, "this endpoint has no key management (CryptoManagerKmip): it is not a vCenter Server"
    ids = [vim.encryption.CryptoKeyId(keyId=key_id, providerId=vim.encryption.KeyProviderId(id=provider_id)
                                      if provider_id else None)
           for key_id, provider_id in wanted]
    try:
        answers = manager.QueryCryptoKeyStatus(keyIds=ids, checkKeyBitMap=CHECK_KEY_AVAILABLE)
    except vmodl.fault.MethodNotFound:
        return None, "this vCenter has no QueryCryptoKeyStatus (it arrived with vSphere 6.7 U1)"
    except vmodl.MethodFault as fault:
        return None, "vCenter refused QueryCryptoKeyStatus (privilege Cryptographer.ManageKeys): %s" % (
            describe_fault(fault))
    statuses = {}
    for answer in answers or []:
        provider = answer.keyId.providerId
        pair = (answer.keyId.keyId, provider.id if provider is not None else None)
        available = bool(answer.keyAvailable)
        statuses[pair] = {"available": available, "reason": None if available else (answer.reason or None)}
    return statuses, None
