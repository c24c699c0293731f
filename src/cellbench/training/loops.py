"""Training loops of DeepLoc, paired cell inpainting and the autoencoder (METHODS.md 1.2, 2).

Inputs are preprocessed float32 arrays ``N x C x 64 x 64`` in memory (the Training split);
outputs are the trained model (best checkpoint where the method selects one) and a history of
``(step, value)`` pairs for MLflow metric histories.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from cellbench.metrics import balanced_error
from cellbench.models import ConvAutoencoder, DeepLoc, PairedCellInpainting

from .augment import five_crops, random_crop, random_flips, random_rot90
from .device import autocast, prepare_model, seed_everything, to_device

log = logging.getLogger(__name__)


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    """Endless shuffled mini-batches of indices; every item once per epoch."""
    while True:
        perm = rng.permutation(n)
        for start in range(0, n - batch_size + 1 if n >= batch_size else 1, batch_size):
            yield perm[start:start + batch_size]


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


@torch.no_grad()
def deeploc_predict(model: DeepLoc, images: np.ndarray, device: torch.device, crop: int = 60,
                    batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """``(softmax averaged over the 5 test crops, fc2 features of the centre crop)``."""
    model.eval()
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        x = to_device(torch.from_numpy(images[start:start + batch_size]), device)
        with autocast(device):
            views = five_crops(x, crop)
            p = sum(torch.softmax(model(v).float(), dim=1) for v in views) / len(views)
            f = model.embed(views[0])["fc2"].float()
        probs.append(p.cpu().numpy())
        feats.append(f.cpu().numpy())
    return np.concatenate(probs), np.concatenate(feats)


def train_deeploc(images: np.ndarray, labels: np.ndarray, params: dict, seed: int, device: torch.device):
    """DeepLoc training with the reference schedule and model selection.

    Adam with lr_t = lr * decay_rate^floor(t / decay_steps) (staircase; the reference: 0.1, 0.96,
    25), softmax cross-entropy, batches of random 60-px crops with flips and rot90; every
    ``eval_every`` steps the class-balanced error on a stratified ``val_fraction`` of Training
    (5-crop averaged) picks the checkpoint. Returns ``(model, history, validation_index)``.
    """
    rng = seed_everything(seed)
    classes = np.unique(labels)
    y_idx = np.searchsorted(classes, labels)
    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=float(params.get("val_fraction", 0.2)),
                                          stratify=y_idx, random_state=seed)
    model = prepare_model(DeepLoc(images.shape[1], len(classes), float(params.get("width", 1.0)),
                                  int(params.get("crop", 60))), device)
    opt = torch.optim.Adam(model.parameters(), lr=float(params.get("lr", 0.1)))
    decay_rate, decay_steps = float(params.get("decay_rate", 0.96)), int(params.get("decay_steps", 25))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: decay_rate ** (t // decay_steps))
    steps, batch = int(params.get("steps", 10_000)), int(params.get("batch_size", 128))
    eval_every, crop = int(params.get("eval_every", 500)), int(params.get("crop", 60))
    rot_ks = tuple(params.get("rot90", (0, 1, 2)))
    loss_fn = nn.CrossEntropyLoss()
    history = {"train_loss": [], "val_balanced_error": []}
    best = (np.inf, None, 0)
    batches = _batches(len(train_idx), min(batch, len(train_idx)), rng)
    for step in range(1, steps + 1):
        model.train()
        b = train_idx[next(batches)]
        x = torch.from_numpy(images[b])
        x = random_rot90(random_flips(random_crop(x, crop, rng), rng), rng, rot_ks)
        y = torch.from_numpy(y_idx[b]).to(device)
        with autocast(device):
            loss = loss_fn(model(to_device(x, device)).float(), y)
        optimiser_step(opt, loss)
        sched.step()
        history["train_loss"].append((step, float(loss.detach())))
        if step % eval_every == 0 or step == steps:
            probs, _ = deeploc_predict(model, images[val_idx], device, crop)
            err = balanced_error(y_idx[val_idx], probs.argmax(1))
            history["val_balanced_error"].append((step, err))
            log.info("DeepLoc step %d: loss %.4f, validation balanced error %.4f", step, float(loss.detach()), err)
            if err < best[0]:
                best = (err, copy.deepcopy(model.state_dict()), step)
    model.load_state_dict(best[1])
    history["best_step"] = [(best[2], float(best[2]))]
    return model, classes, history, val_idx


def pci_groups(groups: np.ndarray, min_cells: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(eligible, inverse, members)``: cells whose group (well) has >= ``min_cells`` cells (the
    seed drops wells with <= 5 cells), each cell's group code and each group's member indices."""
    codes, inverse = np.unique(groups, return_inverse=True)
    members = {g: np.flatnonzero(inverse == g) for g in range(len(codes))}
    keep = [m for m in members.values() if len(m) >= max(2, min_cells)]
    if not keep:
        raise ValueError(f"paired cell inpainting: no group (well) has at least {max(2, min_cells)} cells")
    return np.sort(np.concatenate(keep)), inverse, members


