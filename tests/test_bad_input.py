"""Every bad input ends in a DatasetError that names the file (or row, or key) and says what to do."""

import os

import numpy as np
import pytest
from makers import make_image_folder, make_manifest, make_npz, pattern
from PIL import Image

from augment.config import ImageConfig
from augment.data import load_dataset
from augment.errors import DatasetError


@pytest.fixture
def folder(tmp_path):
    return make_image_folder(tmp_path / "ds", {"a": 3, "b": 3}, size=8)


def test_truncated_png_names_the_file(folder):
    good = (folder / "a" / "img000.png").read_bytes()
    (folder / "a" / "broken.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match=r"broken\.png' cannot be decoded.*Remove or replace the file"):
        load_dataset(str(folder))


def test_truncated_jpeg_names_the_file(folder):
    pattern(5, 64, "RGB").save(folder / "a" / "photo.jpg", quality=90)
    data = (folder / "a" / "photo.jpg").read_bytes()
    (folder / "a" / "photo.jpg").write_bytes(data[:200])
    with pytest.raises(DatasetError, match=r"photo\.jpg' cannot be decoded"):
        load_dataset(str(folder))


def test_text_file_named_png(folder):
    (folder / "b" / "notes.png").write_text("this is not an image")
    with pytest.raises(DatasetError, match=r"notes\.png' cannot be decoded as an image"):
        load_dataset(str(folder))


def test_empty_file(folder):
    (folder / "b" / "empty.png").write_bytes(b"")
    with pytest.raises(DatasetError, match=r"empty\.png' is empty \(0 bytes\)"):
        load_dataset(str(folder))


def test_non_image_file_in_class_folder_is_skipped_and_reported(folder):
    (folder / "a" / "README.txt").write_text("labels by hand")
    data = load_dataset(str(folder))
    assert len(data) == 6
    assert data.notes["skipped_files"] == 1 and data.notes["skipped_examples"] == ["a/README.txt"]


def test_empty_class_folder(folder):
    (folder / "c").mkdir()
    with pytest.raises(DatasetError, match=r"Class folder '.*c' holds no image files.*Add images or remove the folder"):
        load_dataset(str(folder))


def test_class_with_a_single_image(folder):
    d = folder / "lonely"
    d.mkdir()
    pattern(50).save(d / "only.png")
    with pytest.raises(DatasetError, match=r"Class 'lonely' has a single image \('.*only\.png'\); at least 2"):
        load_dataset(str(folder))


def test_folder_without_classes_or_images(tmp_path):
    with pytest.raises(DatasetError, match="Couldn't find any class folder or image"):
        load_dataset(str(tmp_path))


def test_missing_spec():
    with pytest.raises(DatasetError, match=r"'/no/such/data' does not exist\. SPEC must be"):
        load_dataset("/no/such/data")


def test_unknown_format(tmp_path):
    (tmp_path / "data.h5").write_bytes(b"x")
    with pytest.raises(DatasetError, match="not a format augment reads"):
        load_dataset(str(tmp_path / "data.h5"))


def test_manifest_row_whose_file_is_missing(tmp_path):
    m = make_manifest(tmp_path, [("a1.png", "a"), ("a2.png", "a"), ("b1.png", "b"), ("b2.png", "b")])
    (tmp_path / "b1.png").unlink()
    with pytest.raises(DatasetError, match=r"manifest\.csv' line 4: file 'b1\.png' does not exist"):
        load_dataset(str(m))


def test_manifest_without_label_column(tmp_path):
    (tmp_path / "m.csv").write_text("file,class\na.png,x\n")
    with pytest.raises(DatasetError, match=r"lacks column\(s\) \['path', 'label'\]; it has \['file', 'class'\]"):
        load_dataset(str(tmp_path / "m.csv"))


def test_manifest_empty_label_and_duplicate_rows(tmp_path):
    m = make_manifest(tmp_path, [("a1.png", "a"), ("a2.png", ""), ("b1.png", "b")])
    with pytest.raises(DatasetError, match=r"line 3: empty 'label' for 'a2\.png'"):
        load_dataset(str(m))
    m = make_manifest(tmp_path, [("a1.png", "a"), ("a1.png", "a"), ("b1.png", "b")], name="dup.csv")
    with pytest.raises(DatasetError, match=r"lines 2 and 3 both name"):
        load_dataset(str(m))


def test_symlink_pointing_outside_the_dataset(folder, tmp_path):
    outside = tmp_path / "secret.png"
    pattern(9).save(outside)
    os.symlink(outside, folder / "a" / "link.png")
    with pytest.raises(DatasetError, match=r"link\.png' is a link to '.*secret\.png', outside the dataset folder"):
        load_dataset(str(folder))


def test_image_bomb_is_refused_before_decoding(folder):
    Image.new("L", (4000, 4000)).save(folder / "a" / "huge.png")
    with pytest.raises(DatasetError, match=r"huge\.png' is 4000x4000 = 16000000 pixels, over the limit of 1000000"):
        load_dataset(str(folder), ImageConfig(max_pixels=1_000_000))


def test_npz_with_float_images(tmp_path):
    np.savez(tmp_path / "f.npz", x=np.zeros((4, 8, 8), np.float32), y=np.array([0, 0, 1, 1]))
    with pytest.raises(DatasetError, match=r"images must be uint8, got float32"):
        load_dataset(str(tmp_path / "f.npz"))


def test_npz_with_pickled_objects_is_not_unpickled(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([object()] * 4, dtype=object), y=np.array([0, 0, 1, 1]))
    with pytest.raises(DatasetError, match="cannot be read without unpickling objects"):
        load_dataset(str(tmp_path / "o.npz"))


def test_npz_with_wrong_keys_and_shapes(tmp_path):
    make_npz(tmp_path / "k.npz", [2, 2], keys=("images", "labels"))
    expected = r"has arrays \['images', 'labels'\]; expected 'x'/'y' or 'x_train'/'y_train'"
    with pytest.raises(DatasetError, match=expected):
        load_dataset(str(tmp_path / "k.npz"))
    np.savez(tmp_path / "s.npz", x=np.zeros((4, 8, 8), np.uint8), y=np.array([0, 1, 1]))
    with pytest.raises(DatasetError, match=r"labels must have shape \(4,\)"):
        load_dataset(str(tmp_path / "s.npz"))


def test_npz_single_sample_class(tmp_path):
    make_npz(tmp_path / "one.npz", [3, 1])
    with pytest.raises(DatasetError, match=r"Class '1' has a single image \(index 3\)"):
        load_dataset(str(tmp_path / "one.npz"))


def test_torchvision_dataset_not_on_disk_is_never_downloaded(tmp_path):
    with pytest.raises(DatasetError, match=r"MNIST is not in .*augment never downloads"):
        load_dataset(f"torchvision:MNIST:{tmp_path}")
    assert not any(tmp_path.rglob("*.gz"))
    with pytest.raises(DatasetError, match="torchvision dataset 'SVHN' is not supported"):
        load_dataset(f"torchvision:SVHN:{tmp_path}")
