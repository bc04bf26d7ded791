# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every argument spec of the collection, one function per doc fragment.

A module builds its spec with ``module_spec(groups..., own options)`` and its
rules with ``module_rules(groups...)``: one way, so a new module gets the
shared options and their constraints by naming the groups it uses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.flush import DEFAULT_SYNC_LEVEL, SYNC_LEVELS
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.structs import TRANSPORTS

PASSWORD_ENV = "VMCRYPT_REPOSITORY_PASSWORD"
KEY_FILE_ENV = "VMCRYPT_REPOSITORY_KEY_FILE"
VDDK_LIBDIR_ENV = "VMCRYPT_VDDK_LIBDIR"
DEFAULT_TRANSPORTS = ["hotadd", "nbdssl"]


def connection_options():
    """Doc fragment ``vsphere``: the community.vmware names, with the same environment fallbacks."""
    return dict(
        hostname=dict(type="str", fallback=(env_fallback, ["VMWARE_HOST"])),
        username=dict(type="str", aliases=["user", "admin"], fallback=(env_fallback, ["VMWARE_USER"])),
        password=dict(type="str", aliases=["pass", "pwd"], no_log=True,
                      fallback=(env_fallback, ["VMWARE_PASSWORD"])),
        port=dict(type="int", default=443, fallback=(env_fallback, ["VMWARE_PORT"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["VMWARE_VALIDATE_CERTS"])),
    )


def vm_selector_options():
    """Options that name one VM, or a set of VMs by container."""
    return dict(
        name=dict(type="str"),
        uuid=dict(type="str"),
        use_instance_uuid=dict(type="bool"),
        moid=dict(type="str"),
        datacenter=dict(type="str"),
        folder=dict(type="str"),
    )


def repository_options():
    """Doc fragment ``repository``: where the repository is and what opens it."""
    return dict(
        repository=dict(type="path", required=True),
        repository_password=dict(type="str", no_log=True),
        repository_key_file=dict(type="path", no_log=False),
        repository_sync=dict(type="str", choices=list(SYNC_LEVELS), default=DEFAULT_SYNC_LEVEL),
    )


def vddk_library_options():
    """Where VDDK is installed (doc fragment ``vddk.LIBRARY``)."""
    return dict(vddk_libdir=dict(type="path", fallback=(env_fallback, [VDDK_LIBDIR_ENV])))


def vddk_options():
    """Doc fragment ``vddk``: the VDDK install, the transports and how a transfer reports and retries."""
    return dict(
        vddk_libdir=vddk_library_options()["vddk_libdir"],
        transports=dict(type="list", elements="str", choices=list(TRANSPORTS), default=list(DEFAULT_TRANSPORTS)),
        proxy_vm=dict(type="str"),
        progress_file=dict(type="path"),
        max_retries=dict(type="int", default=3),
    )


_GROUPS = {
    "vsphere": connection_options,
    "vm": vm_selector_options,
    "repository": repository_options,
    "vddk": vddk_options,
    "vddk_library": vddk_library_options,
}

# Constraints that come with a group of options.
_RULES = {
    "vm": dict(mutually_exclusive=[("name", "uuid", "moid")]),
    "one_vm": dict(mutually_exclusive=[("name", "uuid", "moid")], required_one_of=[("name", "uuid", "moid")]),
    "repository": dict(mutually_exclusive=[("repository_password", "repository_key_file")]),
}


def module_spec(groups, **own):
    """The options of the named groups ("vsphere", "vm", "one_vm", "repository", "vddk"), then the module's own."""
    spec = {}
    for group in groups:
        spec.update(_GROUPS["vm" if group == "one_vm" else group]())
    spec.update(own)
    return spec


def module_rules(groups, **own):
    """mutually_exclusive / required_one_of of the named groups, plus the module's own lists."""
    rules = {}
    for group in groups:
        for kind, entries in _RULES.get(group, {}).items():
            rules.setdefault(kind, []).extend(entries)
    for kind, entries in own.items():
        rules.setdefault(kind, []).extend(entries)
    return rules
