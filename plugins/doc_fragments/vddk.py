# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Where VDDK is and how a disk transfer behaves.
    # ansible-test reads fragments as literal strings, so the vddk_libdir text stands in both.
    DOCUMENTATION = r"""
options:
  vddk_libdir:
    description:
      - Folder where VDDK 7.0 or newer is extracted, so that C(<vddk_libdir>/lib64/libvixDiskLib.so.N) exists.
      - If not set, the value of the E(VMCRYPT_VDDK_LIBDIR) environment variable is used.
      - VDDK is not shipped with this collection; download it from Broadcom and extract it on the backup proxy.
    type: path
  transports:
    description:
      - VDDK transport modes, in order of preference.
      - For an encrypted VM only V(nbdssl) and V(hotadd) are allowed (V(hotadd) only from an encrypted O(proxy_vm));
        V(san) and V(nbd) are refused before any snapshot is taken.
    type: list
    elements: str
    choices: [hotadd, nbdssl, nbd, san]
    default: [hotadd, nbdssl]
  proxy_vm:
    description:
      - Name or moid of the backup proxy VM that runs this module, for V(hotadd).
    type: str
  progress_file:
    description:
      - JSON file updated while disks are transferred (bytes done, total, rate, ETA per disk), for a role that
        runs the module asynchronously and prints progress.
    type: path
  max_retries:
    description:
      - How many times in all, per disk, a lost VDDK connection is reopened to resume it before the task fails with the disk
        and offset.
    type: int
    default: 3
requirements:
  - VDDK 7.0 or newer (libvixDiskLib), installed by the user on the backup proxy
"""

    # Only where VDDK is, for modules that call the library but move no disk data.
    LIBRARY = r"""
options:
  vddk_libdir:
    description:
      - Folder where VDDK 7.0 or newer is extracted, so that C(<vddk_libdir>/lib64/libvixDiskLib.so.N) exists.
      - If not set, the value of the E(VMCRYPT_VDDK_LIBDIR) environment variable is used.
      - VDDK is not shipped with this collection; download it from Broadcom and extract it on the backup proxy.
    type: path
"""
