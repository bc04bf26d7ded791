"""What every module returns matches its RETURN documentation, in a run and in check mode.

Each module of ``plugins/modules`` is run through ansible-playbook in check
mode and then for real, with the same tasks from the same state (check mode
first: it must not change what the run starts from).  For every result:

- each key it returns is documented, recursively through ``contains``, with
  the documented ``type`` (and ``elements`` for lists);
- a key documented ``returned: always`` (a ``contains`` key without
  ``returned`` counts as always) is present in every successful result;
- a value may be null only where the key's description says when it is
  null; every other value has the documented type;
- a failed task returns ``error_type``, documented as ``returned: failure``;
- check mode returns the same keys as the run (the same key paths, through
  lists), and a task that fails fails in both with the same message.

A new module gets the same test: add its scenario to SCENARIOS, or the test
fails with "add a scenario for module X".
"""
import ast
import json
import os

import pytest
import yaml
from pyVmomi import vim

from estate import wait_for_task

from playbook import REPO_ROOT, run_playbook
from report_checks import RECORDED_RUN
from vsphere_env import vmware_env
from test_restore_plan import capture_backup, disks_only_backup

# The disk transfer tests' set-up: known data in the VM's disks, the VDDK double, a repository.
from test_disk_transfer import (  # noqa: F401 pylint: disable=unused-import
    CHUNK,
    PASSWORD,
    SOURCE,
    TARGET,
    disks,
    double,
    env_for,
    open_repository,
    repository,
    source_vm,
)

MODULES_DIR = os.path.join(REPO_ROOT, "plugins", "modules")
MODULES = sorted(name[:-len(".py")] for name in os.listdir(MODULES_DIR)
                 if name.endswith(".py") and not name.startswith("_"))

# Keys every Ansible module result may carry (ansible-doc's "common return values") and the test callback's.
COMMON_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "exception", "skipped",
               "skip_reason", "diff", "_status"}
TYPES = {"str": (str,), "int": (int,), "float": (float,), "bool": (bool,), "list": (list,), "dict": (dict,),
         "complex": (dict, list), "raw": None}
MIB = 1024 * 1024


def return_doc(module):
    """The module's RETURN, parsed from its file without importing it."""
    with open(os.path.join(MODULES_DIR, module + ".py")) as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["RETURN"]:
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError("%s has no RETURN" % module)


def description(spec):
    text = spec.get("description", "")
    return " ".join(text) if isinstance(text, list) else str(text)


def nullable(spec):
    """A key may be null only when its description says when."""
    return "null" in description(spec).lower()


def returned_always(spec):
    return str(spec.get("returned", "always")).strip() == "always"


def doc_problems(docs, path=""):
    """What is wrong with the RETURN entries themselves."""
    problems = []
    for name, spec in sorted(docs.items()):
        where = path + name
        kind = spec.get("type")
        if kind not in TYPES:
            problems.append("%s: type %r is not one of %s" % (where, kind, ", ".join(TYPES)))
        if kind == "list" and spec.get("elements") not in TYPES:
            problems.append("%s: a list needs elements (one of %s)" % (where, ", ".join(TYPES)))
        if "contains" in spec:
            if not (kind in ("dict", "complex") or (kind == "list" and spec.get("elements") == "dict")):
                problems.append("%s: contains on a %s" % (where, kind))
            problems += doc_problems(spec["contains"], where + ("[]." if kind == "list" else "."))
    return problems


def type_ok(value, kind):
    accepted = TYPES.get(kind)
    if accepted is None:
        return True
    if isinstance(value, bool) and bool not in accepted:
        return False
    return isinstance(value, accepted)


