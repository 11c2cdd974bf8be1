import pytest

from augment.config import Config, build_config, config_from_dict, config_keys, parse_set
from augment.errors import ConfigError


def test_defaults_are_valid_and_round_trip():
    cfg = build_config()
    assert cfg.model.variant == "acgan"
    assert cfg.train.lr == 1e-3 and cfg.train.beta1 == 0.5 and cfg.model.width == 16  # the time-to-quality recipe
    assert config_from_dict(cfg.to_dict()) == cfg


def test_file_then_sets_override_in_order(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('seed = 3\n[train]\nsteps = 100\nlr = 0.001\n[balance]\nsampling_strategy = "target:50"\n')
    cfg = build_config(f, ["train.steps=7", "select.min_aux_prob=0.9", "out.overwrite=true"])
    assert (cfg.seed, cfg.train.steps, cfg.train.lr) == (3, 7, 0.001)
    assert cfg.balance.sampling_strategy == "target:50"
    assert cfg.select.min_aux_prob == 0.9 and cfg.out.overwrite is True


def test_set_reads_toml_values_and_falls_back_to_strings():
    assert parse_set("train.steps=5") == {"train": {"steps": 5}}
    assert parse_set("balance.sampling_strategy=not majority") == {"balance": {"sampling_strategy": "not majority"}}
    assert parse_set('balance.sampling_strategy={ "3" = 40 }') == {"balance": {"sampling_strategy": {"3": 40}}}


def test_sampling_strategy_table_from_set():
    cfg = build_config(sets=['balance.sampling_strategy={ "a" = 10, "b" = 12 }'])
    assert cfg.balance.sampling_strategy == {"a": 10, "b": 12}


def test_unknown_key_names_the_key_and_the_accepted_ones():
    with pytest.raises(ConfigError, match=r"Unknown config key 'train\.stepz'.*train\.steps"):
        build_config(sets=["train.stepz=5"])


def test_unknown_section():
    with pytest.raises(ConfigError, match=r"Unknown config key 'trian'"):
        build_config(sets=["trian.steps=5"])


@pytest.mark.parametrize("assignment, message", [
    ("train.steps=-5", r"'train\.steps' setting must be a positive integer\. Got -5 instead"),
    ("train.steps=0", r"'train\.steps' setting must be a positive integer"),
    ("train.steps=true", r"'train\.steps' setting must be a positive integer\. Got True"),
    ("train.device=tpu", r"'train\.device' setting must be 'auto', 'cpu' or 'cuda'\. Got 'tpu'"),
    ("image.size=128", r"'image\.size' setting must be an integer from 8 to 64, or 'auto'"),
    ("image.channels=2", r"'image\.channels' setting must be 1, 3 or 'auto'"),
    ("train.lr=0", r"'train\.lr' setting must be a number in \(0, 1\]"),
    ("select.min_aux_prob=1.5", r"'select\.min_aux_prob' setting must be a number in \[0, 1\]"),
    ("model.variant=stylegan",
     r"'model\.variant' setting must be one of \['acgan', 'cgan', 'cutmix', 'dcgan', 'gan-cls', 'latent-smote', "
     r"'remix'\]\. "
     r"Got 'stylegan'"),
    ("out.overwrite=maybe", r"'out\.overwrite' setting must be true or false"),
])
def test_bad_values_name_key_and_accepted_values(assignment, message):
    with pytest.raises(ConfigError, match=message):
        build_config(sets=[assignment])


def test_set_without_equals():
    with pytest.raises(ConfigError, match="--set takes key=value"):
        build_config(sets=["train.steps"])


def test_bad_toml_file_names_the_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[train\nsteps=1")
    with pytest.raises(ConfigError, match="bad.toml' is not valid TOML"):
        build_config(f)
    with pytest.raises(ConfigError, match="does not exist"):
        build_config(tmp_path / "missing.toml")


def test_every_key_is_documented_with_what_it_accepts():
    keys = config_keys(Config)
    for required in ["seed", "image.size", "image.channels", "model.variant", "model.latent_dim", "train.steps",
                     "train.batch_size", "train.lr", "train.device", "train.checkpoint_every",
                     "balance.sampling_strategy", "select.min_aux_prob", "out.overwrite"]:
        assert required in keys
        assert keys[required].metadata["accepts"]
