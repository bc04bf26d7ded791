# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Connection options, named and defaulted as in community.vmware.
    DOCUMENTATION = r"""
options:
  hostname:
    description:
      - Host name or IP address of the vCenter Server.
      - If not set, the value of the E(VMWARE_HOST) environment variable is used.
    type: str
  username:
    description:
      - User name of the vCenter session.
      - If not set, the value of the E(VMWARE_USER) environment variable is used.
    type: str
    aliases: [admin, user]
  password:
    description:
      - Password of O(username).
      - If not set, the value of the E(VMWARE_PASSWORD) environment variable is used.
      - Never returned, logged or put on a command line.
    type: str
    aliases: [pass, pwd]
  port:
    description:
      - HTTPS port of the vCenter Server.
      - If not set, the value of the E(VMWARE_PORT) environment variable is used.
    type: int
    default: 443
  validate_certs:
    description:
      - Whether to verify vCenter's TLS certificate against the system's trusted CAs.
      - Set to V(false) only in a lab with self-signed certificates.
      - If not set, the value of the E(VMWARE_VALIDATE_CERTS) environment variable is used.
    type: bool
    default: true
notes:
  - All modules of the C(vmcrypt.backup.vsphere) action group accept these options,
    so a play can set them once under C(module_defaults).
requirements:
  - pyvmomi >= 8.0.3.0.1
"""

    VM_SELECTOR = r"""
options:
  name:
    description:
      - Name of the VM.
      - Mutually exclusive with O(uuid) and O(moid).
    type: str
  uuid:
    description:
      - Instance UUID or BIOS UUID of the VM.
      - Mutually exclusive with O(name) and O(moid).
    type: str
  use_instance_uuid:
    description:
      - V(true) matches O(uuid) against instance UUIDs only, V(false) against BIOS UUIDs only.
      - When not set, instance UUIDs are tried first, then BIOS UUIDs.
    type: bool
  moid:
    description:
      - Managed object id of the VM, for example V(vm-42).
      - Mutually exclusive with O(name) and O(uuid).
    type: str
  datacenter:
    description:
      - Datacenter in which to look for the VM.
    type: str
  folder:
    description:
      - VM folder, as an absolute inventory path (V(/DC1/vm/prod)) or relative to O(datacenter) (V(prod)).
      - With O(name), the VM must be directly in this folder; this tells apart VMs of the same name.
    type: str
"""
