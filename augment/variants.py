"""What each synthesis variant accepts and what its 'auto' settings mean, declared once as data.

The config layer validates through these rules without importing model code (so `import augment.config`
loads no torch); `augment.models` registers each variant's networks and losses under the same rules.
A new variant is one `Variant(VariantRules(...), ...)` passed to `augment.models.register_variant`.
"""

from __future__ import annotations

from dataclasses import dataclass

LOSSES = ("bce", "lsgan", "hinge", "wgan-gp")  # adversarial losses (augment.losses implements each)
TRAINERS = ("gan", "autoencoder", "mixing")  # the training functions a variant may use (stages.train)


@dataclass(frozen=True)
class VariantRules:
    """A variant's rules. conditional: one model for all classes (False: one per class that needs images,
    so the plan is part of its training); trainer: 'gan' (augment.train's loop), 'autoencoder'
    (latent-smote's) or 'mixing' (no training: real images kept for mixing); archs: the backbones it
    builds; embed_noise / acgan_projection: whether those settings mean anything for it;
    auto_mode_seeking: model.mode_seeking 'auto' on the 'dcgan' backbone with a loss other than wgan-gp
    (where it was measured); auto_mode_seeking_rgb64: the same for RGB images of 64 px or more, where a
    larger weight was needed for variety (docs/benchmarks.md colour); auto_spectral_norm:
    model.spectral_norm 'auto'; min_latent_dim: the latent coordinates its generator reads."""

    name: str
    summary: str
    losses: tuple[str, ...] = LOSSES
    conditional: bool = True
    trainer: str = "gan"
    min_classes: int = 1
    archs: tuple[str, ...] = ("dcgan",)
    embed_noise: bool = False
    acgan_projection: bool = False
    auto_mode_seeking: float = 0.0
    auto_mode_seeking_rgb64: float = 0.0
    auto_spectral_norm: bool = True
    min_latent_dim: int = 1

    def __post_init__(self) -> None:
        if self.trainer not in TRAINERS:
            raise ValueError(f"variant {self.name!r}: trainer must be one of {TRAINERS}, not {self.trainer!r}")
        unknown = set(self.losses) - set(LOSSES)
        if unknown:
            raise ValueError(f"variant {self.name!r}: unknown losses {sorted(unknown)}; known: {LOSSES}")

    @property
    def adversarial(self) -> bool:
        """Trained by the GAN loop, so that its generator step exists (mode seeking acts there)."""
        return self.trainer == "gan"


RULES: dict[str, VariantRules] = {}


def declare(rules: VariantRules) -> VariantRules:
    """Add a variant's rules (augment.models.register_variant calls this for every variant it registers)."""
    existing = RULES.get(rules.name)
    if existing is not None and existing != rules:
        raise ValueError(f"variant {rules.name!r} is declared twice with different rules")
    RULES[rules.name] = rules
    return rules


def rules_for(name: str) -> VariantRules:
    return RULES[name]


def variant_names() -> str:
    """The declared variants as a setting's 'accepts' text: 'a', 'b' or 'c'."""
    names = [f"'{n}'" for n in RULES]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


ACGAN = declare(VariantRules("acgan", "ACGAN: D has an auxiliary class head", archs=("dcgan", "classic"),
                             embed_noise=True, acgan_projection=True, auto_mode_seeking=0.1,
                             auto_mode_seeking_rgb64=1.0))
CGAN = declare(VariantRules("cgan", "conditional GAN: the label given to both networks", embed_noise=True))
GAN_CLS = declare(VariantRules("gan-cls", "matching-aware discriminator on (image, label) pairs",
                               losses=("bce", "lsgan", "hinge"), min_classes=2))
DCGAN = declare(VariantRules("dcgan", "unconditional DCGAN, one per class that needs images", conditional=False,
                             auto_spectral_norm=False))
LATENT_SMOTE = declare(VariantRules("latent-smote", "an autoencoder's decoder over SMOTE between real codes",
                                    losses=("bce",), trainer="autoencoder", min_latent_dim=3))
REMIX = declare(VariantRules("remix", "a real image of the class blended over another class's (Remix)",
                             losses=("bce",), trainer="mixing", min_classes=2, min_latent_dim=6))
CUTMIX = declare(VariantRules("cutmix", "a patch of a real image of the class pasted into another class's (CMO)",
                              losses=("bce",), trainer="mixing", min_classes=2, min_latent_dim=6))
