"""Where the benchmarks find ../shared/datasets/mnist.npz; AUGMENT_MNIST points elsewhere (e.g. on a
lent GPU machine, where ../shared is not beside the checkout)."""

import os
from pathlib import Path

MNIST = Path(os.environ.get("AUGMENT_MNIST", Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist.npz"))

# Fashion-MNIST (MIT) as Debian's package dataset-fashion-mnist installs it; AUGMENT_FASHION points elsewhere
# (e.g. a folder where `apt-get download dataset-fashion-mnist && dpkg -x <deb> DIR` put it: DIR/usr/share/...).
FASHION = Path(os.environ.get("AUGMENT_FASHION", "/usr/share/datasets/fashion-mnist"))
FASHION_CLASSES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle-boot")


def fashion_mnist(part: str):
    """(images uint8 N x 28 x 28, labels int64) of Fashion-MNIST's 'train' or 't10k' split, read from its IDX
    files (gzip), writable (torch.from_numpy warns on a read-only buffer); a clear error where the package
    is missing."""
    import gzip

    import numpy as np

    files = [FASHION / f"{part}-images-idx3-ubyte.gz", FASHION / f"{part}-labels-idx1-ubyte.gz"]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise SystemExit(f"Fashion-MNIST not found ({missing}): `apt-get install dataset-fashion-mnist`, or "
                         "`apt-get download dataset-fashion-mnist && dpkg -x dataset-fashion-mnist_*.deb DIR` and "
                         "AUGMENT_FASHION=DIR/usr/share/datasets/fashion-mnist")
    with gzip.open(files[0]) as fh:
        x = np.frombuffer(fh.read(), np.uint8, offset=16).reshape(-1, 28, 28).copy()
    with gzip.open(files[1]) as fh:
        y = np.frombuffer(fh.read(), np.uint8, offset=8).astype(np.int64)
    return x, y
