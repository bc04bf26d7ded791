# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run this process with VDDK's ``lib64`` on LD_LIBRARY_PATH, from its start.

VDDK loads further libraries by bare name after it is itself loaded, and the
dynamic loader reads LD_LIBRARY_PATH once, when a process starts: loading
``libvixDiskLib.so`` by full path is not enough, and setting the variable
later changes nothing for this process.  So, as nbdkit's VDDK plugin does, a
process that is going to use VDDK checks the variable first thing and, when
the directory is missing, runs itself again with it: ``ensure_library_path()``.

How to run "itself" again depends on how the program was started, so the
caller may pass ``respawn(environment)``: an Ansible module hands over
Ansible's own respawn (its arguments are not on the command line but inside
the AnsiballZ payload, which may have come on standard input), a script
takes the default, which re-executes ``sys.executable`` with the original
command line.  Either way only this process and its new copy see the
changed environment: never the Ansible controller, never the caller's shell.

In the new copy the variable is put back as it was (``os.environ`` only: the
loader keeps the value it read at start), so programs this process starts
do not inherit VDDK's libraries, as nbdkit restores it too.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import loader
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError

VARIABLE = "LD_LIBRARY_PATH"
# Set in the environment of the new copy: the variable's original value ("" when it was unset).
MARKER = "VMCRYPT_VDDK_REEXECUTED"

# lib64 directories this process was started with on LD_LIBRARY_PATH (checked, then restored).
_READY = set()


def library_dir(libdir):
    """The directory of VDDK's libraries: <libdir>/lib64, absolute."""
    return os.path.join(os.path.abspath(libdir), "lib64")


def _entries(value):
    return [entry for entry in (value or "").split(":") if entry]


def has_library_path(libdir, environ=None):
    """Whether LD_LIBRARY_PATH in ``environ`` (default: this process's) names <libdir>/lib64."""
    environ = os.environ if environ is None else environ
    wanted = os.path.realpath(library_dir(libdir))
    return any(os.path.realpath(entry) == wanted for entry in _entries(environ.get(VARIABLE)))


def environment_with_library_path(libdir, environ=None):
    """A copy of ``environ`` with <libdir>/lib64 first on LD_LIBRARY_PATH and the original value kept in MARKER."""
    environ = dict(os.environ if environ is None else environ)
    original = environ.get(VARIABLE, "")
    environ[VARIABLE] = ":".join([library_dir(libdir)] + _entries(original))
    environ[MARKER] = original
    return environ


def _command_line():
    """The interpreter and the arguments this process was started with."""
    original = getattr(sys, "orig_argv", None)  # Python 3.10+: also "-c code" and "-m module"
    arguments = list(original[1:]) if original else list(sys.argv)
    if not arguments or arguments[0] in ("", "-") or (not original and not os.path.isfile(arguments[0])):
        raise VddkError("cannot run this program again with VDDK's libraries on %s: it was read from standard "
                        "input; start it with %s set, or give ensure_library_path() a respawn function"
                        % (VARIABLE, VARIABLE))
    return [sys.executable] + arguments


def reexec(environment):
    """Replace this process by a new run of the same command line in ``environment`` (does not return)."""
    command = _command_line()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    os.execve(command[0], command, environment)


def ensure_library_path(libdir=None, respawn=None, environ=None):
    """Make sure this process started with <libdir>/lib64 on LD_LIBRARY_PATH; run it again if it did not.

    Call it first thing in a process that will use VDDK, before anything
    that must not happen twice (a login, a snapshot, a write).  ``libdir``
    is the option ``vddk_libdir`` (None: VMCRYPT_VDDK_LIBDIR).  Returns the
    lib64 directory when the process is ready, None when no VDDK directory
    is configured or it does not exist (loading VDDK later says what to
    install).  Otherwise ``respawn(environment)`` (default ``reexec``) runs
    the program again and does not return.
    """
    environ = os.environ if environ is None else environ
    try:
        libdir = loader.resolve_libdir(libdir)
    except VddkError:
        return None
    lib64 = library_dir(libdir)
    if lib64 in _READY:
        return lib64
    if has_library_path(libdir, environ):
        _READY.add(lib64)
        if MARKER in environ:  # the new copy: give its children the environment the caller had
            original = environ.pop(MARKER)
            if original:
                environ[VARIABLE] = original
            else:
                environ.pop(VARIABLE, None)
        return lib64
    if MARKER in environ:
        raise VddkError("this process was run again with %s on %s, but the variable does not hold it now: does "
                        "a wrapper or a setuid interpreter clear it? Start the program with %s=%s"
                        % (lib64, VARIABLE, VARIABLE, lib64))
    (respawn or reexec)(environment_with_library_path(libdir, environ))
    raise VddkError("running this program again with %s on %s did not replace it" % (lib64, VARIABLE))
