"""Connection settings for playbooks, passed the way AWX passes credentials: environment variables."""


def vmware_env(vcsim, password=None, port=None, validate_certs=False):
    return {
        "VMWARE_HOST": vcsim.host,
        "VMWARE_PORT": str(port or vcsim.port),
        "VMWARE_USER": vcsim.username,
        "VMWARE_PASSWORD": password if password is not None else vcsim.password,
        "VMWARE_VALIDATE_CERTS": "true" if validate_certs else "false",
    }
