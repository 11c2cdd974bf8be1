"""Training throughput of `model.arch = classic` beside the PyTorch-GAN ACGAN loop it came from.

The reference arm is that write-up's training loop as its script runs it, written out again here:
MNIST at 32 px through a DataLoader of PIL images (Resize, ToTensor, Normalize), batch 64, Adam 2e-4
(0.5, 0.999), the generator step first with 0.5 x (BCE on a sigmoid + cross-entropy on a softmax),
then the discriminator on real and on detached fake images; each step copies both class heads to
numpy for the accuracy it prints and prints its losses (here to a buffer), and every 400 batches saves
a 10 x 10 grid. Its architecture keeps the original's BatchNorm2d(c, 0.8) (eps 0.8). It runs in fp32
with torch's default thread count, as the script does.

The product arm is `augment.train.train` with `model.arch=classic` (benchmarks/throughput.py's
`classic` settings) at the product's default precision and threads, and at the settings named.
Each measurement is a fresh process; arms alternate within each repeat so that both see the same
machine. images/s is the median over 10-step intervals after the first. Run it on a quiet machine.

    python benchmarks/classic_vs_reference.py [--steps 100] [--repeats 3]
        [--arms 'reference,classic,classic all cores,classic fp32 all cores']
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INTERVAL = 10  # steps per timed interval
ARMS = {  # name: the product's extra settings (None: the reference loop)
    "reference": None,
    "classic": [],  # the product's defaults: train.threads = 'adaptive' since it became the default
    "classic all cores": ["train.threads=0"],
    "classic auto": ["train.threads=auto"],  # a fixed count, all cores but one (the default before 'adaptive')
    "classic fp32": ["train.precision=fp32"],
    "classic fp32 all cores": ["train.precision=fp32", "train.threads=0"],
}


def reference_networks(latent: int = 100, classes: int = 10, size: int = 32):
    """The write-up's generator and discriminator (sigmoid and softmax heads, BatchNorm eps 0.8)."""
    import torch
    from torch import nn

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.label_emb = nn.Embedding(classes, latent)
            self.init_size = size // 4
            self.l1 = nn.Linear(latent, 128 * self.init_size ** 2)
            self.conv_blocks = nn.Sequential(
                nn.BatchNorm2d(128), nn.Upsample(scale_factor=2), nn.Conv2d(128, 128, 3, 1, 1),
                nn.BatchNorm2d(128, 0.8), nn.LeakyReLU(0.2, inplace=True), nn.Upsample(scale_factor=2),
                nn.Conv2d(128, 64, 3, 1, 1), nn.BatchNorm2d(64, 0.8), nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(64, 1, 3, 1, 1), nn.Tanh())

        def forward(self, noise, labels):
            out = self.l1(torch.mul(self.label_emb(labels), noise))
            return self.conv_blocks(out.view(out.shape[0], 128, self.init_size, self.init_size))

    class Discriminator(nn.Module):
        def __init__(self):
            super().__init__()

            def block(c_in, c_out, bn=True):
                layers = [nn.Conv2d(c_in, c_out, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
                return layers + ([nn.BatchNorm2d(c_out, 0.8)] if bn else [])

            self.conv_blocks = nn.Sequential(*block(1, 16, bn=False), *block(16, 32), *block(32, 64), *block(64, 128))
            ds = size // 2 ** 4
            self.adv_layer = nn.Sequential(nn.Linear(128 * ds ** 2, 1), nn.Sigmoid())
            self.aux_layer = nn.Sequential(nn.Linear(128 * ds ** 2, classes), nn.Softmax(dim=1))

        def forward(self, img):
            out = self.conv_blocks(img).view(img.shape[0], -1)
            return self.adv_layer(out), self.aux_layer(out)

    def init(m):
        name = type(m).__name__
        if "Conv" in name:
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm2d" in name:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.constant_(m.bias, 0.0)

    G, D = Generator(), Discriminator()
    G.apply(init)
    D.apply(init)
    return G, D


def reference_child(steps: int) -> dict:
    """The write-up's loop for `steps` batches; images/s per INTERVAL steps."""
    import numpy as np
    import torch
    from PIL import Image
    from shared_data import MNIST
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms
    from torchvision.utils import save_image

    d = np.load(MNIST)
    x, y = d["x_train"], d["y_train"]

    class Mnist(Dataset):  # what torchvision.datasets.MNIST hands the transform: a PIL image and an int
        def __len__(self):
            return len(y)

        def __getitem__(self, i):
            return tfm(Image.fromarray(x[i], mode="L")), int(y[i])

    tfm = transforms.Compose([transforms.Resize(32), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    loader = DataLoader(Mnist(), batch_size=64, shuffle=True)
    G, D = reference_networks()
    adversarial, auxiliary = torch.nn.BCELoss(), torch.nn.CrossEntropyLoss()
    opt_g = torch.optim.Adam(G.parameters(), lr=0.0002, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=0.0002, betas=(0.5, 0.999))
    log, rates = io.StringIO(), []
    with tempfile.TemporaryDirectory() as out:  # the loop's sample grids, removed afterwards
        t, i = time.perf_counter(), 0
        while i < steps:
            for imgs, labels in loader:
                b = imgs.shape[0]
                valid, fake = torch.full((b, 1), 1.0), torch.full((b, 1), 0.0)
                opt_g.zero_grad()
                z = torch.as_tensor(np.random.normal(0, 1, (b, 100)), dtype=torch.float32)
                gen_labels = torch.as_tensor(np.random.randint(0, 10, b), dtype=torch.long)
                gen_imgs = G(z, gen_labels)
                validity, pred_label = D(gen_imgs)
                g_loss = 0.5 * (adversarial(validity, valid) + auxiliary(pred_label, gen_labels))
                g_loss.backward()
                opt_g.step()
                opt_d.zero_grad()
                real_pred, real_aux = D(imgs)
                d_real = (adversarial(real_pred, valid) + auxiliary(real_aux, labels)) / 2
                fake_pred, fake_aux = D(gen_imgs.detach())
                d_fake = (adversarial(fake_pred, fake) + auxiliary(fake_aux, gen_labels)) / 2
                d_loss = (d_real + d_fake) / 2
                pred = np.concatenate([real_aux.data.cpu().numpy(), fake_aux.data.cpu().numpy()], axis=0)
                gt = np.concatenate([labels.data.cpu().numpy(), gen_labels.data.cpu().numpy()], axis=0)
                d_acc = np.mean(np.argmax(pred, axis=1) == gt)
                d_loss.backward()
                opt_d.step()
                print(f"[Batch {i}] [D loss: {d_loss.item():f}, acc: {100 * d_acc:.0f}%] [G loss: {g_loss.item():f}]",
                      file=log)
                if i % 400 == 0:
                    with torch.no_grad():
                        grid_z = torch.as_tensor(np.random.normal(0, 1, (100, 100)), dtype=torch.float32)
                        grid = G(grid_z, torch.arange(10).repeat_interleave(10))
                    save_image(grid.data, os.path.join(out, f"{i}.png"), nrow=10, normalize=True)
                i += 1
                if i % INTERVAL == 0:
                    now = time.perf_counter()
                    rates.append(INTERVAL * 64 / (now - t))
                    t = now
                if i >= steps:
                    break
    return {"rates": rates, "threads": torch.get_num_threads(), "precision": "fp32"}


def classic_child(steps: int, sets: list[str]) -> dict:
    """`augment.train.train` with the classic architecture; images/s per logged interval."""
    import numpy as np
    import torch
    from shared_data import MNIST
    from throughput import CONFIGS, as_dataset

    from augment.config import build_config
    from augment.precision import resolve_precision
    from augment.train import train

    cfg = build_config(sets=[*CONFIGS["classic"], *sets, "train.device=cpu", f"train.steps={steps}",
                             f"train.log_every={INTERVAL}", f"train.checkpoint_every={steps}"])
    data = as_dataset(32, n=len(np.load(MNIST)["y_train"]))
    with tempfile.TemporaryDirectory() as tmp:
        train(data, cfg, Path(tmp) / "run")
        rows = [json.loads(r) for r in (Path(tmp) / "run" / "stats.jsonl").read_text().splitlines()]
    return {"rates": [r["imgs_per_s"] for r in rows if "imgs_per_s" in r], "threads": torch.get_num_threads(),
            "precision": resolve_precision(torch.device("cpu"), cfg.train.precision)}


def measure(arm: str, steps: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", arm, "--steps", str(steps)],
                         capture_output=True, text=True, check=True).stdout
    row = json.loads(out.strip().splitlines()[-1])
    return {**row, "median": statistics.median(row["rates"][1:])}  # the first interval warms up


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--arms", default="reference,classic,classic all cores,classic fp32 all cores")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        sets = ARMS[args.child]
        print(json.dumps(reference_child(args.steps) if sets is None else classic_child(args.steps, sets)))
        return
    import torch

    arms = [a.strip() for a in args.arms.split(",")]
    print(f"# classic vs the PyTorch-GAN ACGAN loop: {os.cpu_count()} cores, torch {torch.__version__}; MNIST 32 px, "
          f"batch 64, {args.steps} steps per measurement (median of {INTERVAL}-step intervals after the first), "
          f"{args.repeats} repeats, arms alternating", flush=True)
    medians: dict[str, list[float]] = {a: [] for a in arms}
    for _ in range(args.repeats):
        for arm in arms:
            r = measure(arm, args.steps)
            medians[arm].append(r["median"])
            print(f"{arm:26s} threads {r['threads']} {r['precision']:5s} {r['median']:8.1f} img/s", flush=True)
    print(f"{'arm':26s} {'median img/s':>13s} {'vs reference':>13s}")
    base = statistics.median(medians["reference"]) if "reference" in medians else None
    for arm, values in medians.items():
        m = statistics.median(values)
        print(f"{arm:26s} {m:13.1f} {f'{m / base:12.2f}x' if base else '':>13s}")


if __name__ == "__main__":
    main()
