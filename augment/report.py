"""The run report: counts, quality and pictures, written as report.md and a self-contained report.html.

The report is a list of blocks (headings, text, tables, images) rendered twice: to markdown with the
figures beside it in figures/, and to HTML with the figures embedded, so the HTML file can be
mailed or opened anywhere on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from augment.atomic import write_bytes, write_text  # noqa: E402
from augment.columns import LEFT_OUT, histogram_columns  # noqa: E402

Block = tuple  # ("h1" | "h2" | "p" | "warn", text) | ("table", DataFrame) | ("img", relpath, alt)
MAX_CLASSES_SHOWN = 20


def _save_figure(fig, path: Path, **savefig) -> None:
    """A figure as PNG, written atomically (a report is also rewritten inside a finished run)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", **savefig)
    write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------- tables

def summary_table(meta: dict) -> pd.DataFrame:
    """Per class: real count, plan, kept and rejected synthetic, total after, shortfall."""
    rows = [{"class": n, "real": meta["counts_before"][n], "planned": meta["plan"][n], "kept": meta["kept"][n],
             "rejected": meta["rejected"][n], "after": meta["counts_after"][n], "short": meta["shortfall"].get(n, 0)}
            for n in meta["class_names"]]
    df = pd.DataFrame(rows)
    total = {"class": "all", **{c: int(df[c].sum()) for c in df.columns if c != "class"}}
    return pd.concat([df, pd.DataFrame([total])], ignore_index=True)


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return "–" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(" --- " for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    return "\n".join(lines)


def html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>"
                   for row in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ---------------------------------------------------------------- figures

def plot_class_balance(meta: dict, path: Path) -> None:
    names = meta["class_names"][:60]
    before = [meta["counts_before"][n] for n in names]
    kept = [meta["kept"][n] for n in names]
    fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(names) + 2), 3))
    ax.bar(names, before, label="real")
    ax.bar(names, kept, bottom=before, label="synthetic (kept)")
    ax.set_ylabel("images")
    ax.set_title("Class balance before and after")
    ax.tick_params(axis="x", labelrotation=90 if len(names) > 12 else 0)
    ax.legend()
    fig.tight_layout()
    _save_figure(fig, path, dpi=100)
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
    for k in [c for c in ("d_real", "d_fake", "aux_acc_real", "aux_acc_fake", "gp") if c in df]:
        axes[1].plot(df["step"], df[k], label=k)
    axes[1].set_title("discriminator (mean logits, accuracies)")
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
    _save_figure(fig, path, dpi=100)
    plt.close(fig)
    return True


def write_training_figures(run_dir: Path) -> None:
    """samples.gif from the sample grids and curves.png from stats.jsonl, inside the training folder."""
    from augment.grids import save_gif

    run_dir = Path(run_dir)
    save_gif(sorted((run_dir / "samples").glob("grid-*.png")), run_dir / "samples.gif")
    plot_training_curves(run_dir / "stats.jsonl", run_dir / "curves.png")


def _strip(out: Path, rows: pd.DataFrame, cells: int) -> np.ndarray | None:
    """Up to `cells` images of these manifest rows side by side (augment.grids, one row of `cells`), or None."""
    from augment.grids import grid_image

    images = [np.asarray(Image.open(out / path).convert("RGB")).transpose(2, 0, 1) for path in rows["path"].head(cells)]
    return np.asarray(grid_image(np.stack(images), cells)) if images else None


