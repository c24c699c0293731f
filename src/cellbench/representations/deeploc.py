"""DeepLoc (Kraus et al. 2017; COOS-7 seed 000, METHODS.md 1.2): a CNN trained on the localisation
classes, scored end to end (softmax averaged over five test crops) and as fc2 features.

* preprocessing: per crop and channel, clip at the 99.9th percentile, subtract the 0.1th and divide
  by the range when it exceeds 1 (``percentile_stretch``);
* training: Adam with lr_t = lr * decay_rate^floor(t / decay_steps) (staircase; the reference 0.1,
  0.96, 25), softmax cross-entropy on random ``crop``-px crops with flips and rot90; every
  ``eval_every`` steps the class-balanced error on a stratified ``val_fraction`` of Training
  (5-crop averaged) chooses the checkpoint;
* layers: ``end_to_end`` (class probabilities, 5-crop average) and ``fc2`` (centre crop).
"""

from __future__ import annotations

import copy
import dataclasses
import logging

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from cellbench.config import ConfigError, positive
from cellbench.crops import Crops
from cellbench.metrics import balanced_error
from cellbench.models import DeepLoc
from cellbench.training.augment import five_crops, random_crop, random_flips, random_rot90
from cellbench.training.device import autocast, prepare_model, seed_everything, to_device
from cellbench.training.distributed import current
from cellbench.training.embed import embed_crops
from cellbench.training.loops import Progress, batches as shuffled_batches, optimiser_step
from cellbench.training.preprocess import percentile_stretch

from ._common import CoosTrainingCells, NetworkConfig, Representation, feature_tables, model_artefact, training_rows

log = logging.getLogger(__name__)
preprocess = percentile_stretch


@dataclasses.dataclass(frozen=True)
class DeepLocConfig(NetworkConfig, CoosTrainingCells):
    """``representation.deeploc`` (values in ``conf/base``; the paper's in ``conf/paper``)."""

    crop: int
    batch_size: int
    steps: int
    lr: float
    decay_rate: float
    decay_steps: int
    eval_every: int
    val_fraction: float
    rot90: tuple[int, ...]

    def check(self, path: str) -> None:
        NetworkConfig.check(self, path)
        positive(path, crop=self.crop, batch_size=self.batch_size, steps=self.steps, lr=self.lr,
                 decay_steps=self.decay_steps, eval_every=self.eval_every, decay_rate=self.decay_rate)
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"{path}.val_fraction: must be in (0, 1), got {self.val_fraction}")
        bad = [k for k in self.rot90 if k not in (0, 1, 2, 3)]
        if bad or not self.rot90:
            raise ConfigError(f"{path}.rot90: quarter turns in 0..3 expected, got {list(self.rot90)}")


