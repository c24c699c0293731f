"""Vision Transformer (ViT-S/16-style), the DINO projection head, the CODA dual model and an MAE
decoder, in plain torch.

ViT: Dosovitskiy et al. 2021; DeiT-S (Touvron et al. 2021) is ``dim=384, depth=12, heads=6,
patch=16, image=224`` (``vit_small`` below). Pre-norm blocks ``x + DropPath(Attn(LN(x)))``,
``x + DropPath(MLP(LN(x)))`` with a 4x GELU MLP, a learned class token and learned positional
embeddings (bicubically interpolated for other image sizes, as DINO does for its 96-px local crops),
a final LayerNorm. Parameter names follow timm's layout (``patch_embed.proj``, ``blocks.i.attn.qkv``,
``blocks.i.mlp.fc1``, ...).

DINO head (Caron et al. 2021; CODA ``self_supervised/DINO``): MLP ``dim -> hidden -> hidden ->
bottleneck`` with GELU and no BN (DINO's ``use_bn_in_head`` option adds BN after the hidden
layers; it keeps small-batch training from collapsing), L2-normalisation, then a weight-normalised linear ``bottleneck ->
out_dim`` without bias whose norm ``g`` is fixed to 1: ``y = (V / ||V||_row) z``.

Dual model ("Ymodel", CODA): a frozen foundation ViT returns all tokens after its final norm; a
``Linear(dim, dim)`` projects them; a second stack of ViT blocks (its patch and positional
embedding bypassed) processes the token sequence; its class token feeds ``Linear(dim, classes)``.

MAE (He et al. 2022) for the TTT-MAE baseline (Gandelsman et al. 2022): the ViT encodes a random
25 % of the patches; a light decoder restores the sequence with a mask token and regresses the
per-patch normalised pixels of the masked patches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _trunc_normal(t: torch.Tensor, std: float = 0.02) -> torch.Tensor:
    return nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std)


class DropPath(nn.Module):
    """Stochastic depth per sample: keep a residual branch with probability ``1 - p`` (rescaled)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
        return x * keep / (1 - self.p)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"ViT dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        _trunc_normal(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class ViT(nn.Module):
    """ViT with a class token. ``tokens(x)``: all tokens after the final norm (``B x 1+N x dim``);
    ``forward(x)``: ``head`` of the class token (``Identity`` when ``n_classes == 0``);
    ``block_outputs(x)``: the class token after each block (for CKA)."""

    def __init__(self, image_size: int = 224, patch_size: int = 16, in_channels: int = 3, dim: int = 384,
                 depth: int = 12, heads: int = 6, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 n_classes: int = 0):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"ViT image_size {image_size} is not a multiple of patch_size {patch_size}")
        self.image_size, self.patch_size, self.dim = image_size, patch_size, dim
        self.patch_embed = nn.Module()
        self.patch_embed.proj = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        n = (image_size // patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(Block(dim, heads, mlp_ratio, r) for r in rates)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, n_classes) if n_classes else nn.Identity()
        _trunc_normal(self.pos_embed)
        _trunc_normal(self.cls_token)
        self.apply(_init_weights)

    def _pos(self, h: int, w: int) -> torch.Tensor:
        """Positional embedding for an ``h x w`` patch grid (bicubic interpolation when it differs)."""
        side = self.image_size // self.patch_size
        if h == side and w == side:
            return self.pos_embed
        grid = self.pos_embed[:, 1:].reshape(1, side, side, self.dim).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return torch.cat([self.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h * w, self.dim)], dim=1)

    def patch_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embeddings plus positional embedding, without the class token (``B x N x dim``)."""
        p = self.patch_embed.proj(x)
        h, w = p.shape[-2:]
        return p.flatten(2).transpose(1, 2) + self._pos(h, w)[:, 1:]

    def _with_cls(self, patches: torch.Tensor) -> torch.Tensor:
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(patches.shape[0], -1, -1)
        return torch.cat([cls, patches], dim=1)

    def encode(self, patches: torch.Tensor) -> torch.Tensor:
        """Blocks and final norm over ``[cls, patches]`` (``patches`` already position-embedded)."""
        x = self._with_cls(patches)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(self.patch_tokens(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The class token after the final norm (``B x dim``)."""
        return self.tokens(x)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        out, t = [], self._with_cls(self.patch_tokens(x))
        for blk in self.blocks:
            t = blk(t)
            out.append(t[:, 0])
        out[-1] = self.norm(t)[:, 0]
        return out


def vit_small(**kwargs) -> ViT:
    """DeiT-S / ViT-S/16 at 224 px (the CODA backbone)."""
    return ViT(**{"image_size": 224, "patch_size": 16, "dim": 384, "depth": 12, "heads": 6, **kwargs})


class DINOHead(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 4096, hidden: int = 2048, bottleneck: int = 256,
                 use_bn: bool = False):
        super().__init__()
        norm = (lambda: nn.BatchNorm1d(hidden)) if use_bn else nn.Identity
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), norm(), nn.GELU(), nn.Linear(hidden, hidden), norm(),
                                 nn.GELU(), nn.Linear(hidden, bottleneck))
        self.mlp.apply(_init_weights)
        # weight norm with g fixed to 1: only the direction V of each output row is learned
        self.last_v = nn.Parameter(_trunc_normal(torch.empty(out_dim, bottleneck)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.mlp(x), dim=-1, p=2)
        return F.linear(z, F.normalize(self.last_v, dim=1, p=2))


class DINOModel(nn.Module):
    """Backbone + head over a list of crops (grouped by resolution, DINO's MultiCropWrapper)."""

    def __init__(self, backbone: ViT, head: DINOHead):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, crops: list[torch.Tensor]) -> torch.Tensor:
        out, start = [], 0
        sizes = [c.shape[-1] for c in crops]
        while start < len(crops):  # consecutive crops of one size go through the backbone together
            end = start
            while end < len(crops) and sizes[end] == sizes[start]:
                end += 1
            out.append(self.backbone(torch.cat(crops[start:end])))
            start = end
        return self.head(torch.cat(out))


