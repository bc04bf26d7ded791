# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The guide's transport rules and the verdict per transport: pure, without a vCenter.

The rules for encrypted disks come from the VDDK guide: NBDSSL and HotAdd
are supported, SAN is not, and HotAdd needs a proxy VM that is itself
encrypted.  Plain NBD would move the cleartext VDDK produces across the
network unencrypted, so it is refused for encrypted disks as well.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog


class TransportDecision:
    """Outcome of a check: allowed transports in the order asked, a reason per refusal, missing privileges."""

    def __init__(self, allowed_transports, reasons, missing_privileges, unchecked_roles=(), refused=()):
        self.allowed_transports = allowed_transports
        self.reasons = reasons
        self.refused = list(refused)  # [{"transport": name, "reason": why}], in the order asked
        self.missing_privileges = missing_privileges  # {entity role: sorted list}
        self.unchecked_roles = sorted(unchecked_roles)

    @property
    def refused_all(self):
        return not self.allowed_transports

    def refusal_message(self):
        return "no requested transport is allowed: " + "; ".join(self.reasons)


def transport_rule(phase, transport, vm_encrypted, proxy_encrypted):
    """Why the guide's rules refuse ``transport`` for this phase here, or None."""
    if transport == "hotadd" and proxy_encrypted is None:
        return "hotadd needs proxy_vm: the VM that would hot-add the disks"
    if phase == "restore" and transport == "san":
        # VDDK 8.0 guide, "Low Level Restore Procedures": a restore snapshot is required with SAN
        # (optional with NBDSSL and HotAdd); disk_import writes without one.
        return "a san restore needs a restore snapshot that disk_import does not take; use nbdssl or hotadd"
    if not vm_encrypted:
        return None
    if transport == "san":
        return "san is not supported for encrypted disks; use nbdssl or hotadd"
    if transport == "nbd":
        return "nbd would send the decrypted disk data over the network in clear; use nbdssl"
    if transport == "hotadd" and not proxy_encrypted:
        return "hotadd of encrypted disks needs an encrypted proxy VM; the proxy VM is not encrypted"
    return None


def _missing(requirements, granted):
    # Roles absent from ``granted`` had no entity to check (reported apart).
    missing = {}
    for role, privileges in requirements.items():
        if role not in granted:
            continue
        absent = sorted(set(privileges) - set(granted.get(role, ())))
        if absent:
            missing[role] = absent
    return missing


def _describe(missing, entity_names):
    return "; ".join("%s on %s" % (", ".join(privileges), entity_names.get(role, role))
                     for role, privileges in sorted(missing.items()))


def decide(phase, transports, vm_encrypted, proxy_encrypted, granted, entity_names=None, register_host=False):
    """Apply the rules and the privileges to each requested transport.

    ``granted`` maps an entity role to the privileges held there; a role it
    lacks had no entity to check and is named in ``unchecked_roles``.
    ``proxy_encrypted`` is None when no proxy VM was given.  ``register_host``:
    creating the (encrypted) VM must put a host in encryption mode.
    """
    catalog.validate(phase, transports)
    entity_names = entity_names or {}
    reasons = []
    allowed = []
    refused = []
    base = catalog.base_requirements(phase, vm_encrypted, register_host)
    base_missing = _missing(base, granted)
    all_missing = dict(base_missing)
    if base_missing:
        reasons.append("every transport needs %s" % _describe(base_missing, entity_names))
    for transport in transports:
        rule = transport_rule(phase, transport, vm_encrypted, proxy_encrypted)
        if rule:
            reasons.append("%s refused: %s" % (transport, rule))
            refused.append({"transport": transport, "reason": rule})
            continue
        transport_missing = _missing(catalog.transport_requirements(phase, transport, vm_encrypted), granted)
        for role, privileges in transport_missing.items():
            all_missing[role] = sorted(set(all_missing.get(role, [])) | set(privileges))
        if transport_missing:
            reason = "missing %s" % _describe(transport_missing, entity_names)
            reasons.append("%s refused: %s" % (transport, reason))
            refused.append({"transport": transport, "reason": reason})
            continue
        if base_missing:
            refused.append({"transport": transport, "reason": "every transport needs %s"
                            % _describe(base_missing, entity_names)})
        elif transport not in allowed:
            allowed.append(transport)
    required_roles = set(base)
    for transport in allowed:
        required_roles |= set(catalog.transport_requirements(phase, transport, vm_encrypted))
    unchecked = required_roles - set(granted)
    if unchecked:
        reasons.append("not checked, no entity given: %s" % ", ".join(sorted(unchecked)))
    return TransportDecision(allowed, reasons, all_missing, unchecked, refused)
