import torch

from augment.checkpoint import file_sha256, generator_sha256, load_checkpoint, load_with_sha256, save_checkpoint


def test_generator_digest_follows_the_weights_not_the_file_bytes(tmp_path):
    g = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16)}
    state = {"generator": g, "generator_ema": None, "optimizer": {"step": 1}}
    save_checkpoint(state, tmp_path / "a.pt")
    save_checkpoint({**state, "optimizer": {"step": 1, "note": "written elsewhere"}}, tmp_path / "b.pt")
    assert file_sha256(tmp_path / "a.pt") != file_sha256(tmp_path / "b.pt")
    assert generator_sha256(load_checkpoint(tmp_path / "a.pt")) == generator_sha256(load_checkpoint(tmp_path / "b.pt"))
    save_checkpoint({**state, "generator_ema": {**g, "w": g["w"] + 1}}, tmp_path / "c.pt")  # the EMA weights count
    assert generator_sha256(load_checkpoint(tmp_path / "c.pt")) != generator_sha256(load_checkpoint(tmp_path / "a.pt"))


def test_one_read_gives_the_state_and_the_file_digest(tmp_path):
    save_checkpoint({"generator": {"w": torch.ones(3)}, "step": 7}, tmp_path / "a.pt")
    state, sha256 = load_with_sha256(tmp_path / "a.pt")
    assert sha256 == file_sha256(tmp_path / "a.pt")
    assert state["step"] == 7 and torch.equal(state["generator"]["w"], torch.ones(3))
