"""Connection failures map to typed one-line errors that never carry the password."""
import socket
import ssl

import pytest
from pyVmomi import vim, vmodl

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AuthenticationError,
    InvalidArgumentError,
    VsphereConnectionError,
)
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere import connection

PASSWORD = "S3cret-Pa55"


def connect_raising(monkeypatch, error):
    def smart_connect(**kwargs):
        assert kwargs["pwd"] == PASSWORD
        raise error
    monkeypatch.setattr(connection, "SmartConnect", smart_connect)
    with pytest.raises(Exception) as raised:
        connection.VsphereClient("vc.example.test", "backup@vsphere.local", PASSWORD, port=8443)
    assert PASSWORD not in str(raised.value)
    assert "\n" not in str(raised.value)
    return raised.value


@pytest.mark.parametrize("error,kind,message", [
    (vim.fault.InvalidLogin(), AuthenticationError,
     "vCenter vc.example.test:8443 refused the login of user 'backup@vsphere.local': wrong user name or password"),
    (socket.gaierror(-2, "Name or service not known"), VsphereConnectionError,
     "cannot resolve vCenter host name 'vc.example.test'"),
    (ConnectionRefusedError(111, "Connection refused"), VsphereConnectionError,
     "vCenter vc.example.test:8443 refused the connection: is it running, is the port right?"),
    (socket.timeout("timed out"), VsphereConnectionError,
     "no answer from vCenter vc.example.test:8443 within 60 seconds"),
    (OSError(113, "No route to host"), VsphereConnectionError,
     "cannot reach vCenter vc.example.test:8443: No route to host"),
    (vim.fault.NoPermission(msg="Permission to perform this operation was denied."), VsphereConnectionError,
     "vCenter vc.example.test:8443 refused the session: Permission to perform this operation was denied."),
])
def test_failures_are_typed_and_readable(monkeypatch, error, kind, message):
    failure = connect_raising(monkeypatch, error)
    assert isinstance(failure, kind) and type(failure).__name__ == kind.__name__
    assert str(failure) == message


def test_certificate_failure_says_what_to_do(monkeypatch):
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "self-signed certificate"
    failure = connect_raising(monkeypatch, error)
    assert str(failure) == ("TLS certificate of vCenter vc.example.test:8443 is not trusted (self-signed certificate); "
                            "install its CA certificate or set validate_certs: false in a lab")


def test_library_echo_of_the_password_is_masked(monkeypatch):
    failure = connect_raising(monkeypatch, Exception("bad request for user with pwd %s\nsecond line" % PASSWORD))
    assert str(failure) == ("vCenter vc.example.test:8443 did not answer as a vSphere API endpoint: "
                            "bad request for user with pwd ********")


def test_fault_text_echoing_the_password_is_masked(monkeypatch):
    failure = connect_raising(monkeypatch, vmodl.fault.InvalidArgument(msg="invalid pwd %s" % PASSWORD))
    assert str(failure) == "vCenter vc.example.test:8443 refused the session: invalid pwd ********"


@pytest.mark.parametrize("hostname,username,password,message", [
    (None, "u", "p", "hostname is required (option hostname or VMWARE_HOST)"),
    ("vc", None, "p", "username and password are required (options username/password or VMWARE_USER/VMWARE_PASSWORD)"),
    ("vc", "u", None, "username and password are required (options username/password or VMWARE_USER/VMWARE_PASSWORD)"),
])
def test_missing_settings(hostname, username, password, message):
    with pytest.raises(InvalidArgumentError) as raised:
        connection.VsphereClient(hostname, username, password)
    assert str(raised.value) == message


def test_tls_verification_is_on_by_default(monkeypatch):
    seen = {}

    def smart_connect(**kwargs):
        seen.update(kwargs)
        raise vim.fault.InvalidLogin()
    monkeypatch.setattr(connection, "SmartConnect", smart_connect)
    with pytest.raises(AuthenticationError):
        connection.VsphereClient("vc", "u", "p")
    assert seen["sslContext"].verify_mode == ssl.CERT_REQUIRED
    assert seen["sslContext"].check_hostname is True
