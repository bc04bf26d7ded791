# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options of the disk transfer modules (doc fragment ``vmcrypt.backup.vddk``) and their common run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import env_fallback

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.options import (
    REPOSITORY_MUTUALLY_EXCLUSIVE,
    open_repository,
    repository_argument_spec,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.finder import VmFinder
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.options import (
    client_from_params,
    connection_argument_spec,
    selector_from_params,
    vm_selector_argument_spec,
)

TRANSPORT_CHOICES = ["hotadd", "nbdssl", "nbd", "san"]


def vddk_argument_spec():
    return dict(
        vddk_libdir=dict(type="path", fallback=(env_fallback, ["VMCRYPT_VDDK_LIBDIR"])),
        transports=dict(type="list", elements="str", choices=TRANSPORT_CHOICES, default=["hotadd", "nbdssl"]),
        proxy_vm=dict(type="str"),
        progress_file=dict(type="path"),
        max_retries=dict(type="int", default=3),
    )


def transfer_argument_spec(**extra):
    """vCenter connection, the VM, the repository and VDDK, plus a module's own options."""
    spec = connection_argument_spec()
    spec.update(vm_selector_argument_spec())
    spec.update(repository_argument_spec())
    spec.update(vddk_argument_spec())
    spec.update(extra)
    return spec


# Keyword arguments of VmcryptModule for a transfer module: exactly one way to name the VM.
TRANSFER_MODULE_RULES = dict(
    mutually_exclusive=[("name", "uuid", "moid")] + REPOSITORY_MUTUALLY_EXCLUSIVE,
    required_one_of=[("name", "uuid", "moid")],
)


def run_transfer_job(module, job_class, options, **job_arguments):
    """Open the repository (first: a wrong password touches nothing in vSphere), log in, find the VM and
    proxy, and run the job, or only plan it in check mode."""
    params = module.params
    repository = open_repository(params)
    with client_from_params(params) as client:
        finder = VmFinder(client)
        vm = finder.find_one(selector_from_params(params))
        proxy = finder.find_by_name_or_moid(params["proxy_vm"], params["datacenter"]) if params["proxy_vm"] else None
        job = job_class(client, finder, repository, vm, options, proxy_vm=proxy, **job_arguments)
        return job.plan_only() if module.check_mode else job.run()
