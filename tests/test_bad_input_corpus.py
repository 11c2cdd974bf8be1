"""The rest of the bad-input corpus: every case ends in a clear error or a normalisation that
dataset.json reports."""

import os
import pickle

import numpy as np
import pytest
from makers import KEEP_ALL, make_image_folder, make_manifest, pattern, tiny_config
from PIL import Image

from augment.data import load_dataset
from augment.errors import DatasetError
from augment.pipeline import run_pipeline


def test_cmyk_images_are_converted_and_reported(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8, mode="RGB")
    pattern(9, 8, "RGB").convert("CMYK").save(tmp_path / "a" / "print.jpg")
    data = load_dataset(str(tmp_path))
    assert data.notes["source_modes"]["CMYK"] == 1 and data.channels == 3


def test_a_photo_taken_sideways_is_read_upright_by_its_exif_orientation(tmp_path):
    """Orientation 6 (the camera held turned): a viewer, and so augment, shows the image rotated 90 degrees."""
    top_bright = np.zeros((8, 8, 3), np.uint8)
    top_bright[:2] = 250  # bright top rows as stored on disk
    im = Image.fromarray(top_bright)
    exif = im.getexif()
    exif[0x0112] = 6
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8, mode="RGB")
    im.save(tmp_path / "a" / "sideways.png", exif=exif.tobytes())
    data = load_dataset(str(tmp_path))
    row = data.sample_ids.index(next(i for i in data.sample_ids if "sideways" in i))
    upright = data.images[row].float().mean(0)
    assert upright[:, -2:].mean() > 200 and upright[:, :2].mean() < 50  # the bright edge is now on the right
    assert data.notes["exif_rotated_upright"] == 1


def test_a_palette_image_with_a_transparent_colour_keeps_its_colours_and_drops_the_alpha(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8, mode="RGB")
    icon = Image.new("P", (8, 8), 0)
    icon.putpalette([200, 10, 10] + [10, 10, 200] + [0, 0, 0] * 254)
    icon.paste(1, (0, 0, 8, 4))  # top half blue, bottom half red; red is the transparent entry
    icon.info["transparency"] = 0
    icon.save(tmp_path / "a" / "icon.png", transparency=0)
    data = load_dataset(str(tmp_path))
    pixels = data.images[data.sample_ids.index(next(i for i in data.sample_ids if "icon" in i))]
    assert pixels[:, 0, 0].tolist() == [10, 10, 200] and pixels[:, 7, 0].tolist() == [200, 10, 10]
    assert data.notes["source_modes"]["P"] == 1 and data.channels == 3


def test_progressive_jpeg_and_16_bit_png_keep_their_content(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8, mode="RGB")
    pattern(3, 8, "RGB").save(tmp_path / "a" / "web.jpg", progressive=True, quality=95)
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)  # 0 .. 63,000 of 65,535
    Image.fromarray(ramp).save(tmp_path / "b" / "scan.png")
    data = load_dataset(str(tmp_path))
    scan = data.images[data.sample_ids.index(next(i for i in data.sample_ids if "scan" in i))].float().mean(0)
    assert scan.max() > 200 and scan.min() < 10 and len(scan.unique()) > 30  # scaled, not clipped to white
    assert data.notes["source_modes"]["I;16"] == 1


@pytest.mark.parametrize("width,height", [(10_000, 1), (1, 300), (3, 3)])
def test_a_strip_or_speck_of_an_image_is_refused_by_name(tmp_path, width, height):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    Image.new("L", (width, height), 128).save(tmp_path / "a" / "strip.png")
    with pytest.raises(DatasetError, match=rf"strip\.png' is {width}x{height}: its shorter side is under 4 pixels"):
        load_dataset(str(tmp_path))


