"""Start and stop the vCenter simulator built by `make vcsim`.

The launcher (tests/vcsim) prints one JSON line when it listens; this class
reads it and exposes the connection facts. It builds nothing itself.
"""
import contextlib
import json
import os
import selectors
import subprocess
import tempfile
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO_ROOT, "tests", "vcsim", "bin", "vcsim-launcher")


class VcsimError(RuntimeError):
    pass


class Vcsim(object):
    """One simulator process.

    Sizing keywords map to launcher flags: datacenters (-dc), clusters
    (-cluster, per datacenter), hosts_per_cluster (-host), standalone_hosts
    (-standalone-host), vms_per_pool (-vm), pools (-pool), datastores (-ds),
    autostart (-autostart). `logins` maps extra user names to passwords;
    `groups` maps directory groups ("VSPHERE.LOCAL\\ops") to their members' logins.
    """

    def __init__(self, datacenters=1, clusters=1, hosts_per_cluster=2, standalone_hosts=0,
                 vms_per_pool=2, pools=0, datastores=1, autostart=False, logins=None, groups=None,
                 datastore_dir=None, launcher=LAUNCHER, start_timeout=60.0, trace=False):
        self.launcher = launcher
        self.start_timeout = start_timeout
        self.flags = [
            "-dc", str(datacenters),
            "-cluster", str(clusters),
            "-host", str(hosts_per_cluster),
            "-standalone-host", str(standalone_hosts),
            "-vm", str(vms_per_pool),
            "-pool", str(pools),
            "-ds", str(datastores),
            "-autostart=%s" % ("true" if autostart else "false"),
        ]
        for user, password in sorted((logins or {}).items()):
            self.flags += ["-login", "%s=%s" % (user, password)]
        for group, members in sorted((groups or {}).items()):
            self.flags += ["-group", "%s=%s" % (group, ",".join(members))]
        if trace:
            self.flags.append("-trace")
        self._own_datastore_dir = datastore_dir is None
        self.datastore_dir = datastore_dir or tempfile.mkdtemp(prefix="vcsim-ds-")
        self.flags += ["-datastore-dir", self.datastore_dir]
        self.process = None
        self.info = None
        self._stderr = None

    # Connection facts, valid after start().
    @property
    def url(self):
        return self.info["url"]

    @property
    def host(self):
        return self.info["host"]

    @property
    def port(self):
        return self.info["port"]

    @property
    def username(self):
        return self.info["username"]

    @property
    def password(self):
        return self.info["password"]

    @property
    def thumbprint(self):
        return self.info["thumbprint"]

    @property
    def cert_file(self):
        return self.info["cert_file"]

    @property
    def datastores(self):
        """Datastore name -> local folder holding that datastore's files."""
        return self.info["datastores"]

    @property
    def home(self):
        return self.info["home"]

    def start(self):
        if not os.access(self.launcher, os.X_OK):
            raise VcsimError("%s is missing: run `make vcsim`" % self.launcher)
        # stderr goes to a file: a pipe nobody reads could fill and block it.
        self._stderr = tempfile.TemporaryFile(prefix="vcsim-stderr-")
        # stdin stays an open pipe: the launcher exits when it closes, which
        # also happens if this Python process dies.
        self.process = subprocess.Popen(
            [self.launcher] + self.flags,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
        )
        line = self._read_ready_line()
        try:
            self.info = json.loads(line)
        except ValueError:
            self.stop()
            raise VcsimError("vcsim-launcher printed no JSON: %r" % line)
        return self

    def _read_ready_line(self):
        deadline = time.monotonic() + self.start_timeout
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        buffered = b""
        try:
            while b"\n" not in buffered:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stop()
                    raise VcsimError("vcsim-launcher not ready after %.0fs: %s"
                                     % (self.start_timeout, self.stderr_text()))
                if not selector.select(timeout=remaining):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    code = self.process.wait()
                    raise VcsimError("vcsim-launcher exited with %s before it was ready: %s"
                                     % (code, self.stderr_text()))
                buffered += chunk
        finally:
            selector.close()
        return buffered.split(b"\n", 1)[0].decode("utf-8")

    def stderr_text(self):
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")[-4000:]

    def stop(self, timeout=10.0):
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            try:
                process.stdin.close()  # the launcher's polite exit signal
            except OSError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if process is not None:
            for stream in (process.stdin, process.stdout):
                if stream is not None and not stream.closed:
                    stream.close()
        if self._own_datastore_dir and os.path.isdir(self.datastore_dir):
            # The launcher removes its own home; this is only the parent.
            try:
                os.rmdir(self.datastore_dir)
            except OSError:
                pass

    def connect(self, user=None, password=None):
        """A pyVmomi ServiceInstance for this simulator (no TLS verification)."""
        from pyVim.connect import SmartConnect  # imported late: only tests need pyVmomi
        return SmartConnect(host=self.host, port=self.port,
                            user=user or self.username, pwd=password or self.password,
                            disableSslCertValidation=True)

    @contextlib.contextmanager
    def session(self, user=None, password=None):
        """connect(), logged out again when the block ends."""
        from pyVim.connect import Disconnect
        si = self.connect(user, password)
        try:
            yield si
        finally:
            Disconnect(si)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
