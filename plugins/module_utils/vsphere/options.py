# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every vSphere module (doc fragment ``vsphere``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.connection import VsphereClient
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmSelector


def connection_argument_spec():
    """The community.vmware names, with the same environment fallbacks."""
    return dict(
        hostname=dict(type="str", fallback=(env_fallback, ["VMWARE_HOST"])),
        username=dict(type="str", aliases=["user", "admin"], fallback=(env_fallback, ["VMWARE_USER"])),
        password=dict(type="str", aliases=["pass", "pwd"], no_log=True,
                      fallback=(env_fallback, ["VMWARE_PASSWORD"])),
        port=dict(type="int", default=443, fallback=(env_fallback, ["VMWARE_PORT"])),
        validate_certs=dict(type="bool", default=True, fallback=(env_fallback, ["VMWARE_VALIDATE_CERTS"])),
    )


def vm_selector_argument_spec():
    """Options that name one VM, or a set of VMs by container."""
    return dict(
        name=dict(type="str"),
        uuid=dict(type="str"),
        use_instance_uuid=dict(type="bool"),
        moid=dict(type="str"),
        datacenter=dict(type="str"),
        folder=dict(type="str"),
    )


def client_from_params(params):
    return VsphereClient(hostname=params["hostname"], username=params["username"], password=params["password"],
                         port=params["port"], validate_certs=params["validate_certs"])


def selector_from_params(params):
    """The VmSelector the options of vm_selector_argument_spec (and cluster, where a module has it) describe."""
    return VmSelector(name=params["name"], uuid=params["uuid"], moid=params["moid"],
                      use_instance_uuid=params["use_instance_uuid"], datacenter=params["datacenter"],
                      folder=params["folder"], cluster=params.get("cluster"))
