# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which transport modes a VDDK connection may ask for, checked before connecting.

The rules are the guide's, kept in privileges/transport_policy.encryption_rule:
encrypted disks only over nbdssl or hotadd, hotadd only from an encrypted
proxy VM.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges.transport_policy import encryption_rule
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkTransportRefusedError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import TRANSPORT_MODES


def allowed_modes(transports, vm_encrypted, proxy_encrypted):
    """(allowed modes in the order asked, reasons for the refused ones).

    ``proxy_encrypted`` is None when there is no proxy VM (no hotadd).
    Raises VddkTransportRefusedError when nothing is left.
    """
    if isinstance(transports, str):
        transports = [mode for mode in transports.split(":") if mode]
    transports = list(transports)
    if not transports:
        raise InvalidArgumentError("no VDDK transport mode requested; choose from %s" % ", ".join(TRANSPORT_MODES))
    unknown = [mode for mode in transports if mode not in TRANSPORT_MODES]
    if unknown:
        raise InvalidArgumentError("unknown VDDK transport mode %s; choose from %s"
                                   % (", ".join(unknown), ", ".join(TRANSPORT_MODES)))
    allowed, reasons = [], []
    for mode in transports:
        rule = None if mode == "file" and not vm_encrypted else encryption_rule(mode, vm_encrypted, proxy_encrypted)
        if mode == "file" and vm_encrypted:
            rule = "file is local disk access, not a way to reach an encrypted vSphere disk; use nbdssl or hotadd"
        if rule:
            reasons.append("%s refused: %s" % (mode, rule))
        elif mode not in allowed:
            allowed.append(mode)
    if not allowed:
        raise VddkTransportRefusedError("no requested VDDK transport is allowed: " + "; ".join(reasons))
    return allowed, reasons
