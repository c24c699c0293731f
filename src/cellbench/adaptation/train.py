"""Training loops of the CODA family (seed 001): DINO pre-training and adaptation, the dual model,
the supervised ViT baseline, MAE pre-training and TTT-MAE prediction. Arrays in, models out.

Images are ``N x C x H x W`` arrays (any dtype); each crop and channel is scaled to ``[0, 1]`` by its
maximum (the reference reads 8-bit PNGs) and self-normalised per view (``dino.self_normalize``).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellbench.models.vit import DINOHead, DINOModel, DualModel, MAEDecoder, ViT, mae_loss
from cellbench.training.augment import random_crop, random_flips
from cellbench.training.device import autocast, prepare_model, seed_everything
from cellbench.training.loops import _batches
from cellbench.training.preprocess import max_normalise

from .dino import (cosine_schedule, dino_loss, ema_update, eval_view, intensity_jitter, multicrop, self_normalize,
                   teacher_temperature, update_center)
from .pairs import CrossBatchSampler

log = logging.getLogger(__name__)

VIT_KEYS = ("image_size", "patch_size", "dim", "depth", "heads", "mlp_ratio")


def vit_config(params: dict, in_channels: int) -> dict:
    """ViT constructor arguments from ``params["vit"]`` (DeiT-S defaults)."""
    vit = dict(params.get("vit") or {})
    unknown = sorted(set(vit) - set(VIT_KEYS) - {"drop_path"})
    if unknown:
        raise ValueError(f"vit: unknown key(s) {unknown}; expected {list(VIT_KEYS) + ['drop_path']}")
    cfg = {"image_size": 224, "patch_size": 16, "dim": 384, "depth": 12, "heads": 6, "mlp_ratio": 4.0, **vit}
    cfg.pop("drop_path", None)
    return {**cfg, "in_channels": int(in_channels)}


def _unit(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(max_normalise(images))


def _param_groups(model: nn.Module) -> list[dict]:
    """AdamW groups: weights decayed; biases, norms, tokens and positional embeddings not (DINO)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(("cls_token", "pos_embed", "mask_token")) else decay).append(p)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class DinoState:
    """Student and teacher (backbone + head) and the teacher centre; ``teacher.backbone`` is the
    exported feature extractor."""

    student: DINOModel
    teacher: DINOModel
    center: torch.Tensor


def new_dino(params: dict, in_channels: int, seed: int) -> DinoState:
    torch.manual_seed(seed)
    cfg = vit_config(params, in_channels)
    head = dict(params.get("head") or {})
    out_dim = int(head.get("out_dim", 4096))
    student = DINOModel(ViT(**cfg, drop_path=float((params.get("vit") or {}).get("drop_path", 0.1))),
                        DINOHead(cfg["dim"], out_dim, int(head.get("hidden", 2048)), int(head.get("bottleneck", 256)),
                                 bool(head.get("use_bn", False))))
    teacher = copy.deepcopy(student)
    for blk in teacher.backbone.blocks:  # the teacher has no stochastic depth
        blk.drop_path.p = 0.0
    for p in teacher.parameters():
        p.requires_grad_(False)
    return DinoState(student, teacher, torch.zeros(1, out_dim))


