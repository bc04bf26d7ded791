# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ctypes binding of VMware's Virtual Disk Development Kit (libvixDiskLib).

One concept per file: ``structs`` (the ABI), ``loader`` (finding and
binding the library), ``library`` (InitEx/Exit, log routing),
``connection`` (ConnectEx with a vSphere session), ``disk`` (open, info,
read, write, allocated blocks), ``transport`` (the guide's rules for
encrypted disks) and ``errors``.
"""
