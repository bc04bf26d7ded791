"""One disk_export or disk_import job, the child process that disk_transfer_bench.py times.

Kept apart from the benchmark so that the child imports what a module run
imports and nothing of the benchmark's own (argparse, restic and image
helpers): its wall time is the product's.  The job's spec (vCenter address
and credentials, repository, VM, snapshot) comes in the environment
variable VMCRYPT_BENCH_JOB as JSON, never on the command line; the result
is printed as one JSON line.

    VMCRYPT_BENCH_JOB='{...}' .venv/bin/python bench/disk_job.py
"""

import json
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO_ROOT, ".build", "collections")


def run_job(spec):
    """Run one DiskExportJob or DiskImportJob in the modules' own order; return its result."""
    sys.path.insert(0, COLLECTIONS)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import (
        open_repository_in_background,
    )

    # the modules' own order (glue/transfer.py run_transfer_job): the repository key is derived while the job's
    # code is imported, the session logs in and the job reads its first facts
    params = {"hostname": spec["host"], "username": spec["username"], "password": spec["password"],
              "port": spec["port"], "validate_certs": False, "name": None, "uuid": None, "moid": spec["vm"],
              "use_instance_uuid": False, "datacenter": None, "folder": None, "repository": spec["repository"],
              "repository_password": None if spec.get("key_file") else spec["repository_password"],
              "repository_key_file": spec.get("key_file"), "repository_sync": spec.get("sync")}
    opening = open_repository_in_background(params)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.params import repository_and_vm_session

    if spec["kind"] == "export":
        from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import (
            DiskExportJob,
            ExportOptions,
        )
        job_class = DiskExportJob
        options = ExportOptions(transports=["nbdssl"], snapshot=spec["snapshot"], disks=[spec["disk"]],
                                vddk_libdir=spec["libdir"])
    else:
        from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_import import (
            DiskImportJob,
            ImportOptions,
        )
        job_class = DiskImportJob
        options = ImportOptions(spec["backup_id"], disk_map={spec["disk"]: spec["disk"]}, transports=["nbdssl"],
                                vddk_libdir=spec["libdir"])
    with repository_and_vm_session(params, opening, wait=False) as (opening, client, finder, vm):
        return job_class(client, finder, opening, vm, options).run()


if __name__ == "__main__":
    print(json.dumps(run_job(json.loads(os.environ["VMCRYPT_BENCH_JOB"]))))
