# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PrepareForAccess and EndAccess: the VM's RelocateVM_Task disabled for a backup's whole life.

The guide: call PrepareForAccess before creating the snapshot and EndAccess
after closing every disk and deleting the snapshot; every PrepareForAccess
needs its EndAccess, and EndAccess also cleans up after a crash.  Its sample
retries PrepareForAccess ten times a minute apart (up to ten minutes for a
Storage vMotion to finish), and accounts for the method being already
disabled (by another backup, or by one that crashed).  Use them through
``VddkLibrary.prepare_for_access`` / ``end_access``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import logging

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.params import ConnectParams

LOGGER = logging.getLogger("vmcrypt.backup.vddk")
IDENTITY_LIMIT = 50
# Refusals that waiting does not cure: a bad argument, a refused session, an unknown VM, no InitEx.
PERMANENT_CODES = frozenset((3, 35, 4000, 16001))


def _identity(identity):
    if not identity or len(identity) > IDENTITY_LIMIT:
        raise VddkError("the PrepareForAccess identity must be 1 to %d characters, got %r" % (IDENTITY_LIMIT, identity))
    return identity.encode("utf-8")


def prepare_for_access(api, target, identity, attempts, delay, sleep):
    name = _identity(identity)
    attempt = 0
    while True:
        attempt += 1
        try:
            with ConnectParams(api, target) as params:
                api.VixDiskLib_PrepareForAccess(params.pointer, name)
            LOGGER.info("VDDK access prepared for %s as %s", target.describe(), identity)
            return
        except VddkError as error:
            if error.code in PERMANENT_CODES or attempt >= attempts:
                raise error.in_context("preparing access to %s (RelocateVM_Task disabled for the backup)%s"
                                       % (target.describe(), ", %d attempts" % attempt if attempt > 1 else ""))
            LOGGER.warning("VDDK PrepareForAccess for %s refused (attempt %d of %d), retrying in %s s: %s",
                           target.describe(), attempt, attempts, delay, error)
            sleep(delay)


def end_access(api, target, identity):
    name = _identity(identity)
    try:
        with ConnectParams(api, target) as params:
            api.VixDiskLib_EndAccess(params.pointer, name)
    except VddkError as error:
        raise error.in_context("ending access to %s (RelocateVM_Task enabled again)" % target.describe())
    LOGGER.info("VDDK access ended for %s as %s", target.describe(), identity)
