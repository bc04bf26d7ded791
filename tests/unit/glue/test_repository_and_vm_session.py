"""repository_and_vm_session: the key is derived during the login, and the repository's error comes first."""
import contextlib
import threading

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.glue import params as glue_params
from ansible_collections.vmcrypt.backup.plugins.module_utils.glue import repository_params
from ansible_collections.vmcrypt.backup.plugins.module_utils.repository.errors import WrongKeyError


class LoginRefused(Exception):
    pass


def _patch(monkeypatch, open_repository, login):
    monkeypatch.setattr(repository_params, "open_repository", open_repository)

    @contextlib.contextmanager
    def vm_session(params):
        login()
        yield "client", "finder", "vm-1"
    monkeypatch.setattr(glue_params, "vm_session", vm_session)


def _overlapping():
    """(open_repository, login) that each wait for the other to have started: they pass only when run at once."""
    deriving, logging_in = threading.Event(), threading.Event()

    def open_repository(params):
        deriving.set()
        assert logging_in.wait(5), "the login did not start while the key was being derived"
        return "repository"

    def login():
        logging_in.set()
        assert deriving.wait(5)
    return open_repository, login


def _wrong_password(params):
    raise WrongKeyError("no key slot of the repository opens with the password given")


def _refused_login():
    raise LoginRefused("Cannot complete login due to an incorrect user name or password.")


def test_the_key_is_derived_while_the_session_logs_in(monkeypatch):
    _patch(monkeypatch, *_overlapping())
    with glue_params.repository_and_vm_session({}) as opened:
        assert opened == ("repository", "client", "finder", "vm-1")


def test_a_wrong_repository_password_wins_over_a_refused_login(monkeypatch):
    _patch(monkeypatch, _wrong_password, _refused_login)
    with pytest.raises(WrongKeyError):
        with glue_params.repository_and_vm_session({}):
            pass


def test_a_wrong_repository_password_stops_before_the_block_runs(monkeypatch):
    _patch(monkeypatch, _wrong_password, lambda: None)
    ran = []
    with pytest.raises(WrongKeyError):
        with glue_params.repository_and_vm_session({}):
            ran.append(True)
    assert ran == []


def test_a_refused_login_is_reported_when_the_repository_opened(monkeypatch):
    _patch(monkeypatch, lambda params: "repository", _refused_login)
    with pytest.raises(LoginRefused):
        with glue_params.repository_and_vm_session({}):
            pass


def test_an_error_of_the_block_itself_is_not_masked(monkeypatch):
    _patch(monkeypatch, lambda params: "repository", lambda: None)
    with pytest.raises(KeyError):
        with glue_params.repository_and_vm_session({}):
            raise KeyError("snapshot")


class FakeClient:
    def __init__(self, login):
        self.login = login

    def __enter__(self):
        self.login()
        return "client"

    def __exit__(self, *exc_info):
        return False


def test_repository_and_client_derives_the_key_during_the_login_and_its_error_wins(monkeypatch):
    def patch(open_repository, login):
        monkeypatch.setattr(repository_params, "open_repository", open_repository)
        monkeypatch.setattr(glue_params, "client_from_params", lambda params: FakeClient(login))

    patch(*_overlapping())
    with glue_params.repository_and_client({}) as opened:
        assert opened == ("repository", "client")
    patch(_wrong_password, _refused_login)
    with pytest.raises(WrongKeyError):
        with glue_params.repository_and_client({}):
            pass


def test_wait_false_yields_the_future_and_the_job_waits_for_it_at_its_first_use(monkeypatch):
    from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.transfer_job import TransferJob

    released = threading.Event()

    def open_repository(params):
        assert released.wait(5)
        return "repository"
    _patch(monkeypatch, open_repository, lambda: None)
    with glue_params.repository_and_vm_session({}, wait=False) as (opening, client, finder, vm):
        job = TransferJob(client, finder, opening, vm, options=None)
        assert not opening.done()  # the session and the job's first reads go on while the key is derived
        released.set()
        assert job.repository == "repository" and job.repository == "repository"


def test_a_job_meets_a_wrong_password_at_its_first_use_of_the_repository(monkeypatch):
    from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.transfer_job import TransferJob

    _patch(monkeypatch, _wrong_password, lambda: None)
    with pytest.raises(WrongKeyError):
        with glue_params.repository_and_vm_session({}, wait=False) as (opening, client, finder, vm):
            TransferJob(client, finder, opening, vm, options=None).repository


def test_a_wrong_password_wins_over_a_refused_login_without_waiting_too(monkeypatch):
    _patch(monkeypatch, _wrong_password, _refused_login)
    with pytest.raises(WrongKeyError):
        with glue_params.repository_and_vm_session({}, wait=False):
            pass
