"""Where the benchmarks find ../shared/datasets/mnist.npz; AUGMENT_MNIST points elsewhere (e.g. on a
lent GPU machine, where ../shared is not beside the checkout)."""

import os
from pathlib import Path

MNIST = Path(os.environ.get("AUGMENT_MNIST", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist.npz"))
