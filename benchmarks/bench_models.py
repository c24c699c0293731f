"""Training and embedding throughput of the torch models (cells/s), on the device at hand.

    python benchmarks/bench_models.py [--device auto] [--widths 1.0,0.25] [--out benchmarks/results/models.csv]

Embedding = the representation's inference path (DeepLoc: 5 views + fc2; PCI / autoencoder:
source encoder, conv1..conv5 maxima; VGG16: conv3_3..conv4_2 maxima) on 64 x 64 crops. Training =
one optimiser step per batch with the method's loss, steady state after warm-up.
``--formats channels_last,contiguous`` measures both memory formats in one run (the library
uses channels-last on every device; ``contiguous`` is plain NCHW, what the CPU used before).

    python benchmarks/bench_models.py --embed-batches 32,64,128,256,512 --widths 0.25 --rounds 3

sweeps the inference batch size alone (embedding only, the batch sizes interleaved in each of
``--rounds`` rounds, the best round kept): it chose the ``embed_batch_size`` defaults in conf/base.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from cellbench.models import VGG16, ConvAutoencoder, DeepLoc, PairedCellInpainting, ResNet18, VAEPlus
from cellbench.training import autocast, resolve_device
from cellbench.training.augment import five_crops
from cellbench.training.device import prepare_model, to_device


def timed(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps


# name -> (builder of a given width, input channels, input size): the COOS networks on 2-channel
# 64-px crops; the screen's ResNet18 (3 channels) and VAE encoder (crops zero-padded to 68 px)
COOS_MODELS = {"deeploc": (lambda w: DeepLoc(2, 7, w), 2, 64),
               "pci": (lambda w: PairedCellInpainting(2, 1, 1, w), 2, 64),
               "autoencoder": (lambda w: ConvAutoencoder(2, w), 2, 64)}
TREATMENT_MODELS = {"resnet18": (lambda w: ResNet18(3, 10, w), 3, 64),
                    "vae": (lambda w: VAEPlus(3, 256, False, w), 3, 68)}


def bench(name: str, model: torch.nn.Module, device, batch: int, reps: int, width: float,
          fmt: str = "channels_last", train: bool = True, channels: int = 2, size: int = 64) -> list[dict]:
    if fmt == "channels_last":
        model, place = prepare_model(model, device), (lambda t: to_device(t, device))
    elif fmt == "contiguous":
        model, place = model.to(device), (lambda t: t.to(device))
    else:
        raise ValueError(f"--formats: unknown memory format {fmt!r}; expected channels_last or contiguous")
    x = place(torch.randn(batch, channels, size, size))
    rows = []
    model.eval()
    with torch.no_grad():
        if name == "deeploc":
            def emb():
                with autocast(device):
                    views = five_crops(x, 60)
                    [model(v) for v in views]
                    model.embed(views[0])
        elif name == "vgg16":
            x3 = place(torch.randn(batch, 3, 64, 64))

            def emb():
                with autocast(device):
                    model.embed(x3)
        else:
            def emb():
                with autocast(device):
                    model.embed(x)
        rows.append({"model": name, "width": width, "mode": "embed", "batch": batch, "memory_format": fmt,
                     "cells_per_s": batch / timed(emb, reps)})
    if name == "vgg16" or not train:
        return rows
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    y = place(torch.randn(batch, 1, 64, 64))
    labels = torch.randint(0, 7, (batch,), device=device)

    def step():
        with autocast(device):
            if name == "deeploc":
                loss = torch.nn.functional.cross_entropy(model(x[:, :, 2:62, 2:62]).float(), labels)
            elif name == "pci":
                loss = torch.mean((model(x, x[:, 1:2]).float() - y) ** 2)
            else:
                loss = torch.mean((model(x).float() - x) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    rows.append({"model": name, "width": width, "mode": "train", "batch": batch, "memory_format": fmt,
                 "cells_per_s": batch / timed(step, max(2, reps // 2))})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto")
    ap.add_argument("--widths", default="1.0,0.25")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=4)
    ap.add_argument("--formats", default="channels_last")
    ap.add_argument("--embed-batches", default=None, help="comma-separated inference batch sizes to sweep")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--treatment", action="store_true", help="with --embed-batches: the screen's ResNet18 and VAE")
    ap.add_argument("--out", default=None, help="default: benchmarks/results/models.csv, or with "
                    "--embed-batches embed_batch.csv / embed_batch_treatment.csv there")
    args = ap.parse_args()
    if args.out is None:
        name = ("embed_batch_treatment" if args.treatment else "embed_batch") if args.embed_batches else "models"
        args.out = f"benchmarks/results/{name}.csv"
    device = resolve_device(args.device)
    if args.embed_batches:
        sweep_embed_batches(args, device)
        return
    rows = []
    for fmt in args.formats.split(","):
        for w in (float(v) for v in args.widths.split(",")):
            for name, (build, _, _) in COOS_MODELS.items():
                torch.manual_seed(0)
                rows += bench(name, build(w), device, args.batch, args.reps, w, fmt)
                print(rows[-2:], flush=True)
        torch.manual_seed(0)
        rows += bench("vgg16", VGG16(), device, args.batch, args.reps, 1.0, fmt)
    table = pd.DataFrame(rows).assign(device=str(device), threads=torch.get_num_threads())
    print(table.to_string(index=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


def sweep_embed_batches(args, device) -> None:
    """Embedding cells/s per inference batch size; each round measures every (model, batch size)
    once, in turn, so that a slow spell of the host touches all of them alike."""
    sizes = [int(v) for v in args.embed_batches.split(",")]
    widths = [float(v) for v in args.widths.split(",")]
    builds = TREATMENT_MODELS if args.treatment else COOS_MODELS
    rows = []
    for r in range(args.rounds):
        for w in widths:
            for name, (build, channels, size) in builds.items():
                for b in sizes:
                    torch.manual_seed(0)
                    # at least ~512 cells per timing, so small batches are not timed on one call
                    reps = max(args.reps, -(-512 // b))
                    row = bench(name, build(w), device, b, reps, w, "channels_last", train=False,
                                channels=channels, size=size)[0]
                    rows.append({**row, "round": r})
                    print(row, flush=True)
    table = pd.DataFrame(rows).assign(device=str(device), threads=torch.get_num_threads())
    best = table.groupby(["model", "width", "batch"], as_index=False)["cells_per_s"].max()
    print(best.pivot(index=["model", "width"], columns="batch", values="cells_per_s").round(0).to_string())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
