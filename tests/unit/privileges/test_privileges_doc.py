"""docs/privileges.md lists exactly the privileges the catalog checks."""
import os
import re

from ansible_collections.vmcrypt.backup.plugins.module_utils.privileges import catalog

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "..", "docs", "privileges.md")


def documented_lists():
    lists = {}
    current = None
    with open(DOC) as handle:
        for line in handle:
            marker = re.match(r"<!-- catalog: (\w+) -->", line)
            if marker:
                current = lists.setdefault(marker.group(1), set())
            elif current is not None and line.startswith("- `"):
                current.add(line.strip()[3:-1])
            elif line.startswith("#"):
                current = None
    return lists


def test_every_catalog_list_is_documented_exactly():
    lists = documented_lists()
    names = [name for name in dir(catalog)
             if name.isupper() and isinstance(getattr(catalog, name), frozenset)]
    assert sorted(lists) == sorted(names)
    for name in names:
        assert lists[name] == set(getattr(catalog, name)), name


def documented_roles():
    roles = {}
    with open(DOC) as handle:
        for line in handle:
            marker = re.search(r"<!-- role: (\w+) -->(.*?)\|", line)
            if marker:
                roles[marker.group(1)] = re.findall(r"`([\w.]+)`", marker.group(2))
    return roles


def test_the_four_roles_are_documented_as_the_catalog_builds_them():
    roles = documented_roles()
    assert sorted(roles) == sorted(catalog.ROLE_LISTS)
    for name, privileges in roles.items():
        assert privileges == catalog.role_privileges(name), name


def test_a_role_covers_every_list_of_its_task():
    every_listed = set()
    for lists in catalog.ROLE_LISTS.values():
        for privileges in lists:
            every_listed |= privileges
    for phase in catalog.PHASES:
        for requirement in [catalog.base_requirements(phase, True, register_host=True)] + [
                catalog.transport_requirements(phase, transport, True) for transport in catalog.TRANSPORTS]:
            for privileges in requirement.values():
                assert privileges <= every_listed