def train_dino(images: np.ndarray, params: dict, seed: int, device: torch.device,
               sampler: CrossBatchSampler | None = None, init: DinoState | None = None,
               in_channels: int | None = None) -> tuple[DinoState, dict]:
    """DINO on unlabelled ``images`` (pre-training when ``init`` is None, adaptation otherwise).

    AdamW with linear warm-up then cosine lr (``lr -> min_lr``), weight decay cosine
    ``weight_decay -> weight_decay_end``, gradient clipping ``clip_grad``, the last head layer frozen
    for the first ``freeze_last_layer_epochs`` passes over ``images`` (1 in the seed); teacher EMA momentum cosine ``momentum_teacher -> 1``; teacher
    temperature warm-up over ``teacher_temp_warmup_fraction`` of the steps. With a ``sampler``
    (cross-batch pairs) half of the views come from each image's partner.
    """
    rng = seed_everything(seed)
    state = copy.deepcopy(init) if init is not None else new_dino(params, in_channels or images.shape[1], seed)
    student, teacher = prepare_model(state.student, device), prepare_model(state.teacher, device)
    center = state.center.to(device)
    steps, batch = int(params.get("steps", 100)), int(params.get("batch_size", 128))
    batch = min(batch, len(images))
    lr = cosine_schedule(float(params.get("lr", 1e-4)), float(params.get("min_lr", 1e-6)), steps,
                         int(float(params.get("warmup_fraction", 10 / 300)) * steps))
    wd = cosine_schedule(float(params.get("weight_decay", 1e-5)), float(params.get("weight_decay_end", 1e-4)), steps)
    mom = cosine_schedule(float(params.get("momentum_teacher", 0.996)), 1.0, steps)
    temps = teacher_temperature(steps, float(params.get("warmup_teacher_temp", 0.04)),
                                float(params.get("teacher_temp", 0.07)),
                                int(float(params.get("teacher_temp_warmup_fraction", 30 / 300)) * steps))
    n_local = int(params.get("n_local", 6))
    g_size, l_size = int(params.get("global_size", 224)), int(params.get("local_size", 96))
    freeze_last = int(float(params.get("freeze_last_layer_epochs", 1)) * -(-len(images) // batch))
    clip, s_temp = float(params.get("clip_grad", 1.0)), float(params.get("student_temp", 0.1))
    opt = torch.optim.AdamW(_param_groups(student), lr=float(lr[0]))
    history = {"dino_loss": []}
    batches = _batches(len(images), batch, rng)
    student.train()
    for step in range(steps):
        for k, group in enumerate(opt.param_groups):
            group["lr"] = float(lr[step])
            if k == 0:
                group["weight_decay"] = float(wd[step])
        idx = next(batches)
        anchor = _unit(images[idx])
        partner = _unit(images[sampler.sample(idx, rng)]) if sampler is not None else None
        views = [v.to(device) for v in multicrop(anchor, rng, g_size, l_size, n_local, partner)]
        with autocast(device):
            with torch.no_grad():
                t_out = teacher(views[:2]).float()
            s_out = student(views).float()
            loss = dino_loss(s_out, t_out, center, len(views), s_temp, float(temps[step]))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"DINO loss is {float(loss)} at step {step}; lower lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(student.parameters(), clip)
        if step < freeze_last:
            student.head.last_v.grad = None
        opt.step()
        ema_update(student, teacher, float(mom[step]))
        center = update_center(center, t_out, float(params.get("center_momentum", 0.9)))
        history["dino_loss"].append((step + 1, float(loss.detach())))
    student.eval()
    log.info("DINO: %d steps, loss %.4f -> %.4f", steps, history["dino_loss"][0][1], history["dino_loss"][-1][1])
    return DinoState(student.cpu(), teacher.cpu(), center.cpu()), history


def _classifier_batch(images: np.ndarray, idx: np.ndarray, size: int, rng: np.random.Generator) -> torch.Tensor:
    return self_normalize(intensity_jitter(random_flips(random_crop(_unit(images[idx]), size, rng), rng), rng))


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, size: int, device: torch.device, batch_size: int = 256,
            features: bool = False) -> np.ndarray:
    """Class predictions (argmax of the logits) or, with ``features``, the model's ``features``.

    The model runs on ``device`` and is returned to the device it came from (trained models are
    kept on the CPU between steps)."""
    home = next(model.parameters()).device
    model.eval().to(device)
    out = []
    try:
        for start in range(0, len(images), batch_size):
            x = eval_view(_unit(images[start:start + batch_size]), size).to(device)
            with autocast(device):
                y = model.features(x) if features else model(x)
            out.append(y.float().cpu().numpy() if features else y.float().argmax(1).cpu().numpy())
    finally:
        model.to(home)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def train_classifier(model: nn.Module, images: np.ndarray, labels: np.ndarray, val_images: np.ndarray,
                     val_labels: np.ndarray, params: dict, seed: int, device: torch.device,
                     ) -> tuple[nn.Module, dict]:
    """Cross-entropy on the trainable parameters of ``model`` (the dual model's projector, task
    blocks and fc; or a whole supervised ViT). AdamW, linear warm-up then cosine, gradient clipping;
    the checkpoint with the best accuracy on the validation plate is kept (CODA step 2)."""
    rng = seed_everything(seed)
    model = prepare_model(model, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=float(params.get("lr", 1e-4)), weight_decay=float(params.get("weight_decay", 1e-5)))
    steps, batch = int(params.get("steps", 100)), min(int(params.get("batch_size", 128)), len(images))
    lr = cosine_schedule(float(params.get("lr", 1e-4)), float(params.get("min_lr", 1e-6)), steps,
                         int(float(params.get("warmup_fraction", 3 / 50)) * steps))
    size, clip = int(params.get("global_size", 224)), float(params.get("clip_grad", 1.0))
    eval_every = int(params.get("eval_every", max(1, steps // 5)))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    history = {"train_loss": [], "val_accuracy": []}
    best = (-1.0, copy.deepcopy(model.state_dict()), 0)
    batches = _batches(len(images), batch, rng)
    for step in range(steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = float(lr[step])
        idx = next(batches)
        with autocast(device):
            loss = F.cross_entropy(model(_classifier_batch(images, idx, size, rng).to(device)).float(), y[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            nn.utils.clip_grad_norm_(trainable, clip)
        opt.step()
        history["train_loss"].append((step + 1, float(loss.detach())))
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = float((predict(model, val_images, size, device) == np.asarray(val_labels)).mean()) if len(val_images) else 0.0
            history["val_accuracy"].append((step + 1, acc))
            if acc > best[0]:
                best = (acc, copy.deepcopy(model.state_dict()), step + 1)
    model.load_state_dict(best[1])
    history["best_step"] = [(best[2], float(best[2]))]
    return model.cpu().eval(), history


def dual_model(foundation: ViT, n_classes: int, params: dict, seed: int) -> DualModel:
    torch.manual_seed(seed)
    return DualModel(copy.deepcopy(foundation), n_classes, depth=params.get("task_depth"), heads=params.get("task_heads"))


def supervised_vit(params: dict, in_channels: int, n_classes: int, seed: int) -> ViT:
    torch.manual_seed(seed)
    cfg = vit_config(params, in_channels)
    return ViT(**cfg, drop_path=float((params.get("vit") or {}).get("drop_path", 0.1)), n_classes=n_classes)


def adapt_dual(dual: DualModel, state: DinoState, images: np.ndarray, params: dict, seed: int, device: torch.device,
               sampler: CrossBatchSampler | None = None) -> tuple[DualModel, DinoState, dict]:
    """ODA (``sampler`` None) / CODA: continue DINO on the unlabelled ``images`` from ``state`` and
    swap the adapted teacher backbone into a copy of ``dual``; projector, task model and classifier
    are left exactly as they were."""
    new_state, history = train_dino(images, params, seed, device, sampler=sampler, init=state)
    adapted = copy.deepcopy(dual)
    adapted.foundation.load_state_dict(new_state.teacher.backbone.state_dict())
    adapted.freeze_foundation()
    return adapted, new_state, history


def train_mae(images: np.ndarray, params: dict, seed: int, device: torch.device,
              in_channels: int | None = None) -> tuple[ViT, MAEDecoder, dict]:
    """MAE pre-training of a ViT encoder (random crops and flips; AdamW, warm-up + cosine)."""
    rng = seed_everything(seed)
    cfg = vit_config(params, in_channels or images.shape[1])
    encoder = ViT(**cfg)
    mae = dict(params.get("mae") or {})
    decoder = MAEDecoder(encoder, cfg["in_channels"], int(mae.get("decoder_dim", 128)), int(mae.get("decoder_depth", 2)),
                         int(mae.get("decoder_heads", 4)))
    encoder, decoder = prepare_model(encoder, device), prepare_model(decoder, device)
    steps = int(mae.get("steps", params.get("steps", 100)))
    batch = min(int(params.get("batch_size", 128)), len(images))
    lr = cosine_schedule(float(mae.get("lr", 1.5e-4)), 1e-6, steps, int(0.05 * steps))
    opt = torch.optim.AdamW(_param_groups(encoder) + _param_groups(decoder), lr=float(lr[0]),
                            weight_decay=float(mae.get("weight_decay", 0.05)))
    ratio, size = float(mae.get("mask_ratio", 0.75)), int(params.get("global_size", 224))
    history = {"mae_loss": []}
    batches = _batches(len(images), batch, rng)
    encoder.train()
    decoder.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = float(lr[step])
        x = self_normalize(random_flips(random_crop(_unit(images[next(batches)]), size, rng), rng)).to(device)
        with autocast(device):
            loss = mae_loss(encoder, decoder, x, ratio)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        history["mae_loss"].append((step + 1, float(loss.detach())))
    return encoder.cpu().eval(), decoder.cpu().eval(), history


def ttt_mae_predict(dual: DualModel, decoder: MAEDecoder, images: np.ndarray, params: dict, seed: int,
                    device: torch.device) -> np.ndarray:
    """TTT-MAE (Gandelsman et al. 2022): for each test batch of ``ttt_batch_size`` images, reset the
    feature extractor to its trained weights, take ``ttt_steps`` MAE steps on that batch (encoder
    only; decoder, projector, task model and classifier frozen), then predict the batch."""
    rng = seed_everything(seed)
    ttt = dict(params.get("ttt") or {})
    steps, bs = int(ttt.get("steps", 5)), int(ttt.get("batch_size", 64))
    lr, ratio = float(ttt.get("lr", 1e-4)), float((params.get("mae") or {}).get("mask_ratio", 0.75))
    size = int(params.get("global_size", 224))
    model = prepare_model(copy.deepcopy(dual), device)
    decoder = prepare_model(copy.deepcopy(decoder), device).eval()
    for p in decoder.parameters():
        p.requires_grad_(False)
    initial = copy.deepcopy(model.foundation.state_dict())
    gen = torch.Generator(device=device).manual_seed(int(rng.integers(2**31)))
    preds = []
    for start in range(0, len(images), bs):
        model.foundation.load_state_dict(initial)
        params_f = list(model.foundation.parameters())
        for p in params_f:
            p.requires_grad_(True)
        opt = torch.optim.AdamW(params_f, lr=lr, weight_decay=0.0)
        x = eval_view(_unit(images[start:start + bs]), size).to(device)
        model.foundation.train()
        for _ in range(steps):
            with autocast(device):
                loss = mae_loss(model.foundation, decoder, x, ratio, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.freeze_foundation()
        model.eval()
        with torch.no_grad(), autocast(device):
            preds.append(model(x).float().argmax(1).cpu().numpy())
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)
