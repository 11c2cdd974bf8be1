import torch

from augment.config import TrainConfig
from augment.device import ALL_CORES, prepare_device, thread_count


def test_auto_threads_leave_one_core_to_the_rest_of_the_machine():
    assert thread_count("auto") == max(1, ALL_CORES - 1)
    assert thread_count(0) == ALL_CORES
    assert thread_count(3) == 3


def test_preparing_the_device_applies_the_thread_setting():
    prepare_device(TrainConfig(device="cpu", threads=1))
    assert torch.get_num_threads() == 1
    prepare_device(TrainConfig(device="cpu", threads=0))
    assert torch.get_num_threads() == ALL_CORES
