"""Trains PCI, DeepLoc, the weak ResNet18 and DINO for a few steps on fixed data and saves the
weights; run once as a single process and once under ``torchrun --nproc_per_node=2`` (gloo on
CPUs) by ``test_distributed.py``. Usage: ``distributed_worker.py OUT_DIR``."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.conftest

from tests.conftest import base_params  # noqa: E402

from cellbench.representations.coda import DinoConfig, train_dino  # noqa: E402
from cellbench.representations.deeploc import DeepLocConfig  # noqa: E402
from cellbench.representations.deeploc import train as train_deeploc  # noqa: E402
from cellbench.representations.pci import PCIConfig, train_pci  # noqa: E402
from cellbench.representations.weak import WeakConfig  # noqa: E402
from cellbench.representations.weak import train as train_weak  # noqa: E402
from cellbench.training.distributed import current  # noqa: E402

CPU = torch.device("cpu")


def data(n=32, c=2, size=64):
    rng = np.random.default_rng(0)
    images = rng.random((n, c, size, size)).astype(np.float32)
    labels = np.arange(n) % 4
    images[labels == 1, 0, 10:30, 10:30] += 1.0
    return images, labels


def main(out: Path) -> None:
    torch.set_num_threads(1)
    ctx = current()
    images, labels = data()
    states = {}
    pci = PCIConfig.from_params({**base_params("representation.pci"), "width": 0.0625, "batch_size": 8, "steps": 3,
                                 "min_cells_per_group": 2, "device": "cpu"}, "pci")
    model, _ = train_pci(images, (np.arange(32) // 4).astype(str), pci, CPU)
    states["pci"] = model.state_dict()
    deeploc = DeepLocConfig.from_params({**base_params("representation.deeploc"), "width": 0.0625, "batch_size": 8,
                                         "steps": 3, "eval_every": 3, "lr": 1e-3, "device": "cpu"}, "deeploc")
    model, *_ = train_deeploc(images, labels, deeploc, CPU)
    states["deeploc"] = model.state_dict()
    weak = WeakConfig.from_params({**base_params("treatments.weak.resnet_mixup"), "width": 0.125, "batch_size": 8,
                                   "steps": 3, "device": "cpu"}, "weak")
    model, _, _ = train_weak(images[:, :, :32, :32], labels, np.arange(32) % 2, weak, CPU)
    states["weak"] = model.state_dict()
    dino_params = base_params("domain_adaptation.dino")
    dino_params.update(vit={"image_size": 16, "patch_size": 8, "dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 2.0,
                            "drop_path": 0.0},
                       head={"out_dim": 16, "hidden": 16, "bottleneck": 8, "use_bn": True}, global_size=16,
                       local_size=8, n_local=2, steps=3, batch_size=8)
    state, _ = train_dino(images, DinoConfig.from_params(dino_params, "dino"), 0, CPU)
    states["dino_student"] = state.student.state_dict()
    states["dino_teacher"] = state.teacher.state_dict()
    states["dino_center"] = {"center": state.center}
    torch.save({k: {n: t.detach().clone() for n, t in v.items()} for k, v in states.items()},
               out / f"weights_rank{ctx.rank}.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
