"""A small, fast repository for the transfer engine tests."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from transfer_helpers import CHUNK, FAST_SCRYPT


@pytest.fixture
def repo(tmp_path):
    return Repository.create(str(tmp_path / "repo"), Credential.from_password("pw"), chunk_size=CHUNK,
                             scrypt_params=FAST_SCRYPT)
