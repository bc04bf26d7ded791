# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_export and disk_import from their parameters: options, the objects a job needs, and its run."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import (
    pass_on_repository_warnings,
    repository_and_vm_session,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.vddk_process import ensure_vddk_library_path
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import ExportOptions
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_import import ImportOptions


def export_options_from_params(params):
    return ExportOptions(transports=params["transports"], snapshot=params["snapshot"], disks=params["disks"],
                         incremental=params["incremental"], commit=params["commit"], backup_id=params["backup_id"],
                         vddk_libdir=params["vddk_libdir"], progress_file=params["progress_file"],
                         max_retries=params["max_retries"], quiesce=params["quiesce"],
                         manage_access=params["manage_access"])


def import_options_from_params(params):
    return ImportOptions(params["backup_id"], disk_map=params["disk_map"], transports=params["transports"],
                         vddk_libdir=params["vddk_libdir"], progress_file=params["progress_file"],
                         max_retries=params["max_retries"], target_blank=params["target_blank"],
                         check_chunk_ids=params["check_chunk_ids"])


def run_transfer_job(module, job_class, options):
    """Open the repository while logging in (a wrong password still changes nothing in vSphere), find the VM
    and proxy, and run the job, or only plan it in check mode."""
    ensure_vddk_library_path(module)  # first: a respawn must not repeat a login, a snapshot or a write
    params = module.params
    with repository_and_vm_session(params) as (repository, client, finder, vm):
        proxy = finder.find_by_name_or_moid(params["proxy_vm"], params["datacenter"]) if params["proxy_vm"] else None
        job = job_class(client, finder, repository, vm, options, proxy_vm=proxy, warn=module.warn)
        result = job.plan_only() if module.check_mode else job.run()
    pass_on_repository_warnings(module, repository)
    return result
