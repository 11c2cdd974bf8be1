"""The README's settings table is generated from augment/config.py and must match it."""

from pathlib import Path

import pytest

from augment import config_table
from augment.config import config_keys

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_the_generated_one():
    text = README.read_text()
    assert config_table.replace_between_markers(text, config_table.markdown()) == text, (
        "README.md's settings table differs from augment/config.py: run `python -m augment.config_table --write`")


def test_every_setting_has_a_row_with_what_it_does():
    table = config_table.markdown()
    for key, field in config_keys().items():
        assert f"| `{key}` |" in table
        assert field.metadata["doc"], f"{key} has no description for the README"


def test_replacing_needs_both_markers():
    with pytest.raises(ValueError, match="markers"):
        config_table.replace_between_markers("no markers here", "| table |")


def test_readme_stays_a_manual():
    assert len(README.read_bytes()) <= 25_000, "README.md is over 25,000 bytes: move measurements to docs/"
