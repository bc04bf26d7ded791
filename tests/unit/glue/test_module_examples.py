"""Every module's EXAMPLES use only options the module has, with values its argument spec accepts.

Each example task of ``vmcrypt.backup.<module>`` is validated against the very argument spec the module's
``main()`` builds (``run_module`` is swapped for a recorder), with Ansible's own validator: an option renamed,
a choice dropped or a wrong type in an example fails here. Jinja expressions stand for values known only at
run time: a string option takes one as it is, an option of another type is left out of the type check, and
every name must still exist.
"""
import glob
import importlib
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue import specs

MODULES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "plugins", "modules")
MODULES = sorted(os.path.basename(path)[:-3] for path in glob.glob(os.path.join(MODULES_DIR, "*.py"))
                 if not os.path.basename(path).startswith("_"))
# Options every module takes from the environment when absent (connection, repository password, VDDK).
FROM_ENVIRONMENT = {"hostname": "vc.example.com", "username": "u", "password": "p"}


def spec_of(name, monkeypatch):
    module = importlib.import_module("ansible_collections.vmcrypt.backup.plugins.modules.%s" % name)
    recorded = {}

    def record(_body, groups=(), options=None, rules=None, check_mode=True):
        recorded.update(spec=specs.module_spec(groups, **(options or {})),
                        rules=specs.module_rules(groups, **(rules or {})))

    monkeypatch.setattr(module, "run_module", record)
    module.main()
    return module, recorded["spec"], recorded["rules"]


def example_tasks(module, name):
    tasks = yaml.safe_load(module.EXAMPLES) or []
    found = [task["vmcrypt.backup.%s" % name] for task in tasks if "vmcrypt.backup.%s" % name in task]
    return found


def templated(value):
    return isinstance(value, str) and "{{" in value


def without_templates(params, spec):
    """The options as far as they are known now: a template stands in for a string option (its value is one),
    and leaves out an option of another type; nested dicts keep their known suboptions."""
    known = {}
    for key, value in params.items():
        option = spec.get(key) or {}
        if templated(value):
            if option.get("type", "str") in ("str", "path", "raw"):
                known[key] = value
            continue
        if isinstance(value, dict) and option.get("options"):
            value = without_templates(value, option["options"])
        known[key] = value
    return known


@pytest.mark.parametrize("name", MODULES)
def test_every_example_uses_the_module_s_own_options(name, monkeypatch):
    module, spec, rules = spec_of(name, monkeypatch)
    tasks = example_tasks(module, name)
    assert tasks, "%s has no example of itself" % name
    for params in tasks:
        aliases = set(alias for option in spec.values() for alias in option.get("aliases", []))
        unknown = sorted(set(params) - set(spec) - aliases)
        assert not unknown, "%s example uses options it does not have: %s" % (name, unknown)
        environment = dict((key, value) for key, value in FROM_ENVIRONMENT.items() if key in spec)
        known = dict(environment, **without_templates(params, spec))
        # Required options given as templates are present at run time.
        relaxed = dict((key, dict(option, required=False)) for key, option in spec.items())
        rule_names = ("mutually_exclusive", "required_together", "required_one_of", "required_if", "required_by")
        validator = ArgumentSpecValidator(relaxed, **dict((key, value) for key, value in rules.items()
                                                          if key in rule_names and key != "required_one_of"))
        result = validator.validate(known)
        assert not result.error_messages, "%s example %r: %s" % (name, params, result.error_messages)
