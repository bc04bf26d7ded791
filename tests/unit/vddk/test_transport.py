"""The guide's transport rules, applied before a VDDK connection is made."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkTransportRefusedError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.transport import allowed_modes


def test_encrypted_vm_keeps_nbdssl_and_hotadd_from_an_encrypted_proxy():
    assert allowed_modes("hotadd:nbdssl", True, True) == (["hotadd", "nbdssl"], [])


def test_encrypted_vm_drops_san_nbd_and_plain_proxy_hotadd():
    allowed, reasons = allowed_modes(["san", "hotadd", "nbd", "nbdssl"], True, False)
    assert allowed == ["nbdssl"]
    assert reasons == [
        "san refused: san is not supported for encrypted disks; use nbdssl or hotadd",
        "hotadd refused: hotadd of encrypted disks needs an encrypted proxy VM; the proxy VM is not encrypted",
        "nbd refused: nbd would send the decrypted disk data over the network in clear; use nbdssl",
    ]


def test_only_san_for_an_encrypted_vm_is_refused():
    with pytest.raises(VddkTransportRefusedError) as caught:
        allowed_modes(["san"], True, None)
    assert str(caught.value) == ("no requested VDDK transport is allowed: san refused: san is not supported "
                                 "for encrypted disks; use nbdssl or hotadd")


def test_plain_vm_may_use_san_and_nbd_but_hotadd_needs_a_proxy():
    allowed, reasons = allowed_modes(["san", "hotadd", "nbd"], False, None)
    assert allowed == ["san", "nbd"]
    assert reasons == ["hotadd refused: hotadd needs a proxy VM (option proxy_vm)"]


def test_file_mode_never_reaches_an_encrypted_disk():
    with pytest.raises(VddkTransportRefusedError):
        allowed_modes(["file"], True, True)


@pytest.mark.parametrize("transports", [[], "", ["nbdssl", "ssh"]])
def test_bad_requests(transports):
    with pytest.raises(InvalidArgumentError):
        allowed_modes(transports, True, True)
