# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ctypes binding of VMware's Virtual Disk Development Kit (libvixDiskLib).

One concept per file: ``structs`` (the ABI), ``loader`` (finding and
binding the library), ``process`` (LD_LIBRARY_PATH from process start),
``library`` (InitEx once, Exit at the end, log routing), ``params``
(session credentials in ConnectParams), ``access`` (PrepareForAccess and
EndAccess), ``connection`` (ConnectEx on a vSphere session), ``disk`` (open,
info, read, write, allocated blocks) and ``errors``.  No policy: the
transport modes come decided from ``workflows/access.py``.
"""
