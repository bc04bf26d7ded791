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
             if name.isupper() and isinstance(getattr(catalog, name), frozenset) and name != "IMPLICIT_PRIVILEGES"]
    assert sorted(lists) == sorted(names)
    for name in names:
        assert lists[name] == set(getattr(catalog, name)), name
