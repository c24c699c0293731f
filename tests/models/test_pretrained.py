"""Pretrained weights from local files: the published key lists and shapes of timm DeiT-S/16, DINO
ViT-S/16 and torchvision ResNet18 (built here by hand, no download), .pth and .safetensors,
channel and position-embedding adaptation, and errors that name the keys."""

import math

import numpy as np
import pytest
import torch

from cellbench.models import ResNet18
from cellbench.models.pretrained import (adapt_input_channels, load_resnet18, load_state_dict, load_vit,
                                         read_safetensors, resize_pos_embed, write_safetensors)
from cellbench.models.vit import ViT


def deit_small_shapes(head: bool = True) -> dict[str, tuple]:
    """timm ``deit_small_patch16_224`` / DINO ``dino_deitsmall16_pretrain`` parameter shapes."""
    d, h = 384, 1536
    shapes = {"cls_token": (1, 1, d), "pos_embed": (1, 197, d), "patch_embed.proj.weight": (d, 3, 16, 16),
              "patch_embed.proj.bias": (d,)}
    for i in range(12):
        b = f"blocks.{i}."
        shapes |= {b + "norm1.weight": (d,), b + "norm1.bias": (d,), b + "attn.qkv.weight": (3 * d, d),
                   b + "attn.qkv.bias": (3 * d,), b + "attn.proj.weight": (d, d), b + "attn.proj.bias": (d,),
                   b + "norm2.weight": (d,), b + "norm2.bias": (d,), b + "mlp.fc1.weight": (h, d),
                   b + "mlp.fc1.bias": (h,), b + "mlp.fc2.weight": (d, h), b + "mlp.fc2.bias": (d,)}
    shapes |= {"norm.weight": (d,), "norm.bias": (d,)}
    if head:
        shapes |= {"head.weight": (1000, d), "head.bias": (1000,)}
    return shapes


def torchvision_resnet18_shapes() -> dict[str, tuple]:
    def bn(p, c):
        return {p + "weight": (c,), p + "bias": (c,), p + "running_mean": (c,), p + "running_var": (c,),
                p + "num_batches_tracked": ()}
    shapes = {"conv1.weight": (64, 3, 7, 7), **bn("bn1.", 64)}
    c_in = 64
    for k, c in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            p = f"layer{k}.{i}."
            shapes |= {p + "conv1.weight": (c, c_in if i == 0 else c, 3, 3), **bn(p + "bn1.", c),
                       p + "conv2.weight": (c, c, 3, 3), **bn(p + "bn2.", c)}
            if i == 0 and k > 1:
                shapes |= {p + "downsample.0.weight": (c, c_in, 1, 1), **bn(p + "downsample.1.", c)}
        c_in = c
    return shapes | {"fc.weight": (1000, 512), "fc.bias": (1000,)}


def _random(shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randint(0, 100, s, generator=g) if k.endswith("num_batches_tracked") else
                torch.rand(s, generator=g) + 0.5 if k.endswith("running_var") else
                torch.randn(s, generator=g)) for k, s in shapes.items()}


@pytest.fixture(scope="module")
def deit():
    return _random(deit_small_shapes())


def test_deit_pth_and_dino_safetensors_load_into_vit_small(tmp_path, deit):
    torch.save({"model": deit}, tmp_path / "deit_small_patch16_224.pth")  # the DeiT release wraps in "model"
    vit = load_vit(ViT(), tmp_path / "deit_small_patch16_224.pth")
    assert torch.equal(vit.blocks[11].mlp.fc2.weight, deit["blocks.11.mlp.fc2.weight"])
    assert torch.equal(vit.pos_embed, deit["pos_embed"])
    dino = {k: v for k, v in deit.items() if not k.startswith("head.")}
    write_safetensors(dino, tmp_path / "dino_vits16.safetensors")
    back = read_safetensors(tmp_path / "dino_vits16.safetensors")
    assert set(back) == set(dino) and all(torch.equal(back[k], dino[k]) for k in dino)
    vit2 = load_vit(ViT(), tmp_path / "dino_vits16.safetensors")
    x = torch.randn(1, 3, 224, 224)
    torch.testing.assert_close(vit.eval().features(x), vit2.eval().features(x))
    torch.save({"teacher": {f"module.backbone.{k}": v for k, v in dino.items()}}, tmp_path / "dino_full.pth")
    assert torch.equal(load_vit(ViT(), tmp_path / "dino_full.pth").cls_token, deit["cls_token"])