def value_problems(value, spec, where):
    if value is None:
        return [] if nullable(spec) else ["%s is null but its description does not say when" % where]
    kind = spec.get("type")
    if not type_ok(value, kind):
        return ["%s is a %s, documented %s" % (where, type(value).__name__, kind)]
    problems = []
    if kind == "list":
        for element in value:
            element_where = "%s[]" % where
            if element is None:
                problems.append("%s is null" % element_where)
            elif not type_ok(element, spec.get("elements")):
                problems.append("%s is a %s, documented elements: %s" % (
                    element_where, type(element).__name__, spec.get("elements")))
            elif isinstance(element, dict) and "contains" in spec:
                problems += dict_problems(element, spec["contains"], element_where + ".", top=False)
    elif isinstance(value, dict) and "contains" in spec:
        problems += dict_problems(value, spec["contains"], where + ".", top=False)
    return problems


def dict_problems(result, docs, path="", top=True, failed=False):
    """Undocumented keys, wrong types, missing always-returned keys of one result (or nested dict)."""
    problems = []
    for name, value in sorted(result.items()):
        if top and (name in COMMON_KEYS or name.startswith("_ansible")):
            continue
        if name not in docs:
            problems.append("%s%s is returned but not documented" % (path, name))
            continue
        problems += value_problems(value, docs[name], path + name)
    if top and failed:
        if "error_type" in result and "failure" not in str(docs.get("error_type", {}).get("returned", "")):
            problems.append("error_type is not documented as returned: failure")
        if "error_type" not in result:
            problems.append("a failure without error_type: %s" % result.get("msg"))
    elif not failed:
        for name, spec in sorted(docs.items()):
            if returned_always(spec) and name not in result:
                problems.append("%s%s is documented as returned always but missing" % (path, name))
    return problems


def key_paths(value, path=""):
    """Every key path of a result, through lists ("disks[].key").

    An empty list ("disks[]=empty") or a null ("backup=empty") says nothing about the keys below it, so
    what lies below a list or a null of one result is not compared with the other (check mode creating a
    repository lists no key slot yet; backup_commit's check mode returns a null summary).
    """
    paths = set()
    if isinstance(value, dict):
        for name, item in value.items():
            if not path and (name in COMMON_KEYS or name.startswith("_ansible")):
                continue
            paths.add(path + name)
            paths |= key_paths(item, path + name + ".")
    elif isinstance(value, list):
        if not value:
            paths.add(path[:-1] + "[]=empty")
        for item in value:
            paths |= key_paths(item, path[:-1] + "[]." if path else "[].")
    elif value is None and path:
        paths.add(path[:-1] + "=empty")
    return paths


def compared_paths(paths, other):
    """``paths`` without what lies below a list or a null the other result leaves empty."""
    empty = [path[:-len("=empty")] + "." for path in other if path.endswith("=empty")]
    return set(path for path in paths if not path.endswith("=empty") and not any(path.startswith(e) for e in empty))


# -- scenarios: how to run each module -----------------------------------------------------------------------
# A scenario takes the pytest request and a work folder and returns (tasks, environment).  Task names start
# with "ok:" or "fails:", what the task must do in check mode and in the run alike.

def _task(title, module, **args):
    return {"name": title, "vmcrypt.backup." + module: args, "ignore_errors": True}


def _backup_of(path, estate, vm_name=SOURCE, data_at=MIB, repo=None):
    """A committed backup of ``vm_name``'s disks (their capacities, a chunk of data each), by the library."""
    repo = repo or open_repository(path)
    vm = estate["vms"][vm_name]
    staged = repo.start_backup({"name": vm_name, "uuid": vm["moid"]})
    for disk in vm["disks"]:
        with staged.open_disk(str(disk["key"]), disk["capacity_kb"] * 1024,
                              properties={"label": "Hard disk"}) as writer:
            writer.write_blocks([(data_at, os.urandom(CHUNK))])
    return staged.commit().backup_id


def vm_crypto_info_scenario(request, work):
    vcsim = request.getfixturevalue("vcsim")
    request.getfixturevalue("estate")
    tasks = [
        _task("ok: one encrypted VM", "vm_crypto_info", name=SOURCE),
        _task("ok: every VM", "vm_crypto_info"),
        _task("ok: without storage policies", "vm_crypto_info", name="uefi-vm01", storage_policies=False),
        _task("fails: unknown VM", "vm_crypto_info", name="no-such-vm"),
    ]
    return tasks, vmware_env(vcsim)


