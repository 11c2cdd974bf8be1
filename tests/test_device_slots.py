"""Device work is serialised per machine by kernel locks: a holder that is killed frees its slot at once."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from augment.device_slots import device_slot
from augment.errors import ConfigError

HOLD = """
import sys, time
from augment.device_slots import device_slot
with device_slot("augment-test"):
    print("held", flush=True)
    time.sleep(600)
"""


@contextmanager
def held_in_another_process():
    """A process that holds one slot until it is killed (at the latest when the block ends)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD], env={**os.environ}, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_frees_the_slot_and_the_waiter_was_told_who_held_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGMENT_LOCK_DIR", str(tmp_path))
    told = []
    with held_in_another_process() as holder:
        def kill_the_holder(holders: str) -> None:
            told.append(holders)
            os.kill(holder.pid, signal.SIGKILL)  # no cleanup runs: the kernel releases the lock

        start = time.monotonic()
        with device_slot("augment-test", on_wait=kill_the_holder, poll=0.05) as slot:
            assert slot == 0
        assert time.monotonic() - start < 30
        assert told == [f"pid {holder.pid}"]


def test_two_slots_let_two_hold_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGMENT_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("AUGMENT_DEVICE_SLOTS", "2")
    with held_in_another_process():
        with device_slot("augment-test", on_wait=lambda h: pytest.fail(f"waited on {h}")) as slot:
            assert slot == 1


def test_a_bad_slot_count_is_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGMENT_LOCK_DIR", str(tmp_path))
    monkeypatch.setenv("AUGMENT_DEVICE_SLOTS", "zero")
    with pytest.raises(ConfigError, match="AUGMENT_DEVICE_SLOTS='zero'"):
        with device_slot("augment-test"):
            pass
