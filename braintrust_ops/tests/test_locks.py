import threading

import pytest
from django.db import connection

from braintrust_ops.exceptions import CommandLocked
from braintrust_ops.locks import command_lock


def _try_lock_in_another_thread(name: str) -> str:
    outcome = {}

    def attempt():
        try:
            with command_lock(name):
                outcome["result"] = "acquired"
        except CommandLocked as exc:
            outcome["result"] = str(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(timeout=30)
    return outcome["result"]


@pytest.mark.django_db(transaction=True)
def test_second_run_is_refused_while_the_first_holds_the_lock():
    with command_lock("tag_logs"):
        message = _try_lock_in_another_thread("tag_logs")
    assert "Another tag_logs run is in progress" in message


@pytest.mark.django_db(transaction=True)
def test_lock_is_free_again_after_the_first_run_ends():
    with command_lock("tag_logs"):
        pass
    assert _try_lock_in_another_thread("tag_logs") == "acquired"


@pytest.mark.django_db(transaction=True)
def test_different_commands_do_not_block_each_other():
    with command_lock("tag_logs"):
        assert _try_lock_in_another_thread("push_to_datasets") == "acquired"


@pytest.mark.django_db(transaction=True)
def test_lock_is_released_when_the_block_raises():
    with pytest.raises(RuntimeError):
        with command_lock("tag_logs"):
            raise RuntimeError("crash inside the run")
    assert _try_lock_in_another_thread("tag_logs") == "acquired"


def test_file_lock_used_on_sqlite_refuses_a_second_holder_and_frees_on_exit(tmp_path):
    # Called directly so it is exercised on PostgreSQL runs too, where command_lock uses the advisory lock.
    from braintrust_ops.locks import _file_lock

    path = tmp_path / "tag_logs.lock"
    with _file_lock(path, "Another tag_logs run is in progress"):
        with pytest.raises(CommandLocked, match="Another tag_logs run is in progress"):
            with _file_lock(path, "Another tag_logs run is in progress"):
                pass
    with _file_lock(path, "Another tag_logs run is in progress"):
        assert oct(path.stat().st_mode & 0o777) == "0o600"
