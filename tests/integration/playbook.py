"""Run real ansible-playbook against the collection and collect task results."""
import json
import os
import subprocess
import sys

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS_PATH = os.path.join(REPO_ROOT, ".build", "collections")
CALLBACKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")


class PlaybookRun(object):
    def __init__(self, returncode, output, results):
        self.returncode = returncode
        self.output = output
        self.results = results

    def __getitem__(self, task_name):
        return self.results[task_name]


def ansible_environment(extra=None):
    """Environment for an ansible-playbook run of the checkout's collection."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
    })
    env.update(extra or {})
    return env


def ansible_playbook_command(playbook_path, *arguments):
    return [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
            playbook_path] + list(arguments)


def run_playbook(workdir, tasks, extra_vars=None, env=None, check=False, module_defaults=None, verbosity=0):
    """Write a one-play playbook of ``tasks`` for localhost and run it.

    Returns a PlaybookRun whose ``results`` maps task names to module results.
    ``env`` adds environment variables (connection settings, secrets) so they
    never appear on the command line.
    """
    play = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    if module_defaults:
        play["module_defaults"] = module_defaults
    playbook_path = os.path.join(str(workdir), "playbook.yml")
    with open(playbook_path, "w") as handle:
        yaml.safe_dump([play], handle, sort_keys=False)
    results_path = os.path.join(str(workdir), "results.json")
    command = ansible_playbook_command(playbook_path)
    if check:
        command.append("--check")
    if verbosity:
        command.append("-" + "v" * verbosity)
    if extra_vars:
        vars_path = os.path.join(str(workdir), "extra_vars.json")
        with open(vars_path, "w") as handle:
            json.dump(extra_vars, handle)
        command += ["-e", "@" + vars_path]
    run_env = ansible_environment({
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACKS,
        "ANSIBLE_CALLBACKS_ENABLED": "record_results",
        "VMCRYPT_TEST_RESULTS_FILE": results_path,
    })
    run_env.update(env or {})
    completed = subprocess.run(command, cwd=str(workdir), env=run_env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=900, check=False)
    results = {}
    if os.path.exists(results_path):
        with open(results_path) as handle:
            results = json.load(handle)
    return PlaybookRun(completed.returncode, completed.stdout, results)
