"""Fixtures: small, fast repositories."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

from .helpers import CHUNK, FAST_SCRYPT, PASSWORD


@pytest.fixture
def credential():
    return Credential.from_password(PASSWORD)


@pytest.fixture
def repo_path(tmp_path):
    return str(tmp_path / "repo")


@pytest.fixture
def repo(repo_path, credential):
    return Repository.create(repo_path, credential, chunk_size=CHUNK, scrypt_params=FAST_SCRYPT)
