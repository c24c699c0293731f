"""DINO self-distillation pieces as pure functions: loss, centring, EMA, schedules, multi-crop views.

Caron et al. 2021, "Emerging properties in self-supervised vision transformers", and the CODA
(seed 001) settings in METHODS.md section 4:

* loss: for teacher views ``t`` (the global crops) and student views ``s != t`` (all crops),
  ``H(P_t, P_s) = -sum_k P_t[k] log P_s[k]`` with ``P_t = softmax((g_t - c) / tau_t)`` (no gradient)
  and ``P_s = softmax(g_s / tau_s)``, averaged over images and over the ``2 * n_crops - 2`` pairs;
* centre: ``c <- m c + (1 - m) mean_batch(g_teacher)`` with ``m = 0.9``;
* teacher EMA: ``theta_t <- lambda theta_t + (1 - lambda) theta_s``, lambda cosine 0.996 -> 1;
* schedules: linear warm-up, then ``final + (base - final) (1 + cos(pi i / I)) / 2``;
* views: 2 global + ``n_local`` local random crops (no rescale: CODA's JUMP strategy), flips on all,
  intensity jitter on the globals, per-image per-channel z-score ("SelfNormalize").
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellbench.training.augment import random_crop, random_flips


def dino_loss(student_out: torch.Tensor, teacher_out: torch.Tensor, center: torch.Tensor, n_crops: int,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """Cross-entropy between centred, sharpened teacher and student distributions.

    ``student_out``: ``(n_crops * B) x K`` (crop-major: all images' crop 0, then crop 1, ...);
    ``teacher_out``: ``(2 * B) x K`` for the two global crops. Pairs of the same view are skipped.
    """
    if student_out.shape[0] % n_crops or teacher_out.shape[0] * n_crops != student_out.shape[0] * 2:
        raise ValueError(f"dino_loss: {student_out.shape[0]} student rows are not {n_crops} crops of the "
                         f"{teacher_out.shape[0] // 2} images the teacher saw")
    s = (student_out / student_temp).chunk(n_crops)
    t = F.softmax((teacher_out - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, pairs = student_out.new_zeros(()), 0
    for iq, q in enumerate(t):
        for v in range(n_crops):
            if v == iq:
                continue
            total = total + torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
            pairs += 1
    return total / pairs


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_out: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """``m c + (1 - m) mean(teacher_out)`` (a new tensor, shape ``1 x K``)."""
    return center * momentum + teacher_out.mean(dim=0, keepdim=True) * (1 - momentum)


@torch.no_grad()
def ema_update(student: nn.Module, teacher: nn.Module, momentum: float) -> None:
    """``theta_t <- m theta_t + (1 - m) theta_s`` for every parameter (buffers are not averaged)."""
    for ps, pt in zip(student.parameters(), teacher.parameters()):
        pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


def cosine_schedule(base: float, final: float, total: int, warmup: int = 0, warmup_start: float = 0.0) -> np.ndarray:
    """Per-iteration values: linear ``warmup_start -> base`` over ``warmup`` iterations, then cosine to ``final``."""
    if total <= 0:
        raise ValueError(f"schedule length must be positive, got {total}")
    warmup = min(int(warmup), total)
    ramp = np.linspace(warmup_start, base, warmup, endpoint=False) if warmup else np.zeros(0)
    i = np.arange(total - warmup)
    cos = final + 0.5 * (base - final) * (1 + np.cos(np.pi * i / max(len(i), 1)))
    return np.concatenate([ramp, cos])


def teacher_temperature(total: int, warmup_temp: float = 0.04, temp: float = 0.07, warmup: int = 0) -> np.ndarray:
    """Teacher temperature per iteration: linear ``warmup_temp -> temp`` over ``warmup``, then constant."""
    warmup = min(int(warmup), total)
    return np.concatenate([np.linspace(warmup_temp, temp, warmup), np.full(total - warmup, temp)])


def self_normalize(x: torch.Tensor) -> torch.Tensor:
    """Per image and channel ``(x - mean) / (std + 1e-6)`` (CODA's SelfNormalize)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    std = x.std(dim=(2, 3), keepdim=True)
    return (x - mean) / (std + 1e-6)


def intensity_jitter(x: torch.Tensor, rng: np.random.Generator, p: float = 0.5, sigma: float = 0.005) -> torch.Tensor:
    """CODA's RandomIntensityBrightness on ``[0, 1]`` images: with probability ``p`` per image, per
    channel ``clip((x + N(0, sigma)) ** clip(N(1, sigma), 1 - sigma, 1 + sigma), 0, 1)``."""
    n, c = x.shape[:2]
    apply = torch.from_numpy(rng.random(n) < p)[:, None, None, None]
    shift = torch.from_numpy(rng.normal(0, sigma, (n, c, 1, 1)).astype(np.float32))
    gamma = torch.from_numpy(np.clip(rng.normal(1, sigma, (n, c, 1, 1)), 1 - sigma, 1 + sigma).astype(np.float32))
    y = torch.clamp(x + shift, 0, 1) ** gamma
    return torch.where(apply, torch.clamp(y, 0, 1), x)


def _crops(x: torch.Tensor, size: int, rng: np.random.Generator) -> torch.Tensor:
    return random_flips(random_crop(x, size, rng), rng)


def multicrop(anchor: torch.Tensor, rng: np.random.Generator, global_size: int, local_size: int, n_local: int,
              partner: torch.Tensor | None = None, jitter_sigma: float = 0.005) -> list[torch.Tensor]:
    """``[global_1, global_2, local_1..local_n]``, each ``B x C x s x s`` and self-normalised.

    Without ``partner`` every view comes from ``anchor``. With a cross-batch ``partner`` (CODA's
    CB pairs) global_1 and the first half of the locals come from the anchor, global_2 and the
    second half from the partner.
    """
    other = anchor if partner is None else partner
    views = [intensity_jitter(_crops(src, global_size, rng), rng, sigma=jitter_sigma) for src in (anchor, other)]
    half = (n_local + 1) // 2
    views += [_crops(anchor if k < half else other, local_size, rng) for k in range(n_local)]
    return [self_normalize(v) for v in views]


def eval_view(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of ``size`` then self-normalisation (the evaluation transform)."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return self_normalize(x[..., top:top + size, left:left + size])
