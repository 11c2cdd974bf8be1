"""The run configuration: one validated object built from defaults, a TOML file and `--set` overrides.

Every key is declared once, with what it accepts; an unknown key or a bad value fails
before any work starts, with a message that names the key and the accepted values.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augment.balance import check_strategy
from augment.errors import ConfigError
from augment.variants import LOSSES, RULES, variant_names

# Every library that receives a seed takes this one, with the offsets augment adds (seed * 2 + 2 for
# torch generators; scikit-learn and numpy accept up to 2**32 - 1).
MAX_SEED = 2**31 - 1


def _setting(default: Any, accepts: str, check: Callable[[Any], bool], doc: str = "", *, resumable: bool = False,
             in_key: bool = True) -> Any:
    """A config field with the human description of what it accepts and a check for it. resumable: may
    change between a training run and its resumption (train settings); in_key: part of the training cache
    key and the run key (False for settings that change how training runs, not what it produces)."""
    factory = (lambda: copy.deepcopy(default)) if isinstance(default, (dict, list)) else None
    meta = {"accepts": accepts, "check": check, "doc": doc, "resumable": resumable, "in_key": in_key}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int_in(lo: int, hi: int | None = None) -> Callable[[Any], bool]:
    return lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi)


def _num_in(lo: float, hi: float, lo_open: bool = False) -> Callable[[Any], bool]:
    return lambda v: _is_num(v) and (v > lo if lo_open else v >= lo) and v <= hi


def _one_of(*choices: Any) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and v in choices


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _sampling_strategy_ok(v: Any) -> bool:
    # Full validation against the dataset's classes happens in augment.balance.
    if isinstance(v, dict):
        return all(_is_int(n) and n >= 0 for n in v.values())
    return isinstance(v, str)


@dataclass
class ImageConfig:
    size: int | str = _setting("auto", "an integer from 8 to 64, or 'auto'",
                               lambda v: v == "auto" or (_is_int(v) and 8 <= v <= 64),
                               "side of the square images; 'auto': the most common size")
    channels: int | str = _setting("auto", "1, 3 or 'auto'", lambda v: v in ("auto", 1, 3) and not isinstance(v, bool),
                                   "1 = grayscale, 3 = RGB; 'auto' picks 3 if any image has colour")
    max_pixels: int = _setting(50_000_000, "a positive integer", _int_in(1),
                               "larger images are refused before decoding")


@dataclass
class DataConfig:
    allow_outside_root: bool = _setting(False, "true or false", _is_bool,
                                        "let a manifest name files outside its folder")


@dataclass
class ModelConfig:
    variant: str = _setting("acgan", variant_names(),
                            lambda v: isinstance(v, str), "the generator: see GAN family")
    latent_dim: int = _setting(64, "an integer from 1 to 1024", _int_in(1, 1024), "size of the generator's noise")
    width: int = _setting(16, "an integer from 4 to 512", _int_in(4, 512),
                          "channels of the widest-resolution layers; deeper layers double it")
    arch: str = _setting("dcgan", "'dcgan' or 'classic'", _one_of("dcgan", "classic"),
                         "backbone; 'classic': the PyTorch ACGAN write-up's (acgan only)")
    loss: str = _setting("bce", ", ".join(f"'{n}'" for n in LOSSES[:-1]) + f" or '{LOSSES[-1]}'", _one_of(*LOSSES),
                         "adversarial loss (bce is the non-saturating GAN loss)")
    conditioning: str = _setting("embed_mul", "'embed_mul' or 'concat'", _one_of("embed_mul", "concat"),
                                 "how G takes the label: z x embedding, or z + one-hot")
    d_conditioning: str = _setting("projection", "'projection' or 'channels'", _one_of("projection", "channels"),
                                   "cgan/gan-cls: how D takes the label")
    spectral_norm: bool | str = _setting("auto", "true, false or 'auto'", lambda v: v == "auto" or _is_bool(v),
                                         "spectral norm in the discriminator; 'auto': on except for dcgan")
    aux_fake_weight: float = _setting(0.0, "a number from 0 to 1", _num_in(0.0, 1.0),
                                      "acgan: class head's loss weight on fakes (1 = original ACGAN)")
    g_class_weight: float = _setting(1.0, "a number from 0 to 10", _num_in(0.0, 10.0),
                                     "acgan: weight of the class head's loss in the generator's step")
    embed_noise: float = _setting(0.0, "a non-negative number", lambda v: _is_num(v) and v >= 0,
                                  "std of noise on G's class embedding while training (NoisyTwins)")
    mode_seeking: float | str = _setting("auto", "a number from 0 to 10, or 'auto'",
                                         lambda v: v == "auto" or _num_in(0.0, 10.0)(v),
                                         "MSGAN: G's step pushes same-class images apart; 'auto': 0.1 for "
                                         "acgan (1 for RGB at 64 px), not classic")
    acgan_projection: bool | str = _setting("auto", "true, false or 'auto'", lambda v: v == "auto" or _is_bool(v),
                                            "acgan: D also takes the label by projection; 'auto': on but for "
                                            "arch 'classic'")


@dataclass
class TrainConfig:
    steps: int = _setting(3000, "a positive integer", _int_in(1),
                          "generator steps", resumable=True)
    batch_size: int = _setting(64, "an integer from 2 to 65536", _int_in(2, 65536),
                               "images per batch (halved on out-of-memory)", resumable=True)
    lr: float = _setting(1e-3, "a number in (0, 1]", _num_in(0.0, 1.0, lo_open=True),
                         "learning rate of both networks")
    optimizer: str = _setting("adam", "'adam' or 'rmsprop'", _one_of("adam", "rmsprop"),
                              "Adam (as DCGAN) or RMSprop (as the Keras ACGAN write-up)")
    beta1: float = _setting(0.5, "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1, "Adam's beta1")
    beta2: float = _setting(0.999, "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1, "Adam's beta2")
    device: str = _setting("auto", "'auto', 'cpu' or 'cuda'", _one_of("auto", "cpu", "cuda"),
                           "'auto': CUDA when there is one", resumable=True, in_key=False)
    checkpoint_every: int = _setting(500, "a positive integer", _int_in(1),
                                     "steps between checkpoints and grids", resumable=True)
    log_every: int = _setting(50, "a positive integer", _int_in(1), "steps between rows of stats.jsonl",
                              resumable=True, in_key=False)
    keep_checkpoints: int = _setting(3, "a positive integer", _int_in(1),
                                     "recent checkpoints kept (plus the best)", resumable=True,
                                     in_key=False)
    best_tolerance: float = _setting(0.0, "a number in [0, 1]", _num_in(0.0, 1.0),
                                     "best.pt: the latest checkpoint within this of the best score",
                                     resumable=True)
    ema: bool = _setting(True, "true or false", _is_bool,
                         "generate from an EMA of the generator")
    ema_decay: float = _setting(0.999, "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1,
                                "decay of the generator's average (warmed up)")
    real_sampling: str = _setting("balanced", "'balanced' or 'uniform'", _one_of("balanced", "uniform"),
                                  "real batches: classes equally often, or as the data is")
    threads: int | str = _setting("adaptive", "'adaptive', 'auto' or a non-negative integer (0 = all cores)",
                                  lambda v: v in ("auto", "adaptive") or _int_in(0)(v),
                                  "CPU threads; 'adaptive': the cores other processes leave (not bit-repeatable); "
                                  "'auto' (all but one) or N: fixed, repeatable", resumable=True, in_key=False)
    keep_cpu_memory: bool = _setting(True, "true or false", _is_bool,
                                     "CPU (glibc): keep freed memory", resumable=True)
    critic_steps: int = _setting(5, "an integer from 1 to 100", _int_in(1, 100),
                                 "D steps per G step with model.loss = 'wgan-gp'")
    gp_weight: float = _setting(10.0, "a non-negative number", lambda v: _is_num(v) and v >= 0,
                                "weight of the WGAN-GP gradient penalty")
    r1_weight: float = _setting(0.0, "a non-negative number", lambda v: _is_num(v) and v >= 0,
                                "γ of an R1 penalty at real images (0 = off)")
    r1_every: int = _setting(16, "a positive integer", _int_in(1), "lazy R1: steps between penalties")
    aux_steps: int = _setting(1000, "a positive integer", _int_in(1),
                              "steps of the auxiliary classifier (no class head)", resumable=True)
    health_every: int = _setting(10, "a positive integer", _int_in(1),
                                 "steps between NaN/inf and collapse checks", resumable=True)
    collapse_ratio: float = _setting(0.05, "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1,
                                     "spread vs real under which G is collapsed (0: off)")
    max_rollbacks: int = _setting(3, "a non-negative integer", _int_in(0),
                                  "rollbacks after divergence before training stops", resumable=True)
    rollback_lr_factor: float = _setting(0.5, "a number in (0, 1]", _num_in(0.0, 1.0, lo_open=True),
                                         "learning rates x this at each rollback")
    compile: bool | str = _setting(False, "true, false, 'reduce-overhead' or 'max-autotune'",
                                   lambda v: _is_bool(v) or v in ("reduce-overhead", "max-autotune"),
                                   "torch.compile the networks (pays on GPUs)", resumable=True, in_key=False)
    precision: str = _setting("auto", "'auto', 'bf16' or 'fp32'", _one_of("auto", "bf16", "fp32"),
                              "auto: bf16 autocast on CUDA and AMX CPUs, fp32 elsewhere", resumable=True)
    max_seconds: float = _setting(0, "a non-negative number (0 = no limit)", lambda v: _is_num(v) and v >= 0,
                                  "time limit of the training stage", resumable=True)
    diffaugment: str = _setting("", "a comma-separated list of 'color', 'translation', 'cutout' (or '')",
                                lambda v: isinstance(v, str) and all(
                                    p.strip() in ("color", "translation", "cutout") for p in v.split(",") if p.strip()),
                                "differentiable augmentation before the discriminator")


@dataclass
class BalanceConfig:
    sampling_strategy: str | dict = _setting(
        "auto",
        "imbalanced-learn's 'auto', 'not majority', 'minority', 'not minority', 'all'; 'target:N', 'ratio:R'; "
        "or a {class = count} table",
        _sampling_strategy_ok,
        "each class's size after augmentation ('auto': the largest class's)")
    synthetic_share: str | float = _setting(
        "auto", "'auto', 'full', or a number from 0 to 1000",
        lambda v: v in ("auto", "full") or (_is_num(v) and 0 <= v <= 1000),
        "synthetic images at most this x a class's real ones, the rest by weights; 'auto': chosen on "
        "held-out real images")
    synthetic_weight: float = _setting(1.0, "a number in (0, 1]", _num_in(0.0, 1.0, lo_open=True),
                                       "a synthetic row's weight relative to a real row")
    probe_steps: int = _setting(500, "a non-negative integer", _int_in(0),
                                "'auto': the SmallCNN probe's steps (0 needs probe_classifiers 'logreg')")
    probe_classifiers: str = _setting("cnn", "'cnn', 'logreg,cnn' or 'logreg'",
                                      _one_of("cnn", "logreg,cnn", "logreg"),
                                      "'auto': the probes that must all gain")
    probe_seeds: int = _setting(3, "an integer from 1 to 20", _int_in(1, 20),
                                "'auto': probe seeds per share that gains on the first")


@dataclass
class SelectConfig:
    min_aux_prob: float = _setting(0.5, "a number in [0, 1]", _num_in(0.0, 1.0),
                                   "floor on the class head's probability of the class")
    min_ext_prob: float = _setting(0.5, "a number in [0, 1]", _num_in(0.0, 1.0),
                                   "smallest external-classifier probability of the intended class")
    require_agreement: bool = _setting(True, "true or false", _is_bool,
                                       "the external classifier's top class must be the intended class")
    manifold_k: int = _setting(0, "a non-negative integer (0 = off)", _int_in(0),
                               "keep candidates inside a k-NN ball of their class's real images")
    rank: str = _setting("random", "'random', 'informative' or 'coverage'",
                         _one_of("random", "informative", "coverage"),
                         "latent, hard+spread, or far from real first")
    easy_quantile: float = _setting(0.5, "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1,
                                    "'informative': below this quantile of external loss go last")
    reject_copies: bool = _setting(True, "true or false", _is_bool,
                                   "drop near-copies of real training images")
    reject_duplicates: bool = _setting(True, "true or false", _is_bool,
                                       "drop near-duplicates among kept images")
    copy_percentile: float = _setting(1.0, "a number in [0, 50]", _num_in(0.0, 50.0),
                                      "copy threshold: this percentile of real-to-real nearest distances")
    oversample: float = _setting(2.0, "a number from 1 to 100", _num_in(1.0, 100.0),
                                 "candidates generated per image the plan asks for")
    max_rounds: int = _setting(3, "an integer from 1 to 20", _int_in(1, 20),
                               "generation rounds before a class is reported short")


def _external_ok(v) -> bool:
    return isinstance(v, str) and (v in ("cnn", "logreg") or (v.startswith("torchscript:") and len(v) > 12))


@dataclass
class ScoreConfig:
    external: str = _setting("cnn", "'cnn', 'logreg' or 'torchscript:PATH'", _external_ok,
                             "the independent classifier that judges synthetic images")
    external_steps: int = _setting(1000, "a positive integer", _int_in(1), "training steps of the 'cnn' recipe")
    min_external_accuracy: float = _setting(0.5, "a number in [0, 1]", _num_in(0.0, 1.0),
                                            "below this held-out balanced accuracy the judge is flagged weak")
    cas: bool = _setting(True, "true or false", _is_bool,
                         "compute the classification accuracy score")
    detector: bool = _setting(True, "true or false", _is_bool,
                              "train a fresh real-vs-synthetic CNN; its held-out accuracy per class")


@dataclass
class OutConfig:
    overwrite: bool = _setting(False, "true or false", _is_bool,
                               "replace a non-empty --out once the new output is complete")


@dataclass
class Config:
    seed: int = _setting(0, f"an integer from 0 to {MAX_SEED}", _int_in(0, MAX_SEED),
                         "seeds everything: the same seed and inputs give the same manifest rows")
    image: ImageConfig = field(default_factory=ImageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    balance: BalanceConfig = field(default_factory=BalanceConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    out: OutConfig = field(default_factory=OutConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self, sections: Iterable[str] | None = None) -> str:
        """Stable hash of the whole config, or of the named top-level keys only."""
        d = self.to_dict()
        if sections is not None:
            d = {k: d[k] for k in sections}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()


def train_settings(flag: str, value: bool) -> frozenset[str]:
    """The train.* setting names whose declared `flag` ('resumable' or 'in_key') is `value`."""
    return frozenset(f.name for f in dataclasses.fields(TrainConfig) if f.metadata[flag] is value)


def config_keys(cls: type = Config, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Every leaf key of the config as 'section.name' -> its field."""
    keys: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            keys.update(config_keys(f.default_factory, f"{name}."))
        else:
            keys[name] = f
    return keys


