"""The run report: a summary table and figures (class balance, samples, training curves) in report.md."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def summary_table(meta: dict) -> pd.DataFrame:
    """Per class: real count, plan, kept and rejected synthetic, total after, shortfall."""
    names = meta["class_names"]
    rows = []
    for n in names:
        rows.append({"class": n, "real": meta["counts_before"][n], "planned": meta["plan"][n],
                     "kept": meta["kept"][n], "rejected": meta["rejected"][n], "after": meta["counts_after"][n],
                     "short": meta["shortfall"].get(n, 0)})
    df = pd.DataFrame(rows)
    total = {"class": "all", **{c: int(df[c].sum()) for c in df.columns if c != "class"}}
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def plot_class_balance(meta: dict, path: Path) -> None:
    names = meta["class_names"]
    before = [meta["counts_before"][n] for n in names]
    kept = [meta["kept"][n] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(names) + 2), 3))
    ax.bar(names, before, label="real")
    ax.bar(names, kept, bottom=before, label="synthetic (kept)")
    ax.set_ylabel("images")
    ax.set_title("Class balance before and after")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_training_curves(stats_path: Path, path: Path) -> bool:
    if not stats_path.exists():
        return False
    rows = [json.loads(ln) for ln in stats_path.read_text().splitlines() if ln.strip()]
    train_rows = [r for r in rows if "d_loss" in r]
    quality_rows = [r for r in rows if "quality_score" in r]
    if not train_rows:
        return False
    df = pd.DataFrame(train_rows)
    fig, axes = plt.subplots(1, 3 if quality_rows else 2, figsize=(12 if quality_rows else 8, 3))
    for k in ("d_loss", "g_loss"):
        axes[0].plot(df["step"], df[k], label=k)
    axes[0].set_title("losses")
    axes[0].legend()
    for k in [c for c in ("d_real", "d_fake", "aux_acc_real", "aux_acc_fake") if c in df]:
        axes[1].plot(df["step"], df[k], label=k)
    axes[1].set_title("discriminator")
    axes[1].legend(fontsize=7)
    if quality_rows:
        q = pd.DataFrame(quality_rows)
        for k in ("quality_score", "quality_accuracy", "quality_diversity"):
            if k in q:
                axes[2].plot(q["step"], q[k], marker="o", label=k.removeprefix("quality_"))
        axes[2].set_title("quality check (pixel probe)")
        axes[2].legend(fontsize=7)
    for ax in axes:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_training_figures(run_dir: Path) -> None:
    """training.gif from the sample grids and curves.png from stats.jsonl, inside the training folder."""
    from augment.grids import save_gif

    run_dir = Path(run_dir)
    save_gif(sorted((run_dir / "samples").glob("grid-*.png")), run_dir / "training.gif")
    plot_training_curves(run_dir / "stats.jsonl", run_dir / "curves.png")


def write_report(out: Path, meta: dict, extra_sections: list[str] | None = None) -> None:
    """report.md and figures/ inside the (temporary) output folder `out`."""
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    plot_class_balance(meta, figs / "class_balance.png")
    parts = [f"# augment report: {meta['source']}", "",
             f"Created {meta['created_at']}; dataset fingerprint `{meta['dataset_fingerprint'][:16]}`; "
             f"seed {meta['seed']}; model {meta['training']['variant']}, "
             f"{len(meta['checkpoints'])} checkpoint(s) used.", "",
             "## Counts", "", markdown_table(summary_table(meta)), "",
             "![class balance](figures/class_balance.png)", ""]
    for ck in meta.get("checkpoints", []):
        run_dir = out / Path(ck["path"]).parents[1]
        label = ", ".join(ck["classes"]) if len(meta["checkpoints"]) > 1 else "all classes"
        tag = run_dir.name
        grid = run_dir / "samples" / f"grid-{ck['step']:07d}.png"
        if grid.exists():
            shutil.copyfile(grid, figs / f"samples-{tag}.png")
            parts += [f"## Samples from the chosen checkpoint, step {ck['step']} ({label}; one row per class)", "",
                      f"![samples](figures/samples-{tag}.png)", ""]
        if plot_training_curves(run_dir / "stats.jsonl", figs / f"training-{tag}.png"):
            parts += [f"## Training ({label})", "", f"![training curves](figures/training-{tag}.png)", ""]
    for section in extra_sections or []:
        parts += [section, ""]
    if meta.get("shortfall"):
        parts += ["## Warnings", "", *[f"- class '{k}' is {v} images short of the plan" for k, v in
                                       meta["shortfall"].items()], ""]
    (out / "report.md").write_text("\n".join(parts))
