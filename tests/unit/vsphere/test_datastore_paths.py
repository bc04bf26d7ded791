"""Datastore paths, /folder URLs and HTTP status mapping of datastore_files (no server)."""
import io
import types

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    VsphereFaultError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import datastore_files
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.datastore_files import (
    folder_url,
    parse_datastore_path,
    status_error,
)


@pytest.mark.parametrize("path, expected", [
    ("[ds1] app01/app01.nvram", ("ds1", "app01/app01.nvram")),
    ("[Local DS (2)] app 01/app 01.nvram", ("Local DS (2)", "app 01/app 01.nvram")),
    ("[ds1]app01.nvram", ("ds1", "app01.nvram")),
    ("[vsanDatastore] 5c1a-uuid/vm.nvram", ("vsanDatastore", "5c1a-uuid/vm.nvram")),
])
def test_parse_datastore_path(path, expected):
    assert parse_datastore_path(path) == expected


@pytest.mark.parametrize("path", ["app01/app01.nvram", "[] app01.nvram", "[ds1]", "[ds1] app01/", "",
                                  None, "[ds1] ../other/x.nvram"])
def test_a_path_naming_no_file_is_refused(path):
    with pytest.raises(InvalidArgumentError):
        parse_datastore_path(path)


def test_folder_url_quotes_path_datacenter_and_datastore():
    assert folder_url("DC 0", "[Local DS] app 01/app#01.nvram") == \
        "/folder/app%2001/app%2301.nvram?dcPath=DC+0&dsName=Local+DS"
    assert folder_url("folder/DC1", "[ds1] a/b.nvram") == "/folder/a/b.nvram?dcPath=folder%2FDC1&dsName=ds1"
    with pytest.raises(InvalidArgumentError):
        folder_url("", "[ds1] a/b.nvram")


@pytest.mark.parametrize("status, error_type", [
    (404, NotFoundError), (401, PermissionDeniedError), (403, PermissionDeniedError),
    (500, VsphereFaultError), (400, VsphereFaultError)])
def test_status_errors(status, error_type):
    error = status_error(status, "Reason", "download", "[ds1] a/b.nvram", "DC0")
    assert isinstance(error, error_type) and error.__class__.__name__ == error_type.__name__
    assert "[ds1] a/b.nvram" in str(error) and "\n" not in str(error)


def test_success_is_no_error():
    assert status_error(200, "OK", "download", "[ds1] a", "DC0") is None
    assert status_error(201, "Created", "upload", "[ds1] a", "DC0") is None


class RecordingConnection:
    """Stands in for HTTPSConnection: records the request, answers with a status."""
    instances = []

    def __init__(self, host, port, timeout, context, blocksize):
        self.address = (host, port)
        self.context = context
        self.sent = None
        RecordingConnection.instances.append(self)

    def request(self, method, target, body=None, headers=None):
        self.sent = (method, target, b"".join(body) if body is not None else None, headers)

    def getresponse(self):
        return types.SimpleNamespace(status=201, reason="Created", read=lambda *a: b"", close=lambda: None,
                                     getheader=lambda name: None)

    def close(self):
        pass


def test_upload_sends_the_session_cookie_and_the_exact_length(monkeypatch):
    monkeypatch.setattr(datastore_files, "HTTPSConnection", RecordingConnection)
    context = object()
    client = types.SimpleNamespace(hostname="vc.example", port=443, ssl_context=context, session_cookie="52abc")
    result = datastore_files.upload(client, "DC0", "[ds1] vm/vm.nvram", io.BytesIO(b"x" * 10), 10, block_size=3)
    connection = RecordingConnection.instances[-1]
    method, target, body, headers = connection.sent
    assert (method, target, body) == ("PUT", "/folder/vm/vm.nvram?dcPath=DC0&dsName=ds1", b"x" * 10)
    assert headers["Cookie"] == 'vmware_soap_session="52abc"'
    assert headers["Content-Length"] == "10"
    assert connection.address == ("vc.example", 443) and connection.context is context
    assert result[0] == 10


def test_a_longer_source_than_its_size_is_refused(monkeypatch):
    monkeypatch.setattr(datastore_files, "HTTPSConnection", RecordingConnection)
    client = types.SimpleNamespace(hostname="vc", port=443, ssl_context=None, session_cookie="c")
    with pytest.raises(InvalidArgumentError) as raised:
        datastore_files.upload(client, "DC0", "[ds1] vm/vm.nvram", io.BytesIO(b"0123456789"), 4)
    assert str(raised.value) == "upload of datastore file [ds1] vm/vm.nvram: the source holds more than 4 bytes"