def sample_partners(a: np.ndarray, inverse: np.ndarray, members: dict, rng: np.random.Generator) -> np.ndarray:
    """For each cell in ``a``, a partner drawn uniformly from its own group, never itself."""
    out = np.empty_like(a)
    for k, i in enumerate(a):
        m = members[inverse[i]]
        j = m[rng.integers(len(m) - 1)]
        out[k] = j if j != i else m[-1]  # skip i: the last member stands in for it
    return out


def _pci_schedule(model: torch.nn.Module, params: dict, n_items: int) -> tuple[torch.optim.Optimizer, int, int]:
    """PCI's optimiser and budget, shared by its autoencoder baseline: Adam(lr, beta1 0.5) and
    ``steps`` (or ``epochs`` x items // batch) batches of ``batch_size``."""
    opt = torch.optim.Adam(model.parameters(), lr=float(params.get("lr", 1e-4)),
                           betas=(float(params.get("beta1", 0.5)), 0.999))
    batch = min(int(params.get("batch_size", 64)), n_items)
    steps = int(params.get("steps") or int(params.get("epochs", 30)) * (n_items // batch))
    return opt, batch, steps


def train_pci(images: np.ndarray, groups: np.ndarray, params: dict, seed: int, device: torch.device):
    """Paired cell inpainting: from all channels of cell A and the structural channel(s) of cell B
    (same well), predict B's protein channel; MSE; Adam(lr 1e-4, beta1 0.5). Every eligible cell is
    A once per epoch; A and B are flipped independently. Returns ``(model, history)``."""
    rng = seed_everything(seed)
    protein = int(params.get("protein_channel", 0))
    structure = list(params.get("structure_channels", [1]))
    eligible, inverse, members = pci_groups(groups, int(params.get("min_cells_per_group", 6)))
    model = prepare_model(PairedCellInpainting(images.shape[1], len(structure), 1, float(params.get("width", 1.0))),
                          device)
    opt, batch, steps = _pci_schedule(model, params, len(eligible))
    history = {"train_loss": []}
    batches = _batches(len(eligible), batch, rng)
    model.train()
    for step in range(1, steps + 1):
        a = eligible[next(batches)]
        b = sample_partners(a, inverse, members, rng)
        xa = random_flips(torch.from_numpy(images[a]), rng)
        xb = random_flips(torch.from_numpy(images[b]), rng)
        with autocast(device):
            pred = model(to_device(xa, device), to_device(xb[:, structure], device)).float()
        loss = torch.mean((pred - to_device(xb[:, protein:protein + 1], device)) ** 2)
        optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
        if step % max(1, steps // 10) == 0:
            log.info("PCI step %d/%d: loss %.5f", step, steps, float(loss.detach()))
    return model, history


def train_autoencoder(images: np.ndarray, params: dict, seed: int, device: torch.device):
    """The PCI paper's autoencoder baseline: reconstruct all channels of a cell (MSE), same
    optimiser, flips and number of steps as PCI. Returns ``(model, history)``."""
    rng = seed_everything(seed)
    model = prepare_model(ConvAutoencoder(images.shape[1], float(params.get("width", 1.0))), device)
    opt, batch, steps = _pci_schedule(model, params, len(images))
    history = {"train_loss": []}
    batches = _batches(len(images), batch, rng)
    model.train()
    for step in range(1, steps + 1):
        x = to_device(random_flips(torch.from_numpy(images[next(batches)]), rng), device)
        with autocast(device):
            loss = torch.mean((model(x).float() - x.float()) ** 2)
        optimiser_step(opt, loss)
        history["train_loss"].append((step, float(loss.detach())))
    return model, history


def train_vae(images: np.ndarray, params: dict, seed: int, device: torch.device):
    """AE (beta 0), VAE (beta 1) or VAE+ (beta 2 with the discriminator's learned similarity) of
    Lafarge et al. 2019 (METHODS.md section 3): encoder and decoder by Adam(lr 0.01, eps 1e-7) on
    pixel + similarity (+ beta KL for the encoder), the discriminator by SGD(lr 0.001, momentum
    0.9) on real vs reconstructed, every kernel decayed by (1 - 1e-4) per step; each step draws one
    batch to reconstruct and an independent real batch for the discriminator. Returns
    ``(model, history)``; the discriminator's BatchNorm sees real and reconstructed batches
    separately (the reference normalises them together)."""
    from cellbench.models.vae import VAEPlus, kl_divergence, pixel_loss, similarity_loss

    rng = seed_everything(seed)
    variant = params.get("variant", "vaeplus")
    if variant not in ("ae", "vae", "vaeplus"):
        raise ValueError(f"variant must be ae, vae or vaeplus, got {variant!r}")
    beta = float(params.get("beta", {"ae": 0.0, "vae": 1.0, "vaeplus": 2.0}[variant]))
    model = prepare_model(VAEPlus(images.shape[1], int(params.get("latent", 256)), variant == "vaeplus"), device)
    enc_dec = list(model.encoder.parameters()) + list(model.decoder.parameters())
    opt = torch.optim.Adam(enc_dec, lr=float(params.get("lr", 0.01)), eps=1e-7)
    opt_d = (torch.optim.SGD(model.discriminator.parameters(), lr=float(params.get("lr_discriminator", 1e-3)),
                             momentum=0.9) if model.discriminator is not None else None)
    steps, batch = int(params.get("steps", 80_000)), min(int(params.get("batch_size", 104)), len(images))
    delay, slope = float(params.get("gamma_delay", 2500)), float(params.get("gamma_slope", 2500))
    decay = 1.0 - float(params.get("kernel_decay", 1e-4))
    size = images.shape[-1]
    history = {"train_loss": [], "pixel_loss": [], "kl": []}
    model.train()
    for step in range(1, steps + 1):
        x = to_device(torch.from_numpy(images[rng.integers(len(images), size=batch)]), device)
        with autocast(device):
            x_hat, mu, logvar = model(x)
            pix, kl = pixel_loss(x.float(), x_hat.float()), kl_divergence(mu.float(), logvar.float())
            loss = pix + beta * kl
            if model.discriminator is not None:
                _, h_real = model.discriminator(x)
                _, h_fake = model.discriminator(x_hat)
                loss = loss + similarity_loss([h.float() for h in h_real], [h.float() for h in h_fake], step, size,
                                              images.shape[1], delay, slope)
        opt.zero_grad(set_to_none=True)
        if opt_d is not None:
            opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if opt_d is not None:  # the discriminator learns only from real vs reconstructed
            opt_d.zero_grad(set_to_none=True)
            real = to_device(torch.from_numpy(images[rng.integers(len(images), size=batch)]), device)
            with autocast(device):
                logit_real, _ = model.discriminator(real)
                logit_fake, _ = model.discriminator(x_hat.detach())
                d_loss = (nn.functional.binary_cross_entropy_with_logits(logit_real.float(), torch.ones_like(logit_real.float()))
                          + nn.functional.binary_cross_entropy_with_logits(logit_fake.float(), torch.zeros_like(logit_fake.float())))
            d_loss.backward()
            opt_d.step()
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.mul_(decay)
        history["train_loss"].append((step, float(loss.detach())))
        history["pixel_loss"].append((step, float(pix.detach())))
        history["kl"].append((step, float(kl.detach())))
    return model, history