def test_channels_and_image_size_adapted(tmp_path, deit):
    torch.save(deit, tmp_path / "deit.pth")
    vit = load_vit(ViT(image_size=64, in_channels=5), tmp_path / "deit.pth")
    w = deit["patch_embed.proj.weight"]
    expected = torch.cat([w, w], dim=1)[:, :5] * (3 / 5)
    torch.testing.assert_close(vit.patch_embed.proj.weight, expected)
    assert vit.pos_embed.shape == (1, 17, 384)
    torch.testing.assert_close(vit.pos_embed[:, 0], deit["pos_embed"][:, 0])
    # a constant image: with 6 channels (a multiple of 3) the adapted layer answers as the RGB one on grey
    rgb = torch.nn.functional.conv2d(torch.ones(1, 3, 16, 16), w)
    six = torch.nn.functional.conv2d(torch.ones(1, 6, 16, 16), adapt_input_channels(w, 6))
    torch.testing.assert_close(rgb, six, rtol=1e-4, atol=1e-3)
    assert torch.equal(adapt_input_channels(w, 1), w.sum(1, keepdim=True))
    # bicubic resize of a grid that is linear in position stays linear in the interior
    side = 14
    yy, xx = torch.meshgrid(torch.arange(side, dtype=torch.float32), torch.arange(side, dtype=torch.float32),
                            indexing="ij")
    pos = torch.cat([torch.zeros(1, 1, 1), (yy + 2 * xx).reshape(1, -1, 1)], dim=1)
    same = resize_pos_embed(pos, side)
    assert same is pos and resize_pos_embed(pos, 7).shape == (1, 50, 1)


def test_errors_name_missing_unexpected_and_misshaped_keys(tmp_path, deit):
    bad = dict(deit)
    del bad["blocks.3.attn.qkv.bias"]
    bad["blocks.0.attn.extra"] = torch.zeros(1)
    bad["norm.weight"] = torch.zeros(10)
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as err:
        load_vit(ViT(), tmp_path / "bad.pth")
    msg = str(err.value)
    assert "missing keys ['blocks.3.attn.qkv.bias']" in msg and "unexpected keys ['blocks.0.attn.extra']" in msg
    assert "norm.weight: file (10,), model (384,)" in msg and "bad.pth" in msg
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="expected a state dict of tensors, found Tensor"):
        load_state_dict(tmp_path / "tensor.pth")
    (tmp_path / "pickle.pth").write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="not a readable weights-only torch file"):
        load_state_dict(tmp_path / "pickle.pth")
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_state_dict(tmp_path / "nothere.pth")


def test_torchvision_resnet18_layout(tmp_path):
    tv = _random(torchvision_resnet18_shapes(), seed=1)
    torch.save(tv, tmp_path / "resnet18.pth")
    model = load_resnet18(ResNet18(in_channels=3, n_classes=5), tmp_path / "resnet18.pth")
    assert torch.equal(model.stages[2][0].down[0].weight, tv["layer3.0.downsample.0.weight"])
    assert torch.equal(model.stem[1].running_var, tv["bn1.running_var"])
    four = load_resnet18(ResNet18(in_channels=4, n_classes=5), tmp_path / "resnet18.pth")
    w = tv["conv1.weight"]
    torch.testing.assert_close(four.stem[0].weight, torch.cat([w, w], 1)[:, :4] * 0.75)
    with pytest.raises(ValueError, match=r"mis-shaped keys .*stages.0.0.bn1.bias: file \(64,\), model \(16,\)"):
        load_resnet18(ResNet18(in_channels=3, n_classes=5, width=0.25), tmp_path / "resnet18.pth")
    assert math.isfinite(float(model.eval()(torch.randn(2, 3, 64, 64)).sum()))
    assert np.isfinite(four.eval().embed(torch.randn(1, 4, 64, 64))["res4a"].detach().numpy()).all()
