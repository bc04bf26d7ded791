# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stream a datastore file (the NVRAM) to or from vCenter's ``/folder`` URL.

``https://<vcenter>/folder/<path>?dcPath=<datacenter>&dsName=<datastore>``
serves the files of a datastore over HTTPS. The request carries the
``vmware_soap_session`` cookie of the logged-in client, so there is no second
login, and uses the client's TLS context, so certificate validation is what
the user configured. Data moves in bounded blocks: a file is never held whole
in memory. The guide: the NVRAM file "can be handled as it was in previous
releases, using HTTP download and upload" (it is useless without keyId and
encryption.bundle, which metadata capture saves beside it).

Errors are one line naming the datastore path and never the cookie:
HTTP 404 is NotFoundError, 401/403 PermissionDeniedError, a connection or TLS
failure VsphereConnectionError, any other status VsphereFaultError.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re
import socket
import ssl

try:  # Python 3; the collection runs on 3.9+
    from http.client import HTTPException, HTTPSConnection
    from urllib.parse import quote, urlencode
except ImportError:  # pragma: no cover
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    VsphereConnectionError,
    VsphereFaultError,
)

BLOCK_SIZE = 1024 * 1024
FOLDER_PREFIX = "/folder/"
SESSION_COOKIE = "vmware_soap_session"

_DATASTORE_PATH = re.compile(r"^\[([^\]]+)\]\s*(.*)$")


def parse_datastore_path(datastore_path):
    """("ds1", "app01/app01.nvram") from "[ds1] app01/app01.nvram"; InvalidArgumentError otherwise."""
    match = _DATASTORE_PATH.match(datastore_path or "")
    if not match or not match.group(1).strip():
        raise InvalidArgumentError("'%s' is not a datastore path like '[datastore] folder/file'" % datastore_path)
    datastore, relative = match.group(1), match.group(2).strip().lstrip("/")
    if not relative or relative.endswith("/"):
        raise InvalidArgumentError("datastore path '%s' names no file" % datastore_path)
    if ".." in relative.split("/"):
        raise InvalidArgumentError("datastore path '%s' climbs out of its folder ('..')" % datastore_path)
    return datastore, relative


def folder_url(datacenter, datastore_path):
    """The request target of a datastore file: "/folder/<path>?dcPath=<datacenter>&dsName=<datastore>"."""
    if not datacenter:
        raise InvalidArgumentError("a datacenter is needed to reach datastore file '%s'" % datastore_path)
    datastore, relative = parse_datastore_path(datastore_path)
    return "%s%s?%s" % (FOLDER_PREFIX, quote(relative, safe="/"),
                        urlencode([("dcPath", datacenter), ("dsName", datastore)]))


def status_error(status, reason, action, datastore_path, datacenter):
    """The error for an HTTP status other than success (None for 2xx)."""
    if 200 <= status < 300:
        return None
    where = "datastore file %s (datacenter %s)" % (datastore_path, datacenter)
    if status == 404:
        return NotFoundError("%s not found: vCenter answered HTTP 404 to the %s" % (where, action))
    if status in (401, 403):
        return PermissionDeniedError("vCenter refused the %s of %s with HTTP %d %s: the session is not logged in "
                                     "or lacks the datastore privileges for it" % (action, where, status, reason))
    return VsphereFaultError("%s of %s failed: HTTP %d %s" % (action, where, status, reason))


class _Request:
    """One HTTPS request to /folder on the client's session; the connection is closed at the end."""

    def __init__(self, client, datacenter, datastore_path, action, timeout):
        self.target = folder_url(datacenter, datastore_path)
        self.client = client
        self.datacenter = datacenter
        self.datastore_path = datastore_path
        self.action = action
        self.timeout = timeout
        self.connection = None

    def headers(self, extra=None):
        headers = {"Cookie": '%s="%s"' % (SESSION_COOKIE, self.client.session_cookie)}
        headers.update(extra or {})
        return headers

    def connection_error(self, error):
        where = "%s:%d" % (self.client.hostname, self.client.port)
        if isinstance(error, ssl.SSLCertVerificationError):
            detail = "TLS certificate not trusted (%s)" % error.verify_message
        elif isinstance(error, ssl.SSLError):
            detail = "TLS failure (%s)" % (error.reason or type(error).__name__)
        elif isinstance(error, (socket.timeout, TimeoutError)):
            detail = "no answer within %d seconds" % self.timeout
        elif isinstance(error, OSError):
            detail = error.strerror or type(error).__name__
        else:
            detail = type(error).__name__
        return VsphereConnectionError("%s of datastore file %s from vCenter %s failed: %s"
                                      % (self.action, self.datastore_path, where, detail))

    def send(self, method, body=None, headers=None):
        self.connection = HTTPSConnection(self.client.hostname, self.client.port, timeout=self.timeout,
                                          context=self.client.ssl_context, blocksize=BLOCK_SIZE)
        self.connection.request(method, self.target, body=body, headers=self.headers(headers))
        response = self.connection.getresponse()
        error = status_error(response.status, response.reason, self.action, self.datastore_path, self.datacenter)
        if error is not None:
            response.close()
            raise error
        return response

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def _writer(sink):
    write = getattr(sink, "write", None)
    if write is not None:
        return write
    if callable(sink):
        return sink
    raise InvalidArgumentError("the sink of a download must be a callable or have write()")


