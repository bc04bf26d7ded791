"""VixError -> VddkError: VDDK's text (freed after), the code, a hint, no secrets."""
import ctypes

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import VmcryptError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk import library, loader
from ansible_collections.vmcrypt.backup.plugins.module_utils.vddk.errors import VddkError, VddkNotInstalledError


class FakeFunction(object):
    __name__ = "VixDiskLib_Open"


class TextApi(loader.VddkApi):
    """A VddkApi whose GetErrorText/FreeErrorText are Python stand-ins."""

    def __init__(self, texts):
        # pylint: disable=super-init-not-called
        self.texts = texts
        self.buffers = {}
        self.freed = []
        self.path = "/opt/vddk/lib64/libvixDiskLib.so.8"

    def VixDiskLib_GetErrorText(self, raw, locale):  # noqa: N802 (the C name)
        assert locale is None
        buffer = ctypes.create_string_buffer(self.texts[raw & 0xFFFF].encode())
        self.buffers[ctypes.addressof(buffer)] = buffer
        return ctypes.addressof(buffer)

    def VixDiskLib_FreeErrorText(self, pointer):  # noqa: N802
        self.freed.append(pointer)


def test_errcheck_maps_code_and_text_and_frees_the_text():
    api = TextApi({4: "The system cannot find the file specified"})
    with pytest.raises(VddkError) as caught:
        api._errcheck(4, FakeFunction(), ())
    error = caught.value
    assert (error.code, error.raw, error.function) == (4, 4, "VixDiskLib_Open")
    assert error.text == "The system cannot find the file specified"
    assert str(error) == ("VixDiskLib_Open failed: The system cannot find the file specified (VIX error 4); "
                          "the disk path or its datastore is not visible to this VDDK connection")
    assert api.freed == list(api.buffers)
    assert api._errcheck(0, FakeFunction(), ()) == 0


def test_code_is_the_low_16_bits():
    raw = (0x2A << 32) | 13003
    error = VddkError.from_vix("VixDiskLib_ConnectEx", raw, "The snapshot could not be found")
    assert (error.code, error.raw) == (13003, raw)
    assert "(VIX error 13003)" in str(error)


def test_unknown_code_has_no_hint_and_context_keeps_the_code():
    error = VddkError.from_vix("VixDiskLib_Read", 17004, "Password required", context="reading")
    assert str(error) == "reading: VixDiskLib_Read failed: Password required (VIX error 17004)"
    wrapped = error.in_context("exporting disk 1")
    assert str(wrapped) == "exporting disk 1: " + str(error)
    assert (wrapped.code, wrapped.text, type(wrapped)) == (17004, "Password required", VddkError)


def test_family():
    assert issubclass(VddkError, VmcryptError)
    assert issubclass(VddkNotInstalledError, VddkError)


def test_log_lines_are_redacted():
    library.register_secret("52a3c0de-cookie-value")
    try:
        line = library.redact("ConnectEx with session 52a3c0de-cookie-value, password=hunter2 key: 'abc def'")
    finally:
        library.forget_secret("52a3c0de-cookie-value")
    assert line == "ConnectEx with session ********, password=******** key: ********"
    assert library.redact("52a3c0de-cookie-value") == "52a3c0de-cookie-value"  # forgotten
