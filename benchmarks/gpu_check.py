"""Device check: run once on a GPU machine (one H200 in this project) and paste its Markdown into
``benchmarks/RESULTS.md``. Library only (no Kedro, no MLflow); works with the machine's own PyTorch.

    python benchmarks/gpu_check.py                 # on the GPU: paper widths, time-boxed paper budgets
    python benchmarks/gpu_check.py --tiny          # the same code on the CPU at toy sizes (the test suite)

Sections (each also a row group of ``gpu_check.csv``):

1. host: device, torch, the fp32 and bf16 matrix-multiply rates measured in this run;
2. parity: every model's forward and backward in bf16 autocast + channels-last against fp32
   contiguous on the same batch (eval mode, same weights): relative L2 error of the output and of
   all parameter gradients; tolerance 0.05 (output) and 0.10 (gradients), bf16's 8-bit mantissa;
3. throughput: training (forward, backward, Adam) and embedding cells/s per model at paper width,
   FLOPs per cell (``cellbench.training.flops``) and the achieved fraction of the bf16 matmul rate;
   goal: PCI conv3 embedding >= 300,000 crops/s;
4. paper budgets: PCI (30 epochs) and DeepLoc (10,000 steps) on full-size simulated COOS-7 at the
   papers' settings (conf/paper); the steps that fit ``--train-seconds`` each (measured rate x
   budget; the report says which fraction of the paper's budget ran), then the COOS protocol's
   Test1-4 class-balanced error (L1 logistic regression on Training-standardised features; the
   network's own 5-crop call for DeepLoc) against Texture;
5. CODA: one source -> target pair of the simulated JUMP-like screen at ViT-S/16, 224 px: DINO on
   the source, the dual model, ODA on the target, for the steps that fit ``--coda-seconds``;
   target accuracy before and after adaptation.
"""

from __future__ import annotations

import argparse
import copy
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _conf import env_params, merge  # noqa: E402

from cellbench.models import ConvAutoencoder, DeepLoc, PairedCellInpainting, ResNet18, VAEPlus  # noqa: E402
from cellbench.models.vit import ViT  # noqa: E402
from cellbench.training.device import autocast, resolve_device  # noqa: E402
from cellbench.training.flops import count_flops, matmul_rate  # noqa: E402

ROWS: list[dict] = []
TOL = {"output": 0.05, "gradients": 0.10}


def record(section: str, item: str, metric: str, value, note: str = "") -> None:
    ROWS.append({"section": section, "item": item, "metric": metric, "value": value, "note": note})
    print(f"[{section}] {item} {metric}: {value} {note}", flush=True)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def models(tiny: bool) -> dict:
    """name -> (module factory, input factory(batch), embed(model, inputs) -> tensor)."""
    w = 0.125 if tiny else 1.0
    vit = dict(image_size=32, patch_size=8, dim=32, depth=2, heads=2) if tiny else dict(
        image_size=224, patch_size=16, dim=384, depth=12, heads=6)
    side = vit["image_size"]
    return {
        "deeploc": (lambda: DeepLoc(2, 7, w, 60), lambda b: (torch.rand(b, 2, 60, 60),),
                    lambda m, x: m.embed(x)["fc2"]),
        "pci": (lambda: PairedCellInpainting(2, 1, 1, w), lambda b: (torch.rand(b, 2, 64, 64), torch.rand(b, 1, 64, 64)),
                lambda m, x, y: _pci_conv3(m, x)),
        "autoencoder": (lambda: ConvAutoencoder(2, w), lambda b: (torch.rand(b, 2, 64, 64),),
                        lambda m, x: m.embed(x)["conv5"]),
        "resnet18": (lambda: ResNet18(3, 100, w), lambda b: (torch.rand(b, 3, 64, 64),),
                     lambda m, x: m.embed(x)["res4a"]),
        "vaeplus": (lambda: VAEPlus(3, 256, True, w), lambda b: (torch.rand(b, 3, 68, 68),),
                    lambda m, x: m.embed(x)["mu"]),
        "vit_s16": (lambda: ViT(**vit, in_channels=3), lambda b: (torch.rand(b, 3, side, side),),
                    lambda m, x: m.features(x)),
    }


