import subprocess
import sys

import pytest
import torch
from makers import bars, tiny_config

import augment.device
from augment.config import TrainConfig
from augment.data import LabeledImages
from augment.device import prepare_device
from augment.train import train

STEPS = """
import resource, sys, torch
from augment.cpu_memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
net = torch.nn.Sequential(torch.nn.Upsample(scale_factor=2), torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU())
x = torch.randn(32, 32, 64, 64)  # 16 MiB in, 64 MiB after the upsample: above glibc's mmap threshold
for i in range(6):
    if i == 2:  # after two warm-up steps
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    net(x).sum().backward()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_four_steps(mode: str) -> int:
    """In a fresh process, since the malloc setting is process-wide and cannot be undone."""
    out = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_kept_memory_spares_each_training_step_its_page_faults():
    kept, default = page_faults_of_four_steps("keep"), page_faults_of_four_steps("default")
    assert kept * 5 < default  # measured here: 16,384 vs 524,320


def test_training_leaves_malloc_alone_when_told(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(augment.device, "keep_freed_memory", lambda: calls.append(1))
    x = torch.stack([torch.from_numpy(bars(i % 2, 8, seed=i)) for i in range(8)])[:, None]
    data = LabeledImages(x, torch.tensor([i % 2 for i in range(8)]), ["h", "v"], [f"b{i}" for i in range(8)])
    train(data, tiny_config("train.steps=1", "train.keep_cpu_memory=false"), tmp_path / "off")
    assert calls == []
    train(data, tiny_config("train.steps=1"), tmp_path / "on")
    assert calls == [1]


def test_every_cpu_stage_gets_the_setting_through_its_device(monkeypatch):
    calls = []
    monkeypatch.setattr(augment.device, "keep_freed_memory", lambda: calls.append(1))
    assert prepare_device(TrainConfig(device="cpu", keep_cpu_memory=False)) == torch.device("cpu")
    assert calls == []
    assert prepare_device(TrainConfig(device="cpu")) == torch.device("cpu")
    assert calls == [1]
