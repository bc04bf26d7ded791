# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the disk transfer modules (doc fragment ``vmcrypt.backup.vddk``)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

TRANSPORT_CHOICES = ["hotadd", "nbdssl", "nbd", "san"]


def vddk_argument_spec():
    return dict(
        vddk_libdir=dict(type="path", fallback=(env_fallback, ["VMCRYPT_VDDK_LIBDIR"])),
        transports=dict(type="list", elements="str", choices=TRANSPORT_CHOICES, default=["hotadd", "nbdssl"]),
        proxy_vm=dict(type="str"),
        progress_file=dict(type="path"),
        max_retries=dict(type="int", default=3),
    )
