import pytest

from augment.data.names import class_dirs, safe_component


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".", "", "a\\b", "x\x00y", "\x1b[31mred", "/etc/passwd",
                                  "C:evil", "  ", "..\\..\\win", "con", "a" * 300])
def test_safe_component_is_one_plain_path_component(name, tmp_path):
    s = safe_component(name, fallback="class_0")
    assert s and s not in (".", "..")
    assert "/" not in s and "\\" not in s and "\x00" not in s
    assert not s.startswith(".")
    assert len(s.encode()) <= 80
    # as a path under tmp_path it stays directly inside it
    assert (tmp_path / s).resolve().parent == tmp_path.resolve()


def test_examples():
    assert safe_component("../x") == "_x"
    assert safe_component("a/b") == "a_b"
    assert safe_component("") == "unnamed"
    assert safe_component("cat") == "cat"
    assert safe_component("chat noir") == "chat noir"


def test_class_dirs_are_unique_even_when_names_collide():
    dirs = class_dirs(["a/b", "a_b", "A_B", "", "."])
    assert len(set(d.lower() for d in dirs)) == 5
    assert dirs[0] == "a_b" and dirs[1] == "a_b-2"
    assert dirs[3] == "class_3" and dirs[4] == "class_4"


def test_a_class_named_like_the_metadata_file_beside_the_class_folders_gets_its_own_folder():
    assert class_dirs(["metadata.csv", "cat"]) == ["metadata.csv-2", "cat"]