def _pci_conv3(model, x):
    """PCI's conv3 features: the source encoder up to its third block (spatial max, pre-BN)."""
    act = None
    for block in model.source.blocks[:3]:
        x, act = block(x)
    return act.amax(dim=(2, 3))


def _output(model, inputs):
    out = model(*inputs)
    return out[0] if isinstance(out, tuple) else out


def parity(device, tiny: bool) -> None:
    for name, (build, data, _) in models(tiny).items():
        torch.manual_seed(0)
        ref = build().to(device).eval()
        fast = copy.deepcopy(ref).to(memory_format=torch.channels_last)
        inputs = [x.to(device) for x in data(4 if tiny else 32)]
        torch.manual_seed(1)  # the VAE draws its latent noise even in eval mode
        out_ref = _output(ref, inputs).float()
        out_ref.square().mean().backward()
        cl = [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in inputs]
        torch.manual_seed(1)
        with autocast(device):
            out_fast = _output(fast, cl).float()
        out_fast.square().mean().backward()
        g_ref = torch.cat([p.grad.flatten() for p in ref.parameters() if p.grad is not None])
        g_fast = torch.cat([p.grad.flatten().float() for p in fast.parameters() if p.grad is not None])
        for what, a, b in (("output", out_ref, out_fast), ("gradients", g_ref, g_fast)):
            a, b = a.detach(), b.detach()
            rel = float((a - b).norm() / a.norm().clamp_min(1e-30))
            record("parity", name, f"{what}_rel_l2", round(rel, 6), "ok" if rel <= TOL[what] else f"> {TOL[what]}")


def throughput(device, tiny: bool, matmul: float) -> None:
    """``matmul``: the dense rate of the precision the models run at (bf16 on CUDA, fp32 on the CPU)."""
    batch_train, batch_embed, repeats = (4, 8, 2) if tiny else (128, 1024, 20)
    for name, (build, data, embed) in models(tiny).items():
        torch.manual_seed(0)
        model = build().to(device).to(memory_format=torch.channels_last).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        inputs = [x.to(device).contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x.to(device)
                  for x in data(batch_train)]
        flops_train = count_flops(lambda *a: _output(model, a).float().square().mean(), *inputs, backward=True)
        opt.zero_grad(set_to_none=True)

        def step():
            with autocast(device):
                loss = _output(model, inputs).float().square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        step()
        _sync(device)
        t = time.perf_counter()
        for _ in range(repeats):
            step()
        _sync(device)
        train_rate = repeats * batch_train / (time.perf_counter() - t)
        model.eval()
        big = [x.to(device).contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x.to(device)
               for x in data(batch_embed)]
        with torch.no_grad():
            flops_embed = count_flops(lambda *a: embed(model, *a), *big)
            with autocast(device):
                embed(model, *big)
            _sync(device)
            t = time.perf_counter()
            for _ in range(repeats):
                with autocast(device):
                    embed(model, *big)
            _sync(device)
        embed_rate = repeats * batch_embed / (time.perf_counter() - t)
        for kind, rate, flops, b in (("train", train_rate, flops_train, batch_train),
                                     ("embed", embed_rate, flops_embed, batch_embed)):
            per_cell = flops / b
            record("throughput", name, f"{kind}_cells_per_s", round(rate, 1),
                   f"{per_cell / 1e9:.3f} GFLOP/cell, {rate * per_cell / matmul:.1%} of the matmul rate")
    pci = [r for r in ROWS if r["item"] == "pci" and r["metric"] == "embed_cells_per_s"][0]
    record("throughput", "pci", "conv3_embed_goal_300k", pci["value"] >= 300_000, "PCI conv3 embedding >= 300,000 crops/s")


def _steps_that_fit(method: str, crops, params: dict, path: str, seconds: float, paper_steps: int) -> int:
    """Run 20 steps to measure the rate, then the number of steps ``seconds`` allow (at most the paper's)."""
    from cellbench.representations import run

    t = time.perf_counter()
    run(method, crops.take(np.arange(min(len(crops), 4096))), {**params, "steps": 20, "eval_every": 20}
        if method == "deeploc" else {**params, "steps": 20}, path)
    rate = 20 / (time.perf_counter() - t)
    return int(max(1, min(paper_steps, rate * seconds)))