def plot_kept_rejected(out: Path, manifest: pd.DataFrame, path: Path, per_side: int = 8) -> bool:
    """One row per class with synthetic images: up to 8 kept on the left (the first in the selection's
    order; where the amount took none, the ones the selection kept, marked 'share'), up to 8 rejected on the
    right, each marked with its reason. Each side is one image strip (two axes a class, not one an image:
    matplotlib's cost is per axes)."""
    syn = manifest[manifest["is_synthetic"]]
    classes = list(dict.fromkeys(syn["class_name"]))[:MAX_CLASSES_SHOWN]
    if not classes:
        return False
    fig, axes = plt.subplots(len(classes), 2, figsize=(0.6 * (2 * per_side + 1) + 1.5, 0.65 * len(classes) + 0.6),
                             squeeze=False, gridspec_kw={"wspace": 1 / (2 * per_side)})
    for r, name in enumerate(classes):
        rows = syn[syn["class_name"] == name]
        kept = rows[rows["kept"]].sort_values("rank", kind="stable").head(per_side)  # in selection order
        if kept.empty:  # the amount took none: show what the selection kept instead of an empty side
            kept = rows[rows["reject_reason"] == LEFT_OUT].sort_values("rank", kind="stable").head(per_side)
        rejected = rows[~rows["kept"] & ~rows.index.isin(kept.index)].head(per_side)
        for ax, side in zip(axes[r], (kept, rejected)):
            ax.axis("off")
            strip = _strip(out, side, per_side)
            if strip is None:
                continue
            ax.imshow(strip, interpolation="nearest")
            cell = strip.shape[1] / per_side
            for j, row in enumerate(side.itertuples()):
                if not row.kept:
                    ax.text((j + 0.5) * cell, 0, row.reject_reason, fontsize=5, ha="center", va="bottom")
        axes[r, 0].text(-0.02, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=8)
    axes[0, 0].set_title("kept (or selected, left out by the share)", fontsize=9, pad=8)
    axes[0, 1].set_title("rejected", fontsize=9, pad=8)
    _save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_score_histograms(manifest: pd.DataFrame, path: Path, copy_threshold: float | None) -> bool:
    """Per class (rows): histograms of the score columns marked `histogram` (augment.columns), kept and
    rejected stacked; nn_distance with the copy threshold."""
    syn = manifest[manifest["is_synthetic"]]
    classes = list(dict.fromkeys(syn["class_name"]))[:MAX_CLASSES_SHOWN]
    if not classes:
        return False
    cols = histogram_columns()
    fig, axes = plt.subplots(len(classes), len(cols), figsize=(3 * len(cols), 1.3 * len(classes) + 0.6),
                             squeeze=False)
    for r, name in enumerate(classes):
        rows = syn[syn["class_name"] == name]
        kept = rows["kept"].to_numpy(bool)
        for j, col in enumerate(cols):
            ax = axes[r, j]
            values = rows[col.name].to_numpy(float)
            finite = np.isfinite(values)
            if finite.any():
                lo, hi = (0.0, float(np.nanmax(values)) or 1.0) if col.unbounded else (0.0, 1.0)
                bins = np.linspace(lo, hi, 21)
                n_kept, _ = np.histogram(values[kept & finite], bins)
                n_rejected, _ = np.histogram(values[~kept & finite], bins)
                # stacked as two filled step outlines: two artists, not a bar patch per bin (matplotlib's cost)
                ax.stairs(n_kept, bins, fill=True, color="tab:green", label="kept")
                ax.stairs(n_kept + n_rejected, bins, baseline=n_kept, fill=True, color="tab:red", label="rejected")
                if col.name == "nn_distance" and copy_threshold:
                    ax.axvline(copy_threshold, color="k", lw=0.8, ls="--")
            ax.tick_params(labelsize=6)
            if r == 0:
                ax.set_title(col.name if col.name != "nn_distance" else "nn_distance (-- copy threshold)",
                             fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    _save_figure(fig, path, dpi=100)
    plt.close(fig)
    return True


def threads_note(training: dict) -> str:
    """' with 1-2 CPU threads' from the thread history of every GAN trained (train.threads = 'adaptive'
    follows the machine's load); '' on a GPU or where the run did not record it."""
    counts = sorted({n for history in (training.get("threads") or {}).values() for _, n in history or []})
    if not counts or not str(training.get("device", "")).startswith("cpu"):
        return ""
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f" with {span} CPU thread{'s' if counts[-1] > 1 else ''}"


def budget_line(training: dict, quality: list[dict] | None) -> str | None:
    """What train.max_seconds bought: steps against the plan and how often the external classifier reads
    the generated candidates as their class (None without a budget)."""
    if not training.get("max_seconds"):
        return None
    steps, planned = training["steps"], training.get("steps_planned") or training["steps"]
    line = (f"train.max_seconds = {training['max_seconds']:g} bought {steps:,} of {planned:,} steps"
            f"{' (stopped by the budget)' if steps < planned else ''}")
    overall = next((r for r in quality or [] if r.get("class") == "all"), None)
    judged = overall.get("ext_accuracy_all_candidates") if overall else None
    if judged is not None and judged == judged:  # not NaN
        line += (f"; the external classifier reads {judged:.1%} of all generated "
                 "candidates as their class")
    return line + "."


# ---------------------------------------------------------------- document

TRAIN_ON_IT = ("Train on it: ds = augment.AugmentedImageFolder(OUT); sample by ds.weights "
               "(WeightedRandomSampler: every class equally often, synthetic rows at balance.synthetic_weight), "
               "or ds.phase_samplers(n, deferred=0.75) for deferred re-weighting (real rows first).")


def left_out_line(meta: dict) -> str:
    """When the amount took none of the candidates the selection kept: what they were and how to take them."""
    share = meta.get("synthetic_share") or {}
    left = share.get("candidates_left_out", 0)
    if not left or share.get("share") != "0x":
        return ""
    return (f"No synthetic images taken: {share.get('reason')}. The selection kept {left} candidates; they are "
            "under rejected/ (reject_reason 'share') and on the left of the report's kept/rejected figure. "
            "--set balance.synthetic_share=0.5 takes up to 0.5x each class's real count of them.")


def stage_seconds_line(stage_seconds: dict) -> str:
    """'Time per stage (s): load 1.2 (2%), train 40.1 (80%), ...' in pipeline order; '' when not recorded."""
    order = ["load", "train", "plan", "generate", "score", "amount", "export"]
    known = {k: v for k, v in stage_seconds.items() if v is not None}
    if not known:
        return ""
    total = sum(known.values()) or 1.0
    names = [n for n in order if n in known] + [n for n in known if n not in order]
    return ("Time per stage (s): " + ", ".join(f"{n} {known[n]:.1f} ({known[n] / total:.0%})" for n in names)
            + f"; {total:.1f} in all.")


def build_blocks(out: Path, meta: dict, manifest: pd.DataFrame, quality: pd.DataFrame | None,
                 extra: list[tuple[str, pd.DataFrame]] | None) -> list[Block]:
    figs = out / "figures"
    figs.mkdir(exist_ok=True)
    b: list[Block] = [("h1", f"augment report: {meta['source']}"),
                      ("p", f"Created {meta['created_at']}; dataset fingerprint {meta['dataset_fingerprint'][:16]}; "
                            f"seed {meta['seed']}; model {meta['training']['variant']} "
                            f"({len(meta['checkpoints'])} checkpoint(s), {meta['training']['seconds']:.0f} s of "
                            f"training on {meta['training']['device']}{threads_note(meta['training'])}).")]
    bought = budget_line(meta["training"], meta.get("quality"))
    if bought:
        b.append(("p", bought))
    timing = stage_seconds_line(meta.get("stage_seconds") or {})
    if timing:
        b.append(("p", timing + " The report itself comes after."))
    b += [("p", line) for line in (left_out_line(meta), TRAIN_ON_IT) if line]
    b += [("h2", "Counts"), ("table", summary_table(meta))]
    plot_class_balance(meta, figs / "class_balance.png")
    b.append(("img", "figures/class_balance.png", "class balance before and after"))
    b += _share_blocks(meta, figs)
    if meta.get("rejected_by"):
        b.append(("p", "Rejected candidates by first failed check: " +
                  ", ".join(f"{k} {v}" for k, v in sorted(meta["rejected_by"].items())) + "."))
    if meta.get("manifold"):
        k = meta["config"]["select"]["manifold_k"]
        b.append(("p", f"Candidates inside their class's real k-NN radius (select.manifold_k = {k}), of those "
                       "scored: " + ", ".join(f"{n} {v['inside']}/{v['scored']}" for n, v in meta["manifold"].items())
                  + "."))
    ext = meta.get("external_classifier")
    if ext:
        b += [("h2", "External classifier"),
              ("p", f"'{ext['kind']}', trained on {ext['n_train']} real images only; on {ext['n_holdout']} held-out "
                    f"real images it reaches accuracy {_fmt(ext['holdout_accuracy'])} and balanced accuracy "
                    f"{_fmt(ext['holdout_balanced_accuracy'])}."
                    + (" Fitted by an earlier run on the same data (the training cache)." if ext.get("from_cache")
                       else ""))]
        if ext["weak"]:
            b.append(("warn", f"The external classifier is too weak to judge (balanced accuracy below "
                              f"{ext['floor']}): its ext_prob, agreement and the metrics below say little. Use a "
                              "stronger one (score.external) or more real data."))
    if quality is not None:
        b += [("h2", "Quality of the kept synthetic images"),
              ("p", "In the external classifier's feature space. cas: classification accuracy score, the "
                    "external recipe trained on kept synthetic images only and tested on held-out real images "
                    "(per-class recall; balanced accuracy overall). ext_accuracy_all_candidates: the share of "
                    "all generated candidates, kept or not, that the external classifier reads as their class."),
              ("table", quality)]
    if plot_kept_rejected(out, manifest, figs / "kept_rejected.png"):
        b += [("h2", "Kept and rejected samples"), ("img", "figures/kept_rejected.png", "kept and rejected samples")]
    if plot_score_histograms(manifest, figs / "score_histograms.png", meta.get("copy_threshold")):
        b += [("h2", "Scores per class"), ("img", "figures/score_histograms.png", "score histograms")]
    for ck in meta.get("checkpoints", []):
        run_dir = out / Path(ck["path"]).parents[1]
        label = ", ".join(ck["classes"]) if len(meta["checkpoints"]) > 1 else "all classes"
        tag = run_dir.name
        grid = run_dir / "samples" / f"grid-{ck['step']:07d}.png"
        if grid.exists():
            shutil.copyfile(grid, figs / f"samples-{tag}.png")
            b += [("h2", f"Generator samples at the chosen step {ck['step']} ({label}; one row per class)"),
                  ("img", f"figures/samples-{tag}.png", "samples")]
        if plot_training_curves(run_dir / "stats.jsonl", figs / f"curves-{tag}.png"):
            b += [("h2", f"Training ({label})"), ("img", f"figures/curves-{tag}.png", "training curves")]
    for title, table in extra or []:
        b += [("h2", title), ("table", table)]
    if meta.get("shortfall"):
        b += [("h2", "Warnings")] + [("warn", f"class '{k}' is {v} images short of the plan")
                                     for k, v in meta["shortfall"].items()]
    return b


def plot_share_curve(curve: list[dict], path: Path) -> None:
    """Held-out balanced accuracy against the synthetic share, with the paired 95% interval of its
    difference from none drawn around each point."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    xs = np.arange(len(curve))
    acc = np.array([r["balanced_accuracy"] for r in curve])
    lo = acc - np.array([r["minus_none"] - r["low"] for r in curve])
    hi = acc + np.array([r["high"] - r["minus_none"] for r in curve])
    ax.errorbar(xs, acc, yerr=[acc - lo, hi - acc], fmt="o-", capsize=4)
    ax.axhline(acc[0], color="grey", lw=0.8, ls="--", label="none (real images, weights)")
    ax.set_xticks(xs, [f"{r['share']}\n({r['n_synthetic']})" for r in curve])
    ax.set_xlabel("synthetic share (synthetic images)")
    ax.set_ylabel("held-out balanced accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save_figure(fig, path, dpi=100)
    plt.close(fig)


def _share_blocks(meta: dict, figs: Path) -> list[Block]:
    share = meta.get("synthetic_share")
    if not share:
        return []
    blocks: list[Block] = [("h2", "Synthetic share"),
                           ("p", f"Share used: {share['share']} (at most that many synthetic images per real image of "
                                 f"a class): {share['reason']}. Manifest weights balance the classes either way.")]
    if share.get("curve"):
        plot_share_curve(share["curve"], figs / "synthetic_share.png")
        blocks.append(("img", "figures/synthetic_share.png", "held-out balanced accuracy against the synthetic share"))
        table = pd.DataFrame(share["curve"]).drop(columns=["share_value", "per_classifier"])
        blocks.append(("table", table))
    return blocks


def to_markdown(blocks: list[Block]) -> str:
    parts = []
    for blk in blocks:
        kind = blk[0]
        if kind == "h1":
            parts.append(f"# {blk[1]}")
        elif kind == "h2":
            parts.append(f"## {blk[1]}")
        elif kind == "p":
            parts.append(blk[1])
        elif kind == "warn":
            parts.append(f"> **Warning:** {blk[1]}")
        elif kind == "table":
            parts.append(markdown_table(blk[1]))
        elif kind == "img":
            parts.append(f"![{blk[2]}]({blk[1]})")
    return "\n\n".join(parts) + "\n"


CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;font-size:13px;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
       "text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
       "img{max-width:100%;border:1px solid #eee}.warn{background:#fff4e5;border-left:4px solid #f0a000;"
       "padding:.5em 1em}")


def to_html(blocks: list[Block], base: Path) -> str:
    parts = []
    title = next((blk[1] for blk in blocks if blk[0] == "h1"), "augment report")
    for blk in blocks:
        kind = blk[0]
        if kind in ("h1", "h2"):
            parts.append(f"<{kind}>{html.escape(blk[1])}</{kind}>")
        elif kind == "p":
            parts.append(f"<p>{html.escape(blk[1])}</p>")
        elif kind == "warn":
            parts.append(f'<p class="warn"><b>Warning:</b> {html.escape(blk[1])}</p>')
        elif kind == "table":
            parts.append(html_table(blk[1]))
        elif kind == "img":
            data = base64.b64encode((base / blk[1]).read_bytes()).decode()
            parts.append(f'<p><img alt="{html.escape(blk[2])}" src="data:image/png;base64,{data}"></p>')
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>")


def write_report(out: Path, meta: dict, manifest: pd.DataFrame, quality: pd.DataFrame | None = None,
                 extra: list[tuple[str, pd.DataFrame]] | None = None) -> list[Block]:
    """report.md (+ figures/) and a self-contained report.html inside the output folder `out`."""
    blocks = build_blocks(Path(out), meta, manifest, quality, extra)
    write_text(Path(out) / "report.md", to_markdown(blocks))
    write_text(Path(out) / "report.html", to_html(blocks, Path(out)))
    if quality is not None:
        write_text(Path(out) / "quality.csv", quality.to_csv(index=False))
    return blocks
