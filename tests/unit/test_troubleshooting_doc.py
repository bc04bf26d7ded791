"""docs/troubleshooting.md quotes the messages the code prints: every fixed part of each quoted heading must occur
in a string of the collection's code (plugins/, roles/, playbooks/), so the page cannot drift from the code."""
import ast
import glob
import os
import re

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOC = os.path.join(ROOT, "docs", "troubleshooting.md")

# Where a message is glued together from several strings of the code ("%s; %s", "%s: %s", "%s (%s)", ...):
# the fixed text on either side must then be found on its own.
GLUE = re.compile(r"\)?[;:] |\.\.\.")
PLACEHOLDER = re.compile(r"<[^<>]+>")


def _flat(text):
    return " ".join(text.split())


def _formatted_with_constants(tree):
    """``"... %s ..." % NAME`` where NAME is a string constant of the same file, formatted (INSTALL_HINT, ...)."""
    constants = dict((node.targets[0].id, node.value.value) for node in tree.body
                     if isinstance(node, ast.Assign) and len(node.targets) == 1
                     and isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str))
    for node in ast.walk(tree):
        if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(node.left, ast.Constant)
                and isinstance(node.left.value, str) and isinstance(node.right, ast.Name)
                and node.right.id in constants):
            yield node.left.value % constants[node.right.id]


def code_strings():
    """Every string literal of the collection's Python (adjacent literals joined, as Python joins them) and the text of
    its roles and playbooks, whitespace collapsed."""
    strings = []
    for path in glob.glob(os.path.join(ROOT, "plugins", "**", "*.py"), recursive=True):
        with open(path) as handle:
            tree = ast.parse(handle.read(), path)
        strings.extend(_flat(node.value) for node in ast.walk(tree)
                       if isinstance(node, ast.Constant) and isinstance(node.value, str))
        strings.extend(_flat(text) for text in _formatted_with_constants(tree))
    for pattern in ("roles/**/*.yml", "playbooks/*.yml"):
        for path in glob.glob(os.path.join(ROOT, pattern), recursive=True):
            with open(path) as handle:
                strings.append(_flat(handle.read()))
    return strings


def quoted_messages():
    with open(DOC) as handle:
        return re.findall(r"^#{3,4} `(.+)`\s*$", handle.read(), re.MULTILINE)


def pieces(message):
    """``message`` split where the code glues strings together."""
    return [piece.strip() for piece in GLUE.split(message) if piece.strip()]


def fixed_parts(text):
    """The text outside the <placeholders> of ``text``, the parts of four characters or more."""
    parts = [part.strip().strip("()").strip() for part in PLACEHOLDER.split(text)]
    return [part for part in parts if len(part) >= 4]


MESSAGES = quoted_messages()
STRINGS = code_strings()


def test_the_page_quotes_the_messages_a_new_user_meets():
    assert len(MESSAGES) >= 40
    for expected in ("refused the login of user", "does not open any key slot", "no VM named",
                     "san is not supported for encrypted disks", "needs an encrypted proxy VM",
                     "refused: missing", "LD_LIBRARY_PATH", "failed authentication",
                     "no space left in the repository", "exists in datacenter", "lost access to the original key",
                     "could not be removed"):
        assert any(expected in message for message in MESSAGES), expected


def _in_code(text):
    return any(text in string for string in STRINGS)


def covered(piece):
    """Whether ``piece`` (a glued-together part of a message) is the code's text: as it stands (a placeholder such as
    <libdir> may be the code's own text), or else each of its fixed parts between placeholders."""
    if _in_code(piece):
        return True
    return all(_in_code(part) for part in fixed_parts(piece))


@pytest.mark.parametrize("message", MESSAGES)
def test_each_fixed_part_of_a_quoted_message_is_in_the_code(message):
    assert sum(len(part) for part in fixed_parts(message)) >= 10, "too little fixed text to check: %r" % message
    missing = [piece for piece in pieces(message) if fixed_parts(piece) and not covered(piece)]
    assert not missing, "not in the code any more: %r (from %r)" % (missing, message)


def test_the_checker_would_notice_a_changed_message():
    assert covered("vCenter <host>:<port> refused the login of user '<user>'")
    assert covered("the <password or key file> does not open any key slot of repository <path>")
    assert not covered("the password does not open any key slot of repository <path>")  # "password" is filled in
    assert not covered("vCenter <host> refused the login of user '<user>': wrong user name or pasword")
    assert fixed_parts("VM <vm> is <state>") == []
    assert pieces("VM <vm> is <state>: power it off before its disks are written") == [
        "VM <vm> is <state>", "power it off before its disks are written"]
