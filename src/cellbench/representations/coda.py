"""The CODA family (Haslum et al., seed 001; METHODS.md 4): a DINO foundation pre-trained on the
source (optionally with cross-batch pairs), the dual model (frozen foundation + projector, task
blocks and classifier), the supervised ViT baseline, MAE pre-training with TTT-MAE prediction, and
ODA / CODA adaptation (DINO continued on the unlabelled target; only the foundation changes).

Images are ``N x C x H x W`` arrays (any dtype); each crop and channel is scaled to ``[0, 1]`` by its
maximum (the reference reads 8-bit PNGs) and self-normalised per view (``dino.self_normalize``).

Configurations (``domain_adaptation`` in ``conf/base``): :class:`ViTConfig`, :class:`DinoConfig`
(with :class:`HeadConfig`, :class:`MAEConfig`, :class:`TTTConfig`), :class:`ClassifierConfig`, and
the experiment's :class:`CodaConfig`.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cellbench.adaptation.dino import (cosine_schedule, dino_loss, ema_update, eval_view, intensity_jitter, multicrop,
                                       self_normalize, teacher_temperature, update_center)
from cellbench.adaptation.pairs import CrossBatchSampler
from cellbench.adaptation.pool import PoolConfig
from cellbench.config import Config, ConfigError, non_negative, positive
from cellbench.ingest.sources import IngestionConfig
from cellbench.models.vit import DINOHead, DINOModel, DualModel, MAEDecoder, ViT, mae_loss
from cellbench.training.augment import random_crop, random_flips
from cellbench.training.device import autocast, prepare_model, seed_everything
from cellbench.training.distributed import current, sync_batchnorm
from cellbench.training.loops import Progress, batches as _batches
from cellbench.training.preprocess import max_normalise

from cellbench.reporting.montage import MontageConfig

from ._common import check_device

log = logging.getLogger(__name__)

VIT_KEYS = ("image_size", "patch_size", "dim", "depth", "heads", "mlp_ratio")
GRANULARITIES = ("source", "batch", "plate", "one_plate")  # units ODA / CODA adapt on (the granularity study)


@dataclass(frozen=True)
class ViTConfig(Config):
    """``dino.vit``: the ViT of every method (DeiT-S/16: 224, 16, 384, 12, 6, 4.0)."""

    image_size: int
    patch_size: int
    dim: int
    depth: int
    heads: int
    mlp_ratio: float
    drop_path: float

    def check(self, path: str) -> None:
        positive(path, image_size=self.image_size, patch_size=self.patch_size, dim=self.dim, depth=self.depth,
                 heads=self.heads, mlp_ratio=self.mlp_ratio)
        if self.image_size % self.patch_size:
            raise ConfigError(f"{path}.image_size: {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.dim % self.heads:
            raise ConfigError(f"{path}.dim: {self.dim} is not divisible by heads {self.heads}")
        if not 0 <= self.drop_path < 1:
            raise ConfigError(f"{path}.drop_path: must be in [0, 1), got {self.drop_path}")


@dataclass(frozen=True)
class HeadConfig(Config):
    """``dino.head``: the DINO projection head (out_dim prototypes; BN or not)."""

    out_dim: int
    hidden: int
    bottleneck: int
    use_bn: bool

    def check(self, path: str) -> None:
        positive(path, out_dim=self.out_dim, hidden=self.hidden, bottleneck=self.bottleneck)


@dataclass(frozen=True)
class MAEConfig(Config):
    """``dino.mae``: MAE pre-training of the TTT foundation."""

    steps: int
    lr: float
    weight_decay: float
    mask_ratio: float
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int

    def check(self, path: str) -> None:
        positive(path, steps=self.steps, lr=self.lr, decoder_dim=self.decoder_dim, decoder_depth=self.decoder_depth,
                 decoder_heads=self.decoder_heads)
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"{path}.mask_ratio: must be in (0, 1), got {self.mask_ratio}")


@dataclass(frozen=True)
class TTTConfig(Config):
    """``dino.ttt``: TTT-MAE steps per test batch."""

    steps: int
    batch_size: int
    lr: float

    def check(self, path: str) -> None:
        positive(path, steps=self.steps, batch_size=self.batch_size, lr=self.lr)


@dataclass(frozen=True)
class DinoConfig(Config):
    """``domain_adaptation.dino``: DINO pre-training (and, with ``adapt`` overrides, ODA / CODA)."""

    vit: ViTConfig
    head: HeadConfig
    global_size: int
    local_size: int
    n_local: int
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_fraction: float
    weight_decay: float
    weight_decay_end: float
    momentum_teacher: float
    center_momentum: float
    student_temp: float
    warmup_teacher_temp: float
    teacher_temp: float
    teacher_temp_warmup_fraction: float
    freeze_last_layer_epochs: float
    clip_grad: float
    pretrained: str | None
    mae: MAEConfig
    ttt: TTTConfig

    def check(self, path: str) -> None:
        positive(path, global_size=self.global_size, local_size=self.local_size, steps=self.steps,
                 batch_size=self.batch_size, lr=self.lr, student_temp=self.student_temp, teacher_temp=self.teacher_temp)
        non_negative(path, n_local=self.n_local, min_lr=self.min_lr, clip_grad=self.clip_grad,
                     freeze_last_layer_epochs=self.freeze_last_layer_epochs)
        if self.pretrained is not None and not Path(self.pretrained).is_file():
            raise ConfigError(f"{path}.pretrained: no file {self.pretrained!r} (a DeiT-S/16 or DINO ViT-S/16 "
                              "checkpoint, .pth or .safetensors); null trains from scratch")
        for key in ("warmup_fraction", "teacher_temp_warmup_fraction", "momentum_teacher", "center_momentum"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"{path}.{key}: must be in [0, 1], got {getattr(self, key)}")


@dataclass(frozen=True)
class ClassifierConfig(Config):
    """``domain_adaptation.classifier``: the dual model's trainable part and the supervised ViT."""

    global_size: int
    task_depth: int | None
    task_heads: int | None
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    weight_decay: float
    warmup_fraction: float
    eval_every: int
    clip_grad: float

    def check(self, path: str) -> None:
        positive(path, global_size=self.global_size, steps=self.steps, batch_size=self.batch_size, lr=self.lr,
                 eval_every=self.eval_every)
        non_negative(path, min_lr=self.min_lr, weight_decay=self.weight_decay, clip_grad=self.clip_grad)