@torch.no_grad()
def predict(model: DeepLoc, images: np.ndarray, device: torch.device, crop: int,
            batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``(softmax averaged over the 5 test crops, fc2 features of the centre crop)`` of
    preprocessed images. On a CPU, batches of 32-64 embed 1.6-2.8x more cells/s than 256-512
    (cache-resident activations; ``bench_models.py --embed-batches``, benchmarks/RESULTS.md)."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        x = to_device(torch.from_numpy(images[start:start + batch_size]), device)
        with autocast(device):
            layers = embed(model, x, crop)
        probs.append(layers["end_to_end"].float().cpu().numpy())
        feats.append(layers["fc2"].float().cpu().numpy())
    return np.concatenate(probs), np.concatenate(feats)


def embed(model: DeepLoc, x: torch.Tensor, crop: int) -> dict[str, torch.Tensor]:
    """The test-time layers of one batch: 5-crop averaged class probabilities and centre-crop fc2
    (the centre view's one pass gives both its logits and fc2)."""
    views = five_crops(x, crop)
    centre = model.embed(views[0])  # its logits are the first view's: 5 passes, not 6
    probs = sum(torch.softmax((centre["logits"] if i == 0 else model(v)).float(), dim=1)
                for i, v in enumerate(views)) / len(views)
    return {"end_to_end": probs, "fc2": centre["fc2"]}


def train(images: np.ndarray, labels: np.ndarray, config: DeepLocConfig, device: torch.device):
    """Train on preprocessed ``images`` with integer ``labels``. Returns ``(model, classes,
    history, validation_index)``; the model is the checkpoint of lowest validation error."""
    seed = config.seed
    rng = seed_everything(seed)
    classes = np.unique(labels)
    y_idx = np.searchsorted(classes, labels)
    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=config.val_fraction, stratify=y_idx, random_state=seed)
    model = prepare_model(DeepLoc(images.shape[1], len(classes), config.width, config.crop), device)
    ctx = current()  # torchrun: each process trains on its slice of every global batch
    net = ctx.wrap(model, device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    decay_rate, decay_steps = config.decay_rate, config.decay_steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: decay_rate ** (t // decay_steps))
    steps, crop = config.steps, config.crop
    loss_fn = nn.CrossEntropyLoss()
    history = {"train_loss": [], "val_balanced_error": []}
    best = (np.inf, None, 0)
    batches = shuffled_batches(len(train_idx), min(config.batch_size, len(train_idx)), rng)
    progress = Progress("DeepLoc", steps, min(config.batch_size, len(train_idx)))
    for step in range(1, steps + 1):
        model.train()
        b = train_idx[next(batches)]
        x = torch.from_numpy(images[b])
        x = random_rot90(random_flips(random_crop(x, crop, rng), rng), rng, config.rot90)
        y = ctx.shard(torch.from_numpy(y_idx[b])).to(device)
        with progress.counting("step"):
            with autocast(device):
                loss = loss_fn(net(to_device(ctx.shard(x), device)).float(), y)
            optimiser_step(opt, loss)
        sched.step()
        history["train_loss"].append((step, float(loss.detach())))
        progress.update(step, float(loss.detach()))
        if step % config.eval_every == 0 or step == steps:
            with progress.counting("validation"):
                probs, _ = predict(model, images[val_idx], device, crop, config.embed_batch_size)
            err = balanced_error(y_idx[val_idx], probs.argmax(1))
            history["val_balanced_error"].append((step, err))
            log.info("DeepLoc step %d: loss %.4f, validation balanced error %.4f", step, float(loss.detach()), err)
            if err < best[0]:
                best = (err, copy.deepcopy(model.state_dict()), step)
        progress.snapshot(step, lambda: best[1] if best[1] is not None else model.state_dict())
    model.load_state_dict(best[1])
    history["best_step"] = [(best[2], float(best[2]))]
    history.update(progress.history(steps))
    return model, classes, history, val_idx


def represent(crops: Crops, config: DeepLocConfig, device: torch.device) -> Representation:
    """Train on the Training cells, then per cell the ``end_to_end`` and ``fc2`` layers; the cells
    held out of training for model selection are marked ``Metadata_Validation``."""
    if config.crop > min(crops.shape[2:]):
        raise ConfigError(f"deeploc.crop: {config.crop} px is larger than the crops ({crops.shape[2]} x "
                          f"{crops.shape[3]} px); set it to at most {min(crops.shape[2:])}")
    rows = training_rows(crops.metadata, config.train_splits, config.max_train_cells, config.seed)
    cells = crops.take(rows)
    model, classes, history, val_idx = train(preprocess(np.asarray(cells.images)),
                                             cells.metadata["Metadata_Label"].to_numpy(), config, device)
    model.eval()
    layers = embed_crops(lambda x: embed(model, x, config.crop), crops, preprocess, device,
                         config.embed_batch_size, config.num_workers)
    meta = crops.metadata.copy()
    meta["Metadata_Validation"] = False
    meta.loc[rows[val_idx], "Metadata_Validation"] = True
    tables = feature_tables(meta, {"fc2": layers["fc2"]}, "DeepLoc")
    tables["end_to_end"] = pd.concat([meta.reset_index(drop=True),
                                      pd.DataFrame(layers["end_to_end"].astype(np.float64),
                                                   columns=[f"Prob_{c}" for c in classes])], axis=1)
    arch = {"in_channels": int(crops.shape[1]), "n_classes": len(classes), "width": config.width,
            "input_size": config.crop}
    artefact = model_artefact("deeploc", model, arch, classes=[int(c) for c in classes])
    return Representation(tables, model, config, history, artefact)
