# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report's files: ``<kind>-report-<run_id>.md``, ``.html`` and ``.json`` in one folder, mode 0600.

A file is rewritten only when its bytes or its mode differ, each by a
temporary file renamed over it, so a reader never sees half a report and a
second run with the same record changes nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import tempfile

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError

FILE_MODE = 0o600
FOLDER_MODE = 0o700
EXTENSIONS = ("md", "html", "json")


class ReportFileError(VmcryptError):
    """The report's folder or one of its files could not be written."""


def report_paths(dest, kind, run_id):
    return dict((extension, os.path.join(dest, "%s-report-%s.%s" % (kind, run_id, extension)))
                for extension in EXTENSIONS)


def _holds(path, data):
    try:
        info = os.stat(path)
        if stat.S_IMODE(info.st_mode) != FILE_MODE or info.st_size != len(data):
            return False
        with open(path, "rb") as handle:
            return handle.read() == data
    except OSError:
        return False


def _replace(path, data):
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".%s." % os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def write_report_files(dest, kind, run_id, contents, dry_run=False):
    """Write ``contents`` (extension -> text) into ``dest`` (created 0700 when missing).

    Returns (extension -> path, whether anything was or, with ``dry_run``, would be written).
    """
    paths = report_paths(dest, kind, run_id)
    if os.path.exists(dest) and not os.path.isdir(dest):
        raise ReportFileError("the report folder %s is not a directory" % dest)
    data = dict((extension, contents[extension].encode("utf-8")) for extension in EXTENSIONS)
    stale = [extension for extension in EXTENSIONS if not _holds(paths[extension], data[extension])]
    if stale and not dry_run:
        try:
            if not os.path.isdir(dest):
                os.makedirs(dest, FOLDER_MODE)
            for extension in stale:
                _replace(paths[extension], data[extension])
        except OSError as error:
            raise ReportFileError("cannot write the report into %s: %s" % (dest, error.strerror or error))
    return paths, bool(stale)