@dataclass(frozen=True)
class ColumnsConfig(Config):
    """``domain_adaptation.columns``: the metadata columns of the protocol."""

    source: str
    batch: str
    plate: str
    treatment: str
    label: str


@dataclass(frozen=True)
class GranularityConfig(Config):
    """``domain_adaptation.granularity``: the pair and levels of the granularity study."""

    source: str | None
    target: str | None
    seeds: tuple[int, ...]
    levels: tuple[str, ...]

    def check(self, path: str) -> None:
        bad = [lv for lv in self.levels if lv not in GRANULARITIES]
        if bad:
            raise ConfigError(f"{path}.levels: granularity level {bad[0]!r}; expected one of {list(GRANULARITIES)}")


@dataclass(frozen=True)
class CodaConfig(Config):
    """``domain_adaptation``: the whole CODA experiment (data, methods, seeds, studies).

    ``adapt`` holds the DINO settings that differ for ODA / CODA (e.g. fewer steps); it is checked
    against :class:`DinoConfig` and applied by :attr:`adapt_dino`."""

    ingestion: IngestionConfig
    montage: MontageConfig
    device: str
    threads: int | None
    seeds: tuple[int, ...]
    train_sources: tuple[str, ...] | None
    targets: tuple[str, ...] | None
    drop: str | None
    pair_by: str
    columns: ColumnsConfig
    dino: DinoConfig
    classifier: ClassifierConfig
    adapt: dict
    granularity: GranularityConfig
    cka_cells: int
    umap_cells: int
    pool: PoolConfig | None

    def check(self, path: str) -> None:
        check_device(path, self.device)
        if self.pool is not None:
            if self.dino.pretrained:
                raise ConfigError(f"{path}.pool: set together with {path}.dino.pretrained; the foundation starts "
                                  "from one of them (null the other)")
            self.pool.check_apart(f"{path}.pool", self.ingestion.simulation if self.ingestion.source == "simulation"
                                  else None)
            dino_overridden(self.dino, self.pool.dino, f"{path}.pool.dino", f"those of {path}.dino: ")
        if self.pair_by not in ("plate", "batch"):
            raise ConfigError(f"{path}.pair_by: {self.pair_by!r} is not one of ['plate', 'batch']")
        if not self.seeds:
            raise ConfigError(f"{path}.seeds: at least one seed expected")
        positive(path, cka_cells=self.cka_cells, umap_cells=self.umap_cells)
        if self.threads is not None:
            positive(path, threads=self.threads)
        self.adapt_dino(path)

    def adapt_dino(self, path: str = "domain_adaptation") -> DinoConfig:
        """The DINO settings of ODA / CODA: ``dino`` with the ``adapt`` keys replaced."""
        return dino_overridden(self.dino, self.adapt, f"{path}.adapt", f"those of {path}.dino: ")


