"""The roles docs/privileges.md gives an administrator to paste (govc, PowerCLI) are exactly what the catalogue checks."""
import os
import re

from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "privileges.md")
PRIVILEGE = re.compile(r"\b[A-Z][A-Za-z]+(?:\.[A-Z][A-Za-z]+)+\b")


def _doc():
    with open(DOC) as handle:
        return handle.read()


def pasted_roles():
    """{name: privileges of the code block after its <!-- paste: name --> marker}."""
    return dict((name, PRIVILEGE.findall(block))
                for name, block in re.findall(r"<!-- paste: (\w+) -->\s*```\w*\n(.*?)```", _doc(), re.DOTALL))


def expected():
    def union(*roles):
        return sorted(set().union(*(catalog.role_privileges(role) for role in roles)))
    return {"backup": union("backup"), "backup_hotadd": union("backup", "hotadd_proxy"),
            "restore": union("restore_existing", "restore_new_vm")}


def test_each_pasted_role_is_the_catalogue_s_list_sorted():
    roles = pasted_roles()
    assert sorted(roles) == sorted(expected())
    for name, privileges in expected().items():
        assert roles[name] == privileges, name


def test_the_powercli_line_is_the_backup_role():
    [line] = [line for line in _doc().splitlines() if line.startswith("New-VIRole -Name vmcrypt-backup ")]
    assert sorted(PRIVILEGE.findall(line)) == expected()["backup"]


def test_the_restore_role_covers_every_list_the_restore_playbook_checks():
    needed = set()
    for phase in ("restore", "restore_vm"):
        for requirement in [catalog.base_requirements(phase, True, register_host=True)] + [
                catalog.transport_requirements(phase, transport, True) for transport in ("nbdssl",)]:
            for privileges in requirement.values():
                needed |= privileges
    assert needed <= set(pasted_roles()["restore"])