def privilege_check_scenario(request, work):
    vcsim = request.getfixturevalue("vcsim")
    estate = request.getfixturevalue("estate")
    tasks = [
        _task("ok: defaults", "privilege_check", name=SOURCE),
        _task("ok: hotadd from an encrypted proxy", "privilege_check", name=SOURCE, transports=["hotadd", "nbdssl"],
              proxy_vm=estate["proxies"]["encrypted"]),
        _task("ok: another principal", "privilege_check", name=SOURCE, transports=["nbdssl", "san"],
              principal=estate["principals"]["nocrypto"]["principal"]),
        _task("ok: restore", "privilege_check", name=TARGET, phase="restore", transports=["nbdssl"]),
        _task("fails: fail_on_missing", "privilege_check", name=SOURCE, transports=["nbd"], fail_on_missing=True),
    ]
    return tasks, vmware_env(vcsim)


def repository_scenario(request, work):
    path = request.getfixturevalue("repository")
    repo = open_repository(path)
    from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
    repo.add_slot(Credential.from_password("second-Passw0rd"), label="second")
    tasks = [
        _task("ok: create", "repository", repository=str(work / "new-repo"), chunk_size="256KiB"),
        _task("ok: open", "repository", repository=path, state="opened"),
        _task("ok: add a key slot", "repository", repository=path,
              add_key_slot={"password": "third-Passw0rd", "label": "third"}),
        _task("ok: remove a key slot", "repository", repository=path, remove_key_slot="second"),
        _task("fails: no repository", "repository", repository=str(work / "absent"), state="opened"),
    ]
    return tasks, {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def _repository_with_backups(request):
    path = request.getfixturevalue("repository")
    estate = request.getfixturevalue("estate")
    repo = open_repository(path)
    first = _backup_of(path, estate, repo=repo)
    second = _backup_of(path, estate, data_at=2 * MIB, repo=repo)
    repo.start_backup({"name": TARGET, "uuid": "staged"})  # a staged backup, never committed
    return path, first, second


def backup_info_scenario(request, work):
    path, first, _second = _repository_with_backups(request)
    tasks = [
        _task("ok: all backups", "backup_info", repository=path),
        _task("ok: one backup, the latest of a VM and the staged ones", "backup_info", repository=path,
              backup_id=first, vm=SOURCE, latest=True, staged=True),
        _task("fails: unknown backup", "backup_info", repository=path, backup_id="20991231T000000Z-deadbeef"),
    ]
    return tasks, {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def backup_verify_scenario(request, work):
    path, first, _second = _repository_with_backups(request)
    tasks = [
        _task("ok: everything", "backup_verify", repository=path),
        _task("ok: one backup, sampled", "backup_verify", repository=path, backup_id=first, sample=0.5),
        _task("fails: unknown backup", "backup_verify", repository=path, backup_id="20991231T000000Z-deadbeef"),
    ]
    return tasks, {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def backup_prune_scenario(request, work):
    path, _first, _second = _repository_with_backups(request)
    tasks = [
        _task("ok: keep the last one", "backup_prune", repository=path, keep_last=1, abandoned_after_hours=0),
        _task("fails: a negative rule", "backup_prune", repository=path, keep_daily=-1),
    ]
    return tasks, {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def _transfer_setup(request):
    vcsim = request.getfixturevalue("vcsim")
    request.getfixturevalue("disks")
    request.getfixturevalue("source_vm")  # removes any snapshot left behind
    the_double = request.getfixturevalue("double")
    the_double.snapshots = ["*"]
    the_double.write()
    return request.getfixturevalue("repository"), env_for(vcsim, the_double)


def disk_export_scenario(request, work):
    path, env = _transfer_setup(request)
    tasks = [
        _task("ok: every disk", "disk_export", name=SOURCE, repository=path, transports=["nbdssl"]),
        _task("ok: one disk, a refused transport, staged", "disk_export", name=SOURCE, repository=path,
              transports=["san", "nbdssl"], disks=["2000"], commit=False, incremental=False),
        _task("fails: unknown disk", "disk_export", name=SOURCE, repository=path, transports=["nbdssl"],
              disks=["nope"]),
    ]
    return tasks, env


def disk_import_scenario(request, work):
    path, env = _transfer_setup(request)
    backup_id = _backup_of(path, request.getfixturevalue("estate"))
    tasks = [
        _task("ok: every disk", "disk_import", name=TARGET, repository=path, backup_id=backup_id,
              transports=["nbdssl"]),
        _task("ok: a disk map, a refused transport", "disk_import", name=TARGET, repository=path,
              backup_id=backup_id, transports=["hotadd", "nbdssl"], disk_map={"2001": "2000"}),
        _task("fails: unknown source disk", "disk_import", name=TARGET, repository=path, backup_id=backup_id,
              transports=["nbdssl"], disk_map={"2999": "2000"}),
    ]
    return tasks, env


def snapshot_scenario(request, work):
    vcsim = request.getfixturevalue("vcsim")
    request.getfixturevalue("source_vm")  # removes what the run leaves behind
    tasks = [
        _task("ok: take", "snapshot", name=SOURCE, snapshot_name="returns-test"),
        _task("ok: take again", "snapshot", name=SOURCE, snapshot_name="returns-test"),
        _task("ok: remove", "snapshot", name=SOURCE, snapshot_name="returns-test", state="absent"),
        _task("fails: unknown VM", "snapshot", name="no-such-vm", snapshot_name="returns-test"),
    ]
    return tasks, vmware_env(vcsim)


def metadata_capture_scenario(request, work):
    vcsim = request.getfixturevalue("vcsim")
    request.getfixturevalue("estate")
    path = request.getfixturevalue("repository")
    env = vmware_env(vcsim)
    env["VMCRYPT_REPOSITORY_PASSWORD"] = PASSWORD
    tasks = [
        _task("ok: committed", "metadata_capture", name=SOURCE, repository=path, commit=True),
        _task("ok: staged", "metadata_capture", name="uefi-vm01", repository=path),
        _task("fails: unknown VM", "metadata_capture", name="no-such-vm", repository=path),
    ]
    return tasks, env


def backup_commit_scenario(request, work):
    path = request.getfixturevalue("repository")
    repo = open_repository(path)
    to_commit = repo.start_backup({"name": SOURCE, "uuid": "u-commit"}).backup_id
    to_discard = repo.start_backup({"name": SOURCE, "uuid": "u-discard"}).backup_id
    tasks = [
        _task("ok: commit", "backup_commit", repository=path, backup_id=to_commit, warnings=["a warning"]),
        _task("ok: discard", "backup_commit", repository=path, backup_id=to_discard, state="discarded"),
        _task("fails: unknown backup", "backup_commit", repository=path, backup_id="20991231T000000Z-deadbeef"),
    ]
    return tasks, {"VMCRYPT_REPOSITORY_PASSWORD": PASSWORD}


def vddk_access_scenario(request, work):
    _path, env = _transfer_setup(request)
    tasks = [
        _task("ok: prepared", "vddk_access", name=SOURCE, state="prepared"),
        _task("ok: ended", "vddk_access", name=SOURCE, state="ended"),
        _task("fails: unknown VM", "vddk_access", name="no-such-vm", state="prepared"),
    ]
    return tasks, env


def _planned_backups(request):
    """A backup of an encrypted VM with its metadata, and one of disks alone (no keyId, no bundle)."""
    vcsim = request.getfixturevalue("vcsim")
    estate = request.getfixturevalue("estate")
    path = request.getfixturevalue("repository")
    repo = open_repository(path)
    env = vmware_env(vcsim)
    env["VMCRYPT_REPOSITORY_PASSWORD"] = PASSWORD
    return path, capture_backup(vcsim, repo, estate, SOURCE), disks_only_backup(repo, estate, "uefi-vm01"), env


def restore_plan_scenario(request, work):
    path, with_metadata, disks_only, env = _planned_backups(request)
    tasks = [
        _task("ok: the original key", "restore_plan", repository=path, backup_id=with_metadata),
        _task("ok: no metadata, new keys, the administrator's policy", "restore_plan", repository=path,
              backup_id=disks_only, key_mode="new", storage_policy="VM Encryption Policy"),
        _task("ok: unencrypted on request", "restore_plan", repository=path, backup_id=with_metadata,
              key_mode="none"),
        _task("fails: unknown backup", "restore_plan", repository=path, backup_id="20991231T000000Z-deadbeef"),
    ]
    return tasks, env


def backup_keys_check_scenario(request, work):
    path, with_metadata, _disks_only, env = _planned_backups(request)
    tasks = [
        _task("ok: every backup", "backup_keys_check", repository=path),
        _task("ok: one backup, the latest of a VM", "backup_keys_check", repository=path, backup_ids=[with_metadata],
              vm=SOURCE, latest=True),
        _task("fails: unknown backup", "backup_keys_check", repository=path, backup_ids=["20991231T000000Z-deadbeef"]),
    ]
    return tasks, env


def vm_restore_scenario(request, work):
    path, with_metadata, _disks_only, env = _planned_backups(request)
    si = request.getfixturevalue("vcsim_si")

    def remove_restored():
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        try:
            leftovers = [vm for vm in view.view if vm.name.startswith("returns-restored")]
        finally:
            view.Destroy()
        for vm in leftovers:
            wait_for_task(vm.Destroy_Task())

    request.addfinalizer(remove_restored)
    tasks = [
        _task("ok: the original key, a new name", "vm_restore", repository=path, backup_id=with_metadata,
              name="returns-restored"),
        _task("ok: new keys, replacing it", "vm_restore", repository=path, backup_id=with_metadata,
              name="returns-restored", key_mode="new", overwrite=True, networks={"VM Network": "VM Network"}),
        _task("fails: a name taken", "vm_restore", repository=path, backup_id=with_metadata, name="plain-vm01"),
    ]
    return tasks, env


def run_report_scenario(request, work):
    with open(RECORDED_RUN) as handle:
        backup = json.load(handle)
    tasks = [
        _task("ok: a backup run to the console", "run_report", run=backup),
        _task("ok: a restore run that reported nothing, into a folder", "run_report",
              run={"kind": "restore", "run_id": "returns-test", "vms": [None]}, dest=str(work / "reports")),
        _task("fails: no kind", "run_report", run={"run_id": "returns-test", "vms": []}),
    ]
    return tasks, {}


SCENARIOS = {
    "run_report": run_report_scenario,
    "restore_plan": restore_plan_scenario,
    "vm_restore": vm_restore_scenario,
    "backup_keys_check": backup_keys_check_scenario,
    "backup_commit": backup_commit_scenario,
    "vddk_access": vddk_access_scenario,
    "metadata_capture": metadata_capture_scenario,
    "snapshot": snapshot_scenario,
    "backup_info": backup_info_scenario,
    "backup_prune": backup_prune_scenario,
    "backup_verify": backup_verify_scenario,
    "disk_export": disk_export_scenario,
    "disk_import": disk_import_scenario,
    "privilege_check": privilege_check_scenario,
    "repository": repository_scenario,
    "vm_crypto_info": vm_crypto_info_scenario,
}


def test_every_scenario_is_a_module():
    assert sorted(set(SCENARIOS) - set(MODULES)) == []


def run_twice(folder, tasks, env):
    """One playbook: every task in check mode, then every task for real (from the same state)."""
    play = [dict(task, name="check | " + task["name"], check_mode=True) for task in tasks]
    play += [dict(task, name="run | " + task["name"]) for task in tasks]
    run = run_playbook(folder, play, env=env)
    return run, dict((mode, dict((task["name"], run.results.get("%s | %s" % (mode, task["name"]))) for task in tasks))
                     for mode in ("check", "run"))


@pytest.mark.parametrize("module", MODULES)
def test_results_match_return(module, request, tmp_path):
    if module not in SCENARIOS:
        pytest.fail("add a scenario for module %s to %s" % (module, os.path.basename(__file__)))
    docs = return_doc(module)
    problems = ["RETURN: %s" % problem for problem in doc_problems(docs)]
    tasks, env = SCENARIOS[module](request, tmp_path)
    run, by_mode = run_twice(tmp_path, tasks, env)
    found = {}  # problem of a result -> the modes it shows in
    for task in tasks:
        name = task["name"]
        expected = "failed" if name.startswith("fails:") else "ok"
        results = {}
        for mode in ("check", "run"):
            result = by_mode[mode][name]
            if result is None:
                problems.append("%s [%s]: no result\n%s" % (name, mode, run.output[-3000:]))
                continue
            if result["_status"] != expected:
                problems.append("%s [%s]: %s, expected %s: %s" % (name, mode, result["_status"], expected,
                                                                  result.get("msg")))
                continue
            results[mode] = result
            for problem in dict_problems(result, docs, failed=(expected == "failed")):
                found.setdefault("%s: %s" % (name, problem), []).append(mode)
        if len(results) < 2:
            continue
        check, real = results["check"], results["run"]
        if expected == "failed":
            if (check.get("msg"), check.get("error_type")) != (real.get("msg"), real.get("error_type")):
                problems.append("%s: check mode fails with %r (%s), the run with %r (%s)" % (
                    name, check.get("msg"), check.get("error_type"), real.get("msg"), real.get("error_type")))
        else:
            check_paths, run_paths = key_paths(check), key_paths(real)
            check_paths, run_paths = compared_paths(check_paths, run_paths), compared_paths(run_paths, check_paths)
            only_check, only_run = check_paths - run_paths, run_paths - check_paths
            if only_check or only_run:
                problems.append("%s: keys only in check mode: %s; only in the run: %s" % (
                    name, ", ".join(sorted(only_check)) or "none", ", ".join(sorted(only_run)) or "none"))
    problems += ["%s [%s]" % (problem, ", ".join(sorted(set(modes)))) for problem, modes in found.items()]
    assert not problems, "%s:\n- %s" % (module, "\n- ".join(problems))


def test_check_mode_refuses_unknown_disks_as_a_run_does(request, tmp_path, estate):
    """disk_export with an unknown disk, disk_import with an unknown disk_map source: the same failure."""
    path, env = _transfer_setup(request)
    backup_id = _backup_of(path, estate)
    tasks = [
        _task("export", "disk_export", name=SOURCE, repository=path, transports=["nbdssl"], disks=["nope"]),
        _task("import", "disk_import", name=TARGET, repository=path, backup_id=backup_id, transports=["nbdssl"],
              disk_map={"2999": "2000"}),
    ]
    _run, results = run_twice(tmp_path, tasks, env)
    export_check, export_run = results["check"]["export"], results["run"]["export"]
    assert export_check["_status"] == export_run["_status"] == "failed"
    assert export_check["msg"] == export_run["msg"] == "the VM has no disk nope; it has %s" % ", ".join(
        "%d (%s)" % (disk["key"], disk["label"]) for disk in estate["vms"][SOURCE]["disks"])
    import_check, import_run = results["check"]["import"], results["run"]["import"]
    assert import_check["_status"] == import_run["_status"] == "failed"
    assert import_check["msg"] == import_run["msg"] == (
        "backup %s has no disk 2999; it has 2000, 2001" % backup_id)
    assert import_check["error_type"] == import_run["error_type"] == "NotFoundError"