class DualModel(nn.Module):
    """CODA's Ymodel: frozen ``foundation`` tokens -> Linear(dim, dim) -> task blocks -> CLS -> fc."""

    def __init__(self, foundation: ViT, n_classes: int, depth: int | None = None, heads: int | None = None,
                 mlp_ratio: float = 4.0):
        super().__init__()
        dim = foundation.dim
        self.foundation = foundation
        self.projector = nn.Linear(dim, dim)
        n_heads = heads or foundation.blocks[0].attn.heads
        self.task_blocks = nn.ModuleList(Block(dim, n_heads, mlp_ratio) for _ in range(depth or len(foundation.blocks)))
        self.task_norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, n_classes)
        for m in (self.projector, self.task_blocks, self.task_norm, self.fc):
            m.apply(_init_weights)
        self.freeze_foundation()

    def freeze_foundation(self) -> None:
        for p in self.foundation.parameters():
            p.requires_grad_(False)

    def task_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("foundation.")]

    def train(self, mode: bool = True):
        super().train(mode)
        self.foundation.eval()  # the frozen extractor is always in eval mode (no drop path)
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Class token of the task stack (``B x dim``)."""
        with torch.no_grad():
            t = self.foundation.tokens(x)
        t = self.projector(t)
        for blk in self.task_blocks:
            t = blk(t)
        return self.task_norm(t)[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """``B x C x H x W`` -> ``B x N x (p*p*C)`` in row-major patch order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


class MAEDecoder(nn.Module):
    """Light MAE decoder: ``Linear(dim, dec_dim)``, mask token, positional embedding, blocks,
    ``Linear(dec_dim, p*p*C)``."""

    def __init__(self, encoder: ViT, in_channels: int, dec_dim: int = 128, depth: int = 2, heads: int = 4):
        super().__init__()
        n = (encoder.image_size // encoder.patch_size) ** 2
        self.patch_size = encoder.patch_size
        self.embed = nn.Linear(encoder.dim, dec_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_dim))
        self.pos_embed = nn.Parameter(_trunc_normal(torch.zeros(1, n + 1, dec_dim)))
        self.blocks = nn.ModuleList(Block(dec_dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dec_dim, eps=1e-6)
        self.pred = nn.Linear(dec_dim, encoder.patch_size ** 2 * in_channels)
        _trunc_normal(self.mask_token)
        self.apply(_init_weights)

    def forward(self, latent: torch.Tensor, keep: torch.Tensor, n: int) -> torch.Tensor:
        b = latent.shape[0]
        z = self.embed(latent)
        full = self.mask_token.expand(b, n, -1).clone()
        full.scatter_(1, keep[..., None].expand(-1, -1, z.shape[-1]), z[:, 1:])
        x = torch.cat([z[:, :1], full], dim=1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.pred(self.norm(x))[:, 1:]


def mae_loss(encoder: ViT, decoder: MAEDecoder, x: torch.Tensor, mask_ratio: float,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """MAE loss: mean squared error on the masked patches of per-patch normalised pixels.

    A random ``mask_ratio`` of the patches of each image is hidden (``argsort`` of uniform noise);
    the encoder sees the rest; targets are ``(patch - mean) / sqrt(var + 1e-6)`` per patch.
    """
    patches = encoder.patch_tokens(x)
    b, n, _ = patches.shape
    n_keep = max(1, int(round(n * (1 - mask_ratio))))
    noise = torch.rand(b, n, device=x.device, generator=generator)
    keep = noise.argsort(dim=1)[:, :n_keep]
    visible = torch.gather(patches, 1, keep[..., None].expand(-1, -1, patches.shape[-1]))
    pred = decoder(encoder.encode(visible), keep, n)
    target = patchify(x, encoder.patch_size)
    target = (target - target.mean(-1, keepdim=True)) / torch.sqrt(target.var(-1, keepdim=True) + 1e-6)
    masked = torch.ones(b, n, device=x.device)
    masked.scatter_(1, keep, 0.0)
    per_patch = ((pred - target) ** 2).mean(-1)
    return (per_patch * masked).sum() / masked.sum()


def vit_param_count(image_size: int, patch_size: int, in_channels: int, dim: int, depth: int,
                    mlp_ratio: float = 4.0, n_classes: int = 0) -> int:
    """Parameters of ``ViT`` from its specification (for tests and docs)."""
    n = (image_size // patch_size) ** 2
    hidden = int(dim * mlp_ratio)
    block = 2 * 2 * dim + (dim * 3 * dim + 3 * dim) + (dim * dim + dim) + (dim * hidden + hidden) + (hidden * dim + dim)
    head = dim * n_classes + n_classes if n_classes else 0
    return in_channels * patch_size ** 2 * dim + dim + dim + (n + 1) * dim + depth * block + 2 * dim + head


__all__ = ["ViT", "vit_small", "DINOHead", "DINOModel", "DualModel", "MAEDecoder", "mae_loss", "patchify",
           "vit_param_count", "DropPath"]