def iter_download(client, datacenter, datastore_path, block_size=BLOCK_SIZE, timeout=60):
    """Yield a datastore file's bytes in blocks of at most ``block_size`` (for a consumer that pulls).

    A download cut short (fewer bytes than Content-Length) raises VsphereConnectionError after the last block.
    """
    request = _Request(client, datacenter, datastore_path, "download", timeout)
    size = 0
    try:
        try:
            response = request.send("GET")
            expected = response.getheader("Content-Length")
            block = response.read(block_size)
        except (OSError, HTTPException) as error:
            raise request.connection_error(error)
        while block:
            size += len(block)
            yield block
            try:
                block = response.read(block_size)
            except (OSError, HTTPException) as error:
                raise request.connection_error(error)
    finally:
        request.close()
    if expected is not None and expected.isdigit() and int(expected) != size:
        raise VsphereConnectionError("download of datastore file %s ended after %d of %s bytes"
                                     % (datastore_path, size, expected))


def download(client, datacenter, datastore_path, sink, block_size=BLOCK_SIZE, timeout=60):
    """Stream a datastore file into ``sink`` (a callable taking bytes, or a file-like with write()).

    Returns (size in bytes, sha256 hex digest) of what was written.
    """
    write = _writer(sink)
    digest = hashlib.sha256()
    size = 0
    for block in iter_download(client, datacenter, datastore_path, block_size=block_size, timeout=timeout):
        digest.update(block)
        size += len(block)
        write(block)
    return size, digest.hexdigest()


class _Body:
    """Iterates exactly ``size`` bytes of ``source`` in blocks, hashing them."""

    def __init__(self, source, size, block_size, datastore_path):
        self.read = getattr(source, "read", None)
        self.iterator = None if self.read is not None else iter(source)
        self.size = size
        self.block_size = block_size
        self.datastore_path = datastore_path
        self.sent = 0
        self.digest = hashlib.sha256()
        self.pending = b""

    def _next(self, limit):
        if self.read is not None:
            return self.read(limit)
        if not self.pending:
            self.pending = next(self.iterator, b"")
        block, self.pending = self.pending[:limit], self.pending[limit:]
        return block

    def __iter__(self):
        while self.sent < self.size:
            block = self._next(min(self.block_size, self.size - self.sent))
            if not block:
                raise InvalidArgumentError("upload of datastore file %s: the source ended after %d of %d bytes"
                                           % (self.datastore_path, self.sent, self.size))
            self.sent += len(block)
            self.digest.update(block)
            yield block
        if self._next(1):
            raise InvalidArgumentError("upload of datastore file %s: the source holds more than %d bytes"
                                       % (self.datastore_path, self.size))


def upload(client, datacenter, datastore_path, source, size, block_size=BLOCK_SIZE, timeout=60):
    """Stream ``size`` bytes of ``source`` (a file-like with read(), or an iterable of bytes) to a datastore file.

    The file is created or replaced. Returns (size, sha256 hex digest) of what was sent.
    """
    if size is None or int(size) < 0:
        raise InvalidArgumentError("upload of datastore file %s needs the size of its source" % datastore_path)
    body = _Body(source, int(size), block_size, datastore_path)
    request = _Request(client, datacenter, datastore_path, "upload", timeout)
    try:
        response = request.send("PUT", body=iter(body), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(body.size)})
        response.read()
    except (OSError, HTTPException) as error:
        raise request.connection_error(error)
    finally:
        request.close()
    return body.sent, body.digest.hexdigest()
