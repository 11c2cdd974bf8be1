import torch

from augment.diffaugment import cutout, diff_augment, parse_policy, translation


def test_same_generator_state_gives_the_same_augmentation():
    x = torch.randn(4, 3, 16, 16)
    a = diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(0))
    b = diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape and not torch.equal(a, x)


def test_translation_moves_content_within_bounds():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 8, 8] = 1
    out = translation(x, torch.Generator().manual_seed(1))
    pos = out[:, 0].flatten(1).argmax(1)
    rows, cols = pos // 16, pos % 16
    assert ((rows - 8).abs() <= 2).all() and ((cols - 8).abs() <= 2).all()
    assert (rows != 8).any() or (cols != 8).any()
    assert torch.allclose(out.sum(dim=(1, 2, 3)), torch.ones(64))  # a 2-pixel shift keeps the centre pixel


def test_cutout_zeroes_a_square_of_half_the_side():
    x = torch.ones(8, 1, 16, 16)
    out = cutout(x, torch.Generator().manual_seed(2))
    zeroed = (out == 0).flatten(1).sum(1)
    assert (zeroed > 0).all() and (zeroed <= 64).all()


def test_gradients_flow_through():
    x = torch.randn(2, 1, 8, 8, requires_grad=True)
    diff_augment(x, parse_policy("color, translation,cutout"), torch.Generator().manual_seed(0)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