def dino_overridden(dino: DinoConfig, overrides: Mapping, path: str, known: str = "") -> DinoConfig:
    """``dino`` with the keys of ``overrides`` replaced (nested sections merged key by key),
    validated as ``path``; an unknown key is a ``ConfigError`` naming ``<path>.<key>`` and listing
    the known keys (after ``known``)."""
    merged = dino.to_dict()
    for key, value in (overrides or {}).items():
        if key not in merged:
            raise ConfigError(f"{path}.{key}: unknown parameter; the known keys are {known}{list(merged)}")
        merged[key] = {**merged[key], **value} if isinstance(merged[key], Mapping) and isinstance(value, Mapping) \
            else value
    return DinoConfig.from_params(merged, path)


def vit_config(vit: ViTConfig, in_channels: int) -> dict:
    """ViT constructor arguments (without ``drop_path``) for ``in_channels`` input channels."""
    return {**{k: getattr(vit, k) for k in VIT_KEYS}, "in_channels": int(in_channels)}


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


def start_weights(model: ViT, config: DinoConfig, weights: dict | None = None) -> ViT:
    """``model`` started from ``weights`` (a ViT state dict, e.g. the pre-training pool's
    foundation) or else from ``config.pretrained`` (e.g. ImageNet DeiT-S/16 or DINO ViT-S/16, as
    the seed's foundation starts); unchanged (from scratch) when neither is given."""
    source = weights if weights else config.pretrained
    if source:
        from cellbench.models.pretrained import load_vit

        load_vit(model, source)
    return model


def new_dino(config: DinoConfig, in_channels: int, seed: int, weights: dict | None = None) -> DinoState:
    torch.manual_seed(seed)
    cfg = vit_config(config.vit, in_channels)
    head = config.head
    out_dim = head.out_dim
    backbone = start_weights(ViT(**cfg, drop_path=config.vit.drop_path), config, weights)
    student = DINOModel(backbone, DINOHead(cfg["dim"], out_dim, head.hidden, head.bottleneck, head.use_bn))
    teacher = copy.deepcopy(student)
    for blk in teacher.backbone.blocks:  # the teacher has no stochastic depth
        blk.drop_path.p = 0.0
    for p in teacher.parameters():
        p.requires_grad_(False)
    return DinoState(student, teacher, torch.zeros(1, out_dim))