def _from_dict(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"The '{prefix.rstrip('.')}' section must be a table of keys. Got {data!r} instead.")
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}{name}"
        if name not in known:
            accepted = ", ".join(sorted(f"{prefix}{k}" for k in known))
            raise ConfigError(f"Unknown config key '{key}'. Accepted keys here: {accepted}.")
        f = known[name]
        sub = f.default_factory if f.default_factory is not dataclasses.MISSING else None
        if sub is not None and dataclasses.is_dataclass(sub):
            kwargs[name] = _from_dict(sub, value, f"{key}.")
        else:
            if not f.metadata["check"](value):
                raise ConfigError(f"The '{key}' setting must be {f.metadata['accepts']}. Got {value!r} instead.")
            kwargs[name] = value
    return cls(**kwargs)


def deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) and k != "sampling_strategy":
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_set(assignment: str) -> dict[str, Any]:
    """'train.steps=100' -> {'train': {'steps': 100}}; the value is read as TOML, else as a plain string."""
    if "=" not in assignment:
        raise ConfigError(f"--set takes key=value (for example train.steps=500). Got {assignment!r} instead.")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set needs a key before '='. Got {assignment!r} instead.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    nested: dict[str, Any] = {}
    node = nested
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return nested


def read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"Config file '{path}' does not exist.") from None
    except IsADirectoryError:
        raise ConfigError(f"Config file '{path}' is a folder; give the path of a TOML file.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"Config file '{path}' is not text (not UTF-8); give a TOML file.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file '{path}' is not valid TOML: {exc}.") from None
    except OSError as exc:
        raise ConfigError(f"Config file '{path}' cannot be read: {exc.strerror}.") from None


def build_config(file: str | Path | None = None, sets: Iterable[str] = (),
                 base: Mapping[str, Any] | None = None) -> Config:
    """Defaults, then `base` (e.g. the demo's), then the TOML file, then each --set, validated as one."""
    merged: dict[str, Any] = dict(base or {})
    if file is not None:
        merged = deep_merge(merged, read_toml(file))
    for s in sets:
        merged = deep_merge(merged, parse_set(s))
    cfg = _from_dict(Config, merged, "")
    check_combinations(cfg)
    return cfg


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """Rebuild a Config from `Config.to_dict()` output (e.g. read back from a checkpoint)."""
    cfg = _from_dict(Config, data, "")
    check_combinations(cfg)
    return cfg


def check_combinations(cfg: Config) -> None:
    """Checks that involve more than one key or a registry."""
    check_strategy(cfg.balance.sampling_strategy)
    if cfg.model.variant not in RULES:
        raise ConfigError(f"The 'model.variant' setting must be one of {sorted(RULES)}. "
                          f"Got {cfg.model.variant!r} instead.")
    rules, m = RULES[cfg.model.variant], cfg.model
    if m.arch not in rules.archs:
        with_it = " or ".join(repr(n) for n, r in RULES.items() if m.arch in r.archs)
        raise ConfigError(f"model.arch = {m.arch!r} is a backbone of other variants; it needs model.variant = "
                          f"{with_it}, not {m.variant!r} ('classic' is the ACGAN write-up's architecture).")
    if m.embed_noise and (m.conditioning != "embed_mul" or m.arch == "classic" or not rules.embed_noise):
        with_it = [n for n, r in RULES.items() if r.embed_noise]
        raise ConfigError(f"model.embed_noise = {m.embed_noise} adds noise to the generator's class "
                          "embedding, which only model.conditioning = 'embed_mul' with model.arch = 'dcgan' and "
                          f"model.variant {' or '.join(repr(n) for n in with_it)} has; set it to 0 or change those "
                          "settings.")
    if m.mode_seeking not in ("auto", 0) and (not rules.adversarial or m.loss == "wgan-gp"):
        raise ConfigError(f"model.mode_seeking = {m.mode_seeking} pairs same-class fakes in the GAN's "
                          f"generator step; model.variant {m.variant!r} has no such step, or model.loss = "
                          "'wgan-gp' ties fake labels to the real batch's. Set it to 0 or change those settings.")
    if m.acgan_projection is True and (not rules.acgan_projection or m.arch == "classic"):
        raise ConfigError("model.acgan_projection = true adds a projection term to ACGAN's discriminator, which "
                          "only model.variant = 'acgan' with model.arch = 'dcgan' has; cgan already conditions "
                          f"by projection. Got variant {m.variant!r}, arch {m.arch!r}.")
    if m.arch == "classic" and cfg.image.size != "auto" and cfg.image.size % 4:
        raise ConfigError(f"model.arch = 'classic' needs image.size divisible by 4. Got {cfg.image.size}.")
    if cfg.balance.probe_steps == 0 and "cnn" in cfg.balance.probe_classifiers.split(","):
        if cfg.balance.probe_classifiers == "cnn":
            raise ConfigError("balance.probe_classifiers = 'cnn' trains the SmallCNN probe, which "
                              "balance.probe_steps = 0 turns off. Set probe_steps > 0 or probe_classifiers = 'logreg'.")
    if m.latent_dim < rules.min_latent_dim:
        raise ConfigError(f"model.variant = {m.variant!r} reads {rules.min_latent_dim} coordinates of each latent "
                          f"vector; model.latent_dim must be >= {rules.min_latent_dim}. Got {m.latent_dim}.")
    if m.loss not in rules.losses:
        raise ConfigError(f"model.loss = {m.loss!r} is not meaningful with model.variant = "
                          f"{m.variant!r}; use one of {list(rules.losses)}.")
