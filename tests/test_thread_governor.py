import time

import pytest
import torch

from augment.thread_governor import ThreadGovernor, allowed_cpus, busy_cpu_seconds, threads_for


class Machine:
    """A 2-core machine on a fake clock: other processes want `others` cores, our `n` threads one each;
    when more is wanted than there is, every runnable thread gets its fair share."""

    def __init__(self, others: float = 0.0):
        self.t, self.busy, self.own, self.others, self.n = 0.0, 0.0, 0.0, others, 1

    def run(self, seconds: float) -> None:
        mine = self.n * min(1.0, 2 / (self.n + self.others))
        self.t += seconds
        self.own += mine * seconds
        self.busy += min(2.0, mine + self.others) * seconds

    def governor(self, threads: int) -> ThreadGovernor:
        self.n = threads
        g = ThreadGovernor(most=2, cores_here=2, read_busy=lambda: self.busy, clock=lambda: self.t,
                           own_cpu=lambda: self.own, set_threads=lambda n: setattr(self, "n", n))
        g.start(threads)
        return g


def steps(machine: Machine, governor: ThreadGovernor, seconds: float, step: float = 0.25) -> None:
    for _ in range(round(seconds / step)):
        machine.run(step)
        governor.tick()


def test_a_core_left_free_is_taken_once_the_machine_stays_quiet():
    m = Machine(others=0.0)
    g = m.governor(threads=1)
    steps(m, g, 2.0)
    assert g.threads == 1  # one quiet window is not yet enough (patience 2)
    steps(m, g, 2.0)
    assert g.threads == 2
    assert g.history == [[0.0, 1], [4.0, 2]]


def test_a_competing_busy_process_takes_a_thread_away_at_the_next_window():
    m = Machine(others=0.0)
    g = m.governor(threads=2)
    steps(m, g, 4.0)
    assert g.threads == 2
    m.others = 1.0  # a `yes > /dev/null` starts
    steps(m, g, 2.0)
    assert g.threads == 1
    steps(m, g, 20.0)
    assert g.threads == 1  # it stays down while the other process runs
    m.others = 0.0
    steps(m, g, 4.0)
    assert g.threads == 2
    assert [n for _, n in g.history] == [2, 1, 2]


def test_light_background_work_does_not_take_a_thread():
    m = Machine(others=0.3)  # e.g. a Prefect server answering the odd API call
    g = m.governor(threads=2)
    steps(m, g, 20.0)
    assert g.history == [[0.0, 2]]


@pytest.mark.parametrize(("free", "most", "want"), [(2.0, 2, 2), (1.6, 2, 2), (1.4, 2, 1), (0.2, 2, 1),
                                                    (15.1, 8, 8), (5.6, 8, 6)])
def test_threads_follow_the_free_cores_rounded_within_one_and_the_most(free, most, want):
    assert threads_for(free, most) == want


def test_no_governor_unless_adaptive_threads_on_a_cpu_with_cores_to_share():
    cpu = torch.device("cpu")
    assert ThreadGovernor.for_training("auto", cpu, most=2) is None  # a fixed count stays repeatable
    assert ThreadGovernor.for_training(0, cpu, most=2) is None
    assert ThreadGovernor.for_training("adaptive", torch.device("cuda"), most=2) is None
    assert ThreadGovernor.for_training("adaptive", cpu, most=1) is None


@pytest.mark.skipif(busy_cpu_seconds(allowed_cpus()) is None, reason="no /proc/stat on this platform")
def test_the_machines_busy_time_grows_by_at_least_what_this_process_spends():
    before, own = busy_cpu_seconds(allowed_cpus()), time.process_time()
    while time.process_time() - own < 0.5:  # half a second of this process's CPU, however busy the machine
        pass
    spent = time.process_time() - own
    assert busy_cpu_seconds(allowed_cpus()) - before >= 0.8 * spent


def test_an_unreadable_load_leaves_the_thread_count_alone(tmp_path):
    assert busy_cpu_seconds({0}, tmp_path / "missing") is None
    readings = iter([1.0, None])
    g = ThreadGovernor(most=2, cores_here=2, read_busy=lambda: next(readings), clock=iter(range(100)).__next__,
                       own_cpu=lambda: 0.0, set_threads=lambda n: pytest.fail("no change expected"))
    g.start(1)
    for _ in range(10):
        g.tick()
    assert g.history == [[0.0, 1]]


def test_a_stage_starts_at_the_cores_the_other_processes_leave():
    def now(others: float) -> int | None:
        m = Machine(others=others)
        return m.governor(threads=1).reading(0.2, sleep=m.run)  # our one thread runs while it reads

    assert now(0.0) == 2  # a quiet machine is used whole from the first step
    assert now(1.0) == 1  # one busy process keeps its core
    unreadable = ThreadGovernor(most=2, cores_here=2, read_busy=lambda: None)
    assert unreadable.reading(0.2, sleep=lambda s: None) is None


def test_the_stages_after_training_follow_the_load_when_threads_are_adaptive(monkeypatch):
    """The judge's, the probe's and CAS's trainings run under the same policy as the GAN's."""
    from augment import device as dev
    from augment.config import build_config

    monkeypatch.setattr(dev, "ALL_CORES", 2)
    monkeypatch.setattr(ThreadGovernor, "reading", lambda self: 2)  # as on a quiet machine
    monkeypatch.setattr("augment.thread_governor.allowed_cpus", lambda: {0, 1})
    monkeypatch.setattr("augment.thread_governor.busy_cpu_seconds", lambda cpus: 1.0)
    before = torch.get_num_threads()
    try:
        dev.prepare_device(build_config(sets=["train.threads=adaptive", "train.device=cpu"]).train)
        assert torch.get_num_threads() == 2
        governor = dev.loop_governor("cpu")
        assert governor is not None and governor.threads == 2
        dev.prepare_device(build_config(sets=["train.threads=auto", "train.device=cpu"]).train)
        assert dev.loop_governor("cpu") is None and torch.get_num_threads() == 1  # fixed: repeatable bit for bit
    finally:
        torch.set_num_threads(before)