def paper_budgets(device, tiny: bool, coos_size: float, seconds: float) -> None:
    from cellbench.benchmark import EvaluationConfig, evaluate_layers
    from cellbench.features import coos_texture_features
    from cellbench.representations import run
    from cellbench.representations.pci import pci_groups, well_groups
    from cellbench.simulate import CoosDesign, simulate_coos7

    t = time.perf_counter()
    crops = simulate_coos7(CoosDesign(size=coos_size, seed=0)).materialize()
    record("paper", "simulation", "crops", len(crops), f"{time.perf_counter() - t:.0f} s")
    rep = env_params("representation", "paper")
    if tiny:
        rep["pci"]["min_cells_per_group"] = 2
    evaluation = {**env_params("evaluation", None), "seeds": [0], "classifiers": {  # the seed's main classifier
        "l1_logreg": {"C": 1.0, "max_iter": 300, "tol": 1e-4}, "end_to_end": {}}}
    config = EvaluationConfig.from_params(evaluation, "evaluation")
    t = time.perf_counter()
    tables = {"texture": {"haralick": pd.concat([crops.metadata.reset_index(drop=True),
                                                 coos_texture_features(np.asarray(crops.images))], axis=1)}}
    record("paper", "texture", "seconds", round(time.perf_counter() - t, 1))
    train = crops.metadata["Metadata_Split"].to_numpy() == "train"
    eligible = len(pci_groups(well_groups(crops.metadata[train], rep["pci"]["pair_by"]),
                              rep["pci"]["min_cells_per_group"])[0])
    budgets = {"pci": rep["pci"]["epochs"] * (eligible // rep["pci"]["batch_size"]), "deeploc": rep["deeploc"]["steps"]}
    for method, paper_steps in budgets.items():
        params = {**rep[method], "device": str(device)}
        if tiny:
            params.update(width=0.125, batch_size=8, embed_batch_size=64, num_workers=0)
        steps = 3 if tiny else _steps_that_fit(method, crops, params, f"representation.{method}", seconds, paper_steps)
        t = time.perf_counter()
        result = run(method, crops, {**params, "steps": steps, **({"eval_every": max(1, steps // 20)}
                                                                  if method == "deeploc" else {})},
                     f"representation.{method}")
        record("paper", method, "steps", steps, f"of the paper's {paper_steps} ({steps / paper_steps:.1%}), "
               f"{time.perf_counter() - t:.0f} s with embedding")
        keep = {"pci": ("conv3", "conv4"), "deeploc": ("fc2", "end_to_end")}[method]
        tables[method] = {k: v for k, v in result.layers.items() if k in keep}
    for name, layers in tables.items():
        results, _ = evaluate_layers(layers, config, name)
        for r in results.itertuples():
            if r.split in ("test1", "test2", "test3", "test4"):
                record("paper", f"{name}/{r.layer}/{r.classifier}", f"{r.split}_balanced_error",
                       round(100 * r.balanced_error, 2), "%")


def coda_pair(device, tiny: bool, seconds: float) -> None:
    from cellbench.adaptation.experiment import domain_splits, labelled_cells, source_rows
    from cellbench.ingest.sources import IngestionConfig, ingest
    from cellbench.representations.coda import (CodaConfig, adapt_dual, dual_model, predict, train_classifier,
                                                train_dino)

    params = env_params("domain_adaptation", "paper")
    params = merge(params, {"ingestion": {"simulation": {"n_sources": 2, "cells_per_well": 8 if not tiny else 2}},
                            "device": str(device)})
    if tiny:
        params = merge(params, {"ingestion": {"simulation": {"crop_size": 48}},
                                "dino": {"vit": {"image_size": 32, "patch_size": 8, "dim": 32, "depth": 2, "heads": 2},
                                         "head": {"out_dim": 32, "hidden": 32, "bottleneck": 16},
                                         "global_size": 32, "local_size": 16, "n_local": 2, "batch_size": 8},
                                "classifier": {"global_size": 32, "task_depth": 1, "task_heads": 2, "batch_size": 8}})
    config = CodaConfig.from_params(params, "domain_adaptation")
    crops = ingest(IngestionConfig.from_params(config.ingestion.to_dict(), "domain_adaptation.ingestion")).materialize()
    images, meta, y, classes = labelled_cells(crops, config)
    split = domain_splits(meta, "source_1", config.columns)
    tr, va = split["train"], split["val"]
    target = source_rows(meta, config.columns.source, "source_2")
    size = config.classifier.global_size

    def timed_steps(fn, per_call_steps, budget):
        t = time.perf_counter()
        fn(per_call_steps)
        rate = per_call_steps / (time.perf_counter() - t)
        return 2 if tiny else int(max(1, rate * budget))

    dino_cfg = config.dino
    steps = timed_steps(lambda s: train_dino(images[tr], dino_cfg.replace(steps=s), 0, device), 5, seconds * 0.5)
    t = time.perf_counter()
    state, _ = train_dino(images[tr], dino_cfg.replace(steps=steps), 0, device)
    record("coda", "dino_pretrain", "steps", steps, f"of the paper's {dino_cfg.steps}, {time.perf_counter() - t:.0f} s")
    cls = config.classifier.replace(steps=2 if tiny else 200, eval_every=2 if tiny else 50)
    dual, _ = train_classifier(dual_model(state.teacher.backbone, len(classes), cls, 0), images[tr], y[tr], images[va],
                               y[va], cls, 0, device)
    before = float((predict(dual, images[target], size, device) == y[target]).mean())
    adapt_steps = 2 if tiny else max(1, steps // 3)
    adapted, _, _ = adapt_dual(dual, state, images[target], dino_cfg.replace(steps=adapt_steps), 0, device)
    after = float((predict(adapted, images[target], size, device) == y[target]).mean())
    record("coda", "source_1->source_2", "dual_dino_accuracy", round(100 * before, 1), "%")
    record("coda", "source_1->source_2", "oda_accuracy", round(100 * after, 1), f"% after {adapt_steps} ODA steps")


def markdown(host: dict) -> str:
    table = pd.DataFrame(ROWS)
    lines = [f"## Device check ({host['device']}, torch {host['torch']}, {time.strftime('%Y-%m-%d')})", "",
             f"fp32 matmul {host['fp32_tflops']:.1f} TFLOP/s, bf16 matmul {host['bf16_tflops']:.1f} TFLOP/s "
             "(measured in this run).", "", "| section | item | metric | value | note |", "|---|---|---|---|---|"]
    lines += [f"| {r.section} | {r.item} | {r.metric} | {r.value} | {r.note} |" for r in table.itertuples()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (the test suite)")
    ap.add_argument("--out", default="benchmarks/results/gpu_check")
    ap.add_argument("--coos-size", type=float, default=1.0)
    ap.add_argument("--train-seconds", type=float, default=120.0, help="budget per network of section 4")
    ap.add_argument("--coda-seconds", type=float, default=120.0)
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: parity,throughput,paper,coda")
    args = ap.parse_args(argv)
    ROWS.clear()
    device = torch.device("cpu") if args.tiny else resolve_device("auto")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    n = 256 if args.tiny else 8192
    host = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch": torch.__version__,
            "fp32_tflops": matmul_rate(device, torch.float32, n) / 1e12,
            "bf16_tflops": matmul_rate(device, torch.bfloat16, n) / 1e12}
    for key, value in host.items():
        record("host", "machine", key, value if isinstance(value, str) else round(value, 2))
    skip = set(filter(None, args.skip.split(",")))
    start = time.perf_counter()
    if "parity" not in skip:
        parity(device, args.tiny)
    if "throughput" not in skip:
        throughput(device, args.tiny, host["bf16_tflops" if device.type == "cuda" else "fp32_tflops"] * 1e12)
    if "paper" not in skip:
        paper_budgets(device, args.tiny, 0.003 if args.tiny else args.coos_size, args.train_seconds)
    if "coda" not in skip:
        coda_pair(device, args.tiny, args.coda_seconds)
    record("host", "machine", "total_seconds", round(time.perf_counter() - start, 1))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ROWS).to_csv(out / "gpu_check.csv", index=False)
    (out / "gpu_check.md").write_text(markdown(host))
    print(markdown(host))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
