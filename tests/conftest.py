import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def prevent_leaking_rng():
    """Each test starts and leaves torch/numpy/python RNGs as it found them (torchvision's idea)."""
    torch_state = torch.get_rng_state()
    np_state = np.random.get_state()
    py_state = random.getstate()
    threads = torch.get_num_threads()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)
    random.setstate(py_state)
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """A finished run (tiny GAN, every needed candidate kept) over cat: 6, dog: 3 images; read-only."""
    from makers import KEEP_ALL, make_image_folder, tiny_config

    from augment.pipeline import run_pipeline

    tmp = tmp_path_factory.mktemp("finished_run")
    folder = make_image_folder(tmp / "ds", {"cat": 6, "dog": 3}, size=8)
    run_pipeline(str(folder), tiny_config(*KEEP_ALL), tmp / "out")
    return tmp / "out"