def train_dino(images: np.ndarray, config: DinoConfig, seed: int, device: torch.device,
               sampler: CrossBatchSampler | None = None, init: DinoState | None = None,
               in_channels: int | None = None, weights: dict | None = None) -> tuple[DinoState, dict]:
    """DINO on unlabelled ``images`` (pre-training when ``init`` is None, adaptation otherwise).

    AdamW with linear warm-up then cosine lr (``lr -> min_lr``), weight decay cosine
    ``weight_decay -> weight_decay_end``, gradient clipping ``clip_grad``, the last head layer frozen
    for the first ``freeze_last_layer_epochs`` passes over ``images`` (1 in the seed); teacher EMA momentum cosine ``momentum_teacher -> 1``; teacher
    temperature warm-up over ``teacher_temp_warmup_fraction`` of the steps. With a ``sampler``
    (cross-batch pairs) half of the views come from each image's partner.
    """
    rng = seed_everything(seed)
    state = copy.deepcopy(init) if init is not None else new_dino(config, in_channels or images.shape[1], seed, weights)
    student, teacher = prepare_model(state.student, device), prepare_model(state.teacher, device)
    center = state.center.to(device)
    ctx = current()  # torchrun: each process takes its slice of every global batch of views
    net = ctx.wrap(student, device)
    if ctx.active or os.environ.get("CELLBENCH_GLOBAL_BN") == "1":
        sync_batchnorm(teacher, device)  # the teacher's head BatchNorm sees the global batch too
    steps, batch = config.steps, min(config.batch_size, len(images))
    lr = cosine_schedule(config.lr, config.min_lr, steps, int(config.warmup_fraction * steps))
    wd = cosine_schedule(config.weight_decay, config.weight_decay_end, steps)
    mom = cosine_schedule(config.momentum_teacher, 1.0, steps)
    temps = teacher_temperature(steps, config.warmup_teacher_temp, config.teacher_temp,
                                int(config.teacher_temp_warmup_fraction * steps))
    n_local = config.n_local
    g_size, l_size = config.global_size, config.local_size
    freeze_last = int(config.freeze_last_layer_epochs * -(-len(images) // batch))
    clip, s_temp = config.clip_grad, config.student_temp
    opt = torch.optim.AdamW(_param_groups(student), lr=float(lr[0]))
    history = {"dino_loss": []}
    batches = _batches(len(images), batch, rng)
    progress = Progress("DINO" if init is None else "DINO adaptation", steps, batch)
    student.train()
    for step in range(steps):
        for k, group in enumerate(opt.param_groups):
            group["lr"] = float(lr[step])
            if k == 0:
                group["weight_decay"] = float(wd[step])
        idx = next(batches)
        anchor = _unit(images[idx])
        partner = _unit(images[sampler.sample(idx, rng)]) if sampler is not None else None
        views = [ctx.shard(v).to(device) for v in multicrop(anchor, rng, g_size, l_size, n_local, partner)]
        with progress.counting():
            with autocast(device):
                with torch.no_grad():
                    t_out = teacher(views[:2]).float()
                s_out = net(views).float()
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
        center = update_center(center, ctx.gather(t_out), config.center_momentum)
        history["dino_loss"].append((step + 1, float(loss.detach())))
        progress.update(step + 1, float(loss.detach()))
    history.update(progress.history(steps))
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
                     val_labels: np.ndarray, config: ClassifierConfig, seed: int, device: torch.device,
                     ) -> tuple[nn.Module, dict]:
    """Cross-entropy on the trainable parameters of ``model`` (the dual model's projector, task
    blocks and fc; or a whole supervised ViT). AdamW, linear warm-up then cosine, gradient clipping;
    the checkpoint with the best accuracy on the validation plate is kept (CODA step 2)."""
    rng = seed_everything(seed)
    model = prepare_model(model, device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    steps, batch = config.steps, min(config.batch_size, len(images))
    lr = cosine_schedule(config.lr, config.min_lr, steps, int(config.warmup_fraction * steps))
    size, clip = config.global_size, config.clip_grad
    eval_every = config.eval_every
    progress = Progress("classifier", steps, batch)
    y = torch.from_numpy(np.asarray(labels, np.int64))
    history = {"train_loss": [], "val_accuracy": []}
    best = (-1.0, copy.deepcopy(model.state_dict()), 0)
    batches = _batches(len(images), batch, rng)
    for step in range(steps):
        model.train()
        for g in opt.param_groups:
            g["lr"] = float(lr[step])
        idx = next(batches)
        with progress.counting():
            with autocast(device):
                loss = F.cross_entropy(model(_classifier_batch(images, idx, size, rng).to(device)).float(), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                nn.utils.clip_grad_norm_(trainable, clip)
            opt.step()
        history["train_loss"].append((step + 1, float(loss.detach())))
        progress.update(step + 1, float(loss.detach()))
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            acc = float((predict(model, val_images, size, device) == np.asarray(val_labels)).mean()) if len(val_images) else 0.0
            history["val_accuracy"].append((step + 1, acc))
            if acc > best[0]:
                best = (acc, copy.deepcopy(model.state_dict()), step + 1)
    history.update(progress.history(steps))
    model.load_state_dict(best[1])
    history["best_step"] = [(best[2], float(best[2]))]
    return model.cpu().eval(), history


def dual_model(foundation: ViT, n_classes: int, config: ClassifierConfig, seed: int) -> DualModel:
    """CODA's dual model: a frozen copy of ``foundation``, then projector, ``task_depth`` blocks and fc."""
    torch.manual_seed(seed)
    return DualModel(copy.deepcopy(foundation), n_classes, depth=config.task_depth, heads=config.task_heads)


def supervised_vit(config: DinoConfig, in_channels: int, n_classes: int, seed: int, weights: dict | None = None) -> ViT:
    """The supervised baseline: the foundation's ViT with a classification head, trained end to end
    (from the same start as the foundation: ``weights``, ``config.pretrained`` or scratch)."""
    torch.manual_seed(seed)
    model = ViT(**vit_config(config.vit, in_channels), drop_path=config.vit.drop_path, n_classes=n_classes)
    return start_weights(model, config, weights)


def adapt_dual(dual: DualModel, state: DinoState, images: np.ndarray, config: DinoConfig, seed: int, device: torch.device,
               sampler: CrossBatchSampler | None = None) -> tuple[DualModel, DinoState, dict]:
    """ODA (``sampler`` None) / CODA: continue DINO on the unlabelled ``images`` from ``state`` and
    swap the adapted teacher backbone into a copy of ``dual``; projector, task model and classifier
    are left exactly as they were."""
    new_state, history = train_dino(images, config, seed, device, sampler=sampler, init=state)
    adapted = copy.deepcopy(dual)
    adapted.foundation.load_state_dict(new_state.teacher.backbone.state_dict())
    adapted.freeze_foundation()
    return adapted, new_state, history


def train_mae(images: np.ndarray, config: DinoConfig, seed: int, device: torch.device,
              in_channels: int | None = None) -> tuple[ViT, MAEDecoder, dict]:
    """MAE pre-training of a ViT encoder (random crops and flips; AdamW, warm-up + cosine)."""
    rng = seed_everything(seed)
    cfg = vit_config(config.vit, in_channels or images.shape[1])
    encoder = ViT(**cfg)
    mae = config.mae
    decoder = MAEDecoder(encoder, cfg["in_channels"], mae.decoder_dim, mae.decoder_depth, mae.decoder_heads)
    encoder, decoder = prepare_model(encoder, device), prepare_model(decoder, device)
    steps = mae.steps
    batch = min(config.batch_size, len(images))
    lr = cosine_schedule(mae.lr, 1e-6, steps, int(0.05 * steps))
    opt = torch.optim.AdamW(_param_groups(encoder) + _param_groups(decoder), lr=float(lr[0]),
                            weight_decay=mae.weight_decay)
    ratio, size = mae.mask_ratio, config.global_size
    history = {"mae_loss": []}
    progress = Progress("MAE", steps, batch)
    batches = _batches(len(images), batch, rng)
    encoder.train()
    decoder.train()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = float(lr[step])
        x = self_normalize(random_flips(random_crop(_unit(images[next(batches)]), size, rng), rng)).to(device)
        with progress.counting():
            with autocast(device):
                loss = mae_loss(encoder, decoder, x, ratio)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        history["mae_loss"].append((step + 1, float(loss.detach())))
        progress.update(step + 1, float(loss.detach()))
    history.update(progress.history(steps))
    return encoder.cpu().eval(), decoder.cpu().eval(), history


def ttt_mae_predict(dual: DualModel, decoder: MAEDecoder, images: np.ndarray, config: DinoConfig, seed: int,
                    device: torch.device) -> np.ndarray:
    """TTT-MAE (Gandelsman et al. 2022): for each test batch of ``ttt_batch_size`` images, reset the
    feature extractor to its trained weights, take ``ttt_steps`` MAE steps on that batch (encoder
    only; decoder, projector, task model and classifier frozen), then predict the batch."""
    rng = seed_everything(seed)
    steps, bs, lr = config.ttt.steps, config.ttt.batch_size, config.ttt.lr
    ratio, size = config.mae.mask_ratio, config.global_size
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
