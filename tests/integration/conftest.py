"""Session fixtures: one simulator and one encrypted estate per test run.

Building the estate mutates the simulator, so tests that need a pristine
inventory should start their own `Vcsim` instead of using `vcsim`.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from estate import build_estate, estate_groups, estate_logins  # noqa: E402
from vcsim import Vcsim  # noqa: E402


@pytest.fixture(scope="session")
def vcsim():
    """A small simulator: 1 datacenter, 1 cluster of 2 hosts, 2 VMs, 1 datastore.

    The estate's principals and accounts can log in too, and belong to the
    estate's groups (see estate.PRINCIPALS, estate.ACCOUNTS, estate.GROUPS).
    """
    simulator = Vcsim(logins=estate_logins(), groups=estate_groups())
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="session")
def vcsim_si(vcsim):
    """An administrator pyVmomi ServiceInstance on the session simulator."""
    with vcsim.session() as si:
        yield si


@pytest.fixture(scope="session")
def estate(vcsim, vcsim_si):
    """The dict build_estate() returned: what exists in the session simulator."""
    return build_estate(vcsim_si)
