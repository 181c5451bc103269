"""Stopping a run: the first signal while draining only stops dispatching, a second one stops at once."""

import signal
import threading

import pytest

from braintrust_ops.stopping import Interrupted, StopRequest, stop_on_signals


def test_outside_a_draining_phase_a_signal_interrupts_at_once_with_its_exit_code():
    stop = StopRequest()
    with pytest.raises(Interrupted) as raised:
        stop.request(signal.SIGTERM)
    assert raised.value.exit_code == 143 and stop.is_set()


def test_while_draining_the_first_signal_sets_the_event_and_a_second_one_interrupts_at_once():
    stop = StopRequest()
    with pytest.raises(Interrupted, match="stopped at once"):
        with stop.draining():
            stop.request(signal.SIGINT)
            assert stop.is_set() and stop.interrupted().exit_code == 130
            stop.request(signal.SIGINT)


def test_away_from_the_main_thread_no_handler_is_installed_and_nothing_breaks():
    outcome = {}

    def run():
        with stop_on_signals() as stop:
            outcome["handler"] = signal.getsignal(signal.SIGTERM)
            outcome["set"] = stop.is_set()

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert outcome == {"handler": before, "set": False}
