"""open_repository: the module options that reach the opened repository."""
import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue.repository_params import open_repository
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository import flush
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.keys import Credential
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.repository import Repository

PASSWORD = "correct horse battery staple"


@pytest.fixture
def location(tmp_path):
    path = str(tmp_path / "repo")
    Repository.create(path, Credential.from_password(PASSWORD), scrypt_params={"n": 1024, "r": 8, "p": 1})
    return path


def _params(location, **more):
    params = {"repository": location, "repository_password": PASSWORD, "repository_key_file": None}
    params.update(more)
    return params


@pytest.mark.parametrize("level", [flush.FILE, flush.FILESYSTEM])
def test_repository_sync_sets_how_its_writers_flush(location, level):
    assert open_repository(_params(location, repository_sync=level)).sync_level == level


def test_without_repository_sync_writers_flush_the_file_system_once(location):
    assert open_repository(_params(location)).sync_level == flush.FILESYSTEM


def test_an_unknown_repository_sync_is_refused(location):
    with pytest.raises(InvalidArgumentError, match="sync level"):
        open_repository(_params(location, repository_sync="none"))
