# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A logged-in vCenter session that knows nothing of Ansible.

Connection failures become typed errors with one-line messages; the password
is never part of a message, even when a library echoes its input.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import socket
import ssl

try:
    from pyVim.connect import SmartConnect, Disconnect
    from pyVmomi import vim, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import (
    AuthenticationError,
    InvalidArgumentError,
    VsphereConnectionError,
)

DEFAULT_PORT = 443


def _tls_context(validate_certs):
    if validate_certs:
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class VsphereClient:
    """One vCenter session: service content, its TLS context and its cookie.

    Use as a context manager so the session is logged out when work ends,
    whatever happened.
    """

    def __init__(self, hostname, username, password, port=DEFAULT_PORT, validate_certs=True,
                 timeout=60):
        if not hostname:
            raise InvalidArgumentError("hostname is required (option hostname or VMWARE_HOST)")
        if not username or password is None:
            raise InvalidArgumentError(
                "username and password are required (options username/password or VMWARE_USER/VMWARE_PASSWORD)")
        self.hostname = hostname
        self.port = int(port)
        self.validate_certs = validate_certs
        self.ssl_context = _tls_context(validate_certs)
        self.service_instance = self._login(username, password, timeout)
        self.content = self.service_instance.RetrieveContent()
        self._pbm = None

    def _login(self, username, password, timeout):
        where = "%s:%d" % (self.hostname, self.port)
        try:
            return SmartConnect(host=self.hostname, port=self.port, user=username, pwd=password,
                                sslContext=self.ssl_context, httpConnectionTimeout=timeout)
        except vim.fault.InvalidLogin:
            raise AuthenticationError("vCenter %s refused the login of user '%s': wrong user name or password"
                                      % (where, username))
        except ssl.SSLCertVerificationError as error:
            raise VsphereConnectionError(
                "TLS certificate of vCenter %s is not trusted (%s); install its CA certificate "
                "or set validate_certs: false in a lab" % (where, error.verify_message))
        except ssl.SSLError as error:
            raise VsphereConnectionError("TLS handshake with vCenter %s failed: %s" % (where, error.reason))
        except socket.gaierror:
            raise VsphereConnectionError("cannot resolve vCenter host name '%s'" % self.hostname)
        except ConnectionRefusedError:
            raise VsphereConnectionError("vCenter %s refused the connection: is it running, is the port right?" % where)
        except (socket.timeout, TimeoutError):
            raise VsphereConnectionError("no answer from vCenter %s within %d seconds" % (where, timeout))
        except OSError as error:
            raise VsphereConnectionError("cannot reach vCenter %s: %s" % (where, error.strerror or error))
        except vmodl.MethodFault as fault:
            raise VsphereConnectionError("vCenter %s refused the session: %s"
                                         % (where, _without(fault.msg or type(fault).__name__, password)))
        except Exception as error:  # pyVmomi raises bare Exceptions for non-vSphere endpoints
            raise VsphereConnectionError("vCenter %s did not answer as a vSphere API endpoint: %s"
                                         % (where, _without(str(error).splitlines()[0] if str(error) else
                                                            type(error).__name__, password)))

    @property
    def stub(self):
        return self.service_instance._stub

    @property
    def session_cookie(self):
        """The value of vmware_soap_session, which PBM and file transfer reuse."""
        cookie = self.stub.cookie or ""
        if '"' in cookie:
            return cookie.split('"')[1]
        return cookie.split("=", 1)[-1].split(";")[0]

    def pbm(self):
        """The storage policy client on this session (built on first use)."""
        if self._pbm is None:
            from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.pbm import PbmClient
            self._pbm = PbmClient(self)
        return self._pbm

    def server_thumbprint(self):
        """SHA-1 thumbprint of vCenter's certificate, as VDDK's ConnectEx expects it."""
        der = ssl.PEM_cert_to_DER_cert(ssl.get_server_certificate((self.hostname, self.port)))
        digest = hashlib.sha1(der).hexdigest().upper()
        return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))

    def close(self):
        if self.service_instance is not None:
            try:
                Disconnect(self.service_instance)
            except Exception:  # logging out of a dead session must not hide the real error
                pass
            self.service_instance = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


def _without(text, secret):
    if secret:
        return text.replace(secret, "********")
    return text
