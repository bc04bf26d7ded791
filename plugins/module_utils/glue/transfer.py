# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""disk_export and disk_import from their parameters: options, the objects a job needs, and its run.

Light to import on purpose: the repository key is derived (scrypt, about
0.3 s, outside the GIL) while the rest of the job's code is imported and the
vCenter session logs in.  So pyVmomi, glue.params and the workflows are
imported inside ``run_transfer_job``, after the derivation has started.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
    open_repository_in_background,
    pass_on_repository_warnings,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.vddk_process import ensure_vddk_library_path

EXPORT = "export"
IMPORT = "import"


def _job(kind, params):
    """(job class, its options from ``params``) of ``kind``: imported here, while the key is being derived."""
    if kind == EXPORT:
        from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import (
            DiskExportJob,
            ExportOptions,
        )
        return DiskExportJob, ExportOptions(
            transports=params["transports"], snapshot=params["snapshot"], disks=params["disks"],
            incremental=params["incremental"], commit=params["commit"], backup_id=params["backup_id"],
            vddk_libdir=params["vddk_libdir"], progress_file=params["progress_file"],
            max_retries=params["max_retries"], quiesce=params["quiesce"], manage_access=params["manage_access"])
    from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_import import (
        DiskImportJob,
        ImportOptions,
    )
    return DiskImportJob, ImportOptions(
        params["backup_id"], disk_map=params["disk_map"], transports=params["transports"],
        vddk_libdir=params["vddk_libdir"], progress_file=params["progress_file"], max_retries=params["max_retries"],
        target_blank=params["target_blank"], check_chunk_ids=params["check_chunk_ids"])


def run_transfer_job(module, kind):
    """Run disk_export's (``EXPORT``) or disk_import's (``IMPORT``) job, or only plan it in check mode.

    The repository is opened while the job's code is imported, the session
    logs in and the job reads its first facts; a wrong password still
    changes nothing in vSphere (``TransferJob``).
    """
    ensure_vddk_library_path(module)  # first: a respawn must not repeat a login, a snapshot or a write
    params = module.params
    opening = open_repository_in_background(params)
    job_class, options = _job(kind, params)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_vm_session
    with repository_and_vm_session(params, opening, wait=False) as (opening, client, finder, vm):
        proxy = finder.find_by_name_or_moid(params["proxy_vm"], params["datacenter"]) if params["proxy_vm"] else None
        job = job_class(client, finder, opening, vm, options, proxy_vm=proxy, warn=module.warn)
        result = job.plan_only() if module.check_mode else job.run()
        repository = job.repository  # a check mode plan that never read it still fails on a wrong password
    pass_on_repository_warnings(module, repository)
    return result