def test_a_panorama_is_cropped_to_its_centre_square_and_counted_as_resized(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    wide = np.zeros((8, 10_000), np.uint8)
    wide[:, 4_996:5_004] = 255  # only the centre square is white
    Image.fromarray(wide).save(tmp_path / "a" / "panorama.png")
    data = load_dataset(str(tmp_path))
    pano = data.images[data.sample_ids.index(next(i for i in data.sample_ids if "panorama" in i))]
    assert pano.shape == (1, 8, 8) and pano.min() == 255
    assert data.notes["resized"] == 1


def test_thousands_of_classes_with_two_images_each_load_and_plan_in_seconds(tmp_path):
    import time

    from augment.dry_run import dry_run

    make_image_folder(tmp_path / "ds", {f"c{i:04d}": 2 for i in range(2_000)}, size=8)
    start = time.monotonic()
    data = load_dataset(str(tmp_path / "ds"))
    assert len(data.class_names) == 2_000 and data.counts() == [2] * 2_000
    plan = dry_run(str(tmp_path / "ds"), tiny_config(), tmp_path / "out")
    assert time.monotonic() - start < 60 and not (tmp_path / "out").exists()
    assert len(plan.classes) == 2_000 and plan.gans == 1


def test_animated_gif_uses_its_first_frame_and_says_so(tmp_path):
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)) for v in (10, 200, 90)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    m = make_manifest(tmp_path, [("anim.gif", "a"), ("x.png", "a"), ("y.png", "b"), ("z.png", "b")])
    data = load_dataset(str(m))
    assert data.notes["multi_frame_first_frame_used"] == 1
    assert data.images[0].unique().tolist() == [10]


def test_gif_in_a_class_folder_is_skipped_like_any_non_image_extension(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    Image.new("L", (8, 8)).save(tmp_path / "a" / "extra.gif")
    assert load_dataset(str(tmp_path)).notes["skipped_examples"] == ["a/extra.gif"]


def test_duplicate_files_are_kept_and_counted(tmp_path):
    make_image_folder(tmp_path, {"a": 2, "b": 2}, size=8)
    (tmp_path / "a" / "copy.png").write_bytes((tmp_path / "a" / "img000.png").read_bytes())
    assert load_dataset(str(tmp_path)).notes["duplicate_images"] == 1


def test_manifest_paths_outside_its_folder_need_the_flag(tmp_path):
    outside = tmp_path / "elsewhere" / "o.png"
    outside.parent.mkdir()
    pattern(1).save(outside)
    rows = [(str(outside), "a"), ("a.png", "a"), ("b1.png", "b"), ("b2.png", "b")]
    m = make_manifest(tmp_path / "m", rows)
    with pytest.raises(DatasetError, match=r"line 2: '.*o\.png' resolves to .* outside the manifest's folder.*"
                                           r"data.allow_outside_root = true"):
        load_dataset(str(m))
    assert len(load_dataset(str(m), allow_outside_root=True)) == 4
    (tmp_path / "m" / "up.csv").write_text("path,label\n../elsewhere/o.png,a\na.png,a\nb1.png,b\nb2.png,b\n")
    with pytest.raises(DatasetError, match=r"'\.\./elsewhere/o\.png' resolves to"):
        load_dataset(str(tmp_path / "m" / "up.csv"))


@pytest.mark.parametrize("label", ["a/../../etc", "x\x00y", "tab\there\x1b[0m", "é" * 200, "..", "CON"])
def test_hostile_labels_become_safe_folders(tmp_path, label):
    rows = [(f"i{i}.png", lab) for i, lab in enumerate([label, label, "ok", "ok"])]
    m = make_manifest(tmp_path / "src", rows)
    run_pipeline(str(m), tiny_config(*KEEP_ALL), tmp_path / "out")
    written = [p for p in (tmp_path / "out" / "images").rglob("*") if p.is_file()]
    assert written and all(p.resolve().is_relative_to((tmp_path / "out").resolve()) for p in written)
    assert all(len(p.parent.name.encode()) <= 80 and "\x00" not in str(p) for p in written)
    assert not (tmp_path / "etc").exists()


def _cifar_batch(path, n, rng):
    with open(path, "wb") as fh:
        pickle.dump({"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "labels": list(np.arange(n) % 10)}, fh)


def test_cifar10_batches_load_without_running_pickled_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(folder / f"data_batch_{i}", 20, rng)
    _cifar_batch(folder / "test_batch", 10, rng)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                     "truck"]}, fh)
    data = load_dataset(f"torchvision:CIFAR10:{tmp_path}")
    assert data.images.shape == (100, 3, 32, 32) and data.class_names[0] == "airplane"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    with open(folder / "data_batch_3", "wb") as fh:
        pickle.dump({"data": Evil(), "labels": []}, fh)
    with pytest.raises(DatasetError, match=r"data_batch_3' is not a CIFAR-10 batch that can be read safely "
                                           r"\(refused to load posix.system\)"):
        load_dataset(f"torchvision:CIFAR10:{tmp_path}")
    assert not (tmp_path / "pwned").exists()


def test_sources_never_unpickle_or_eval_inputs():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "augment"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert "eval(" not in text.replace(".eval(", ""), path
        assert "pickle.load(" not in text and "pickle.loads(" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line}"
