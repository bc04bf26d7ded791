"""Stand-in for ansible-test's pip bootstrap script, for machines that reach only PyPI.

ansible-test creates each sanity virtualenv without pip and runs a get-pip
script downloaded from its own CI host, which this network cannot reach.
This script gives the venv the pip that ships with Python (ensurepip), then
installs what ansible-test asked for from PyPI with it: the same result.

ansible-test also runs pip with a reduced environment, so the machine's CA
bundle (PIP_CERT, SSL_CERT_FILE) is lost; the bundle is written into the
venv's own pip.conf, which every later pip run in that venv reads.
"""
import ensurepip
import os
import subprocess
import sys

# get-pip's own flags; everything else is a pip install argument.
GET_PIP_FLAGS = {"--no-setuptools", "--no-wheel"}
CA_BUNDLE_CANDIDATES = (os.environ.get("PIP_CERT"), os.environ.get("SSL_CERT_FILE"),
                        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def write_venv_pip_conf():
    bundle = next((path for path in CA_BUNDLE_CANDIDATES if path and os.path.isfile(path)), None)
    if bundle:
        with open(os.path.join(sys.prefix, "pip.conf"), "w") as conf:
            conf.write("[global]\ncert = %s\n" % bundle)


arguments = sys.argv[1:]
# ensurepip points PIP_CONFIG_FILE at /dev/null in this process; pip runs later must see pip.conf.
pip_environment = dict(os.environ)
write_venv_pip_conf()
ensurepip.bootstrap(upgrade=True)
status = subprocess.call([sys.executable, "-m", "pip", "install"] + [a for a in arguments if a not in GET_PIP_FLAGS],
                         env=pip_environment)
if status == 0 and "--no-setuptools" in arguments:
    status = subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"],
                             env=pip_environment)
sys.exit(status)
