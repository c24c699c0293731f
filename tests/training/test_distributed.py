"""DistributedDataParallel on the CPU: 2 processes under torchrun (gloo) against one process with
the same global batch and the same BatchNorm arithmetic, for PCI, DeepLoc, the weak ResNet18 and
DINO (BN head, global centre).

Tolerances: PCI and the DINO teacher / centre within 1e-4 absolute. DeepLoc and the DINO student
within 2 % relative L2 with fewer than 2 % of weights beyond 1e-4: Adam turns float-level
differences of near-zero gradient components (summation order of the per-process partial sums)
into full +-lr steps. The weak ResNet18's head has Dropout, whose masks each process draws for its
own slice, so it matches one process only in distribution; for it (and every model) the two
processes must end bit-identical to each other.
"""

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("distributed_worker.py")


def _run(out: Path, processes: int) -> list[dict]:
    out.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CELLBENCH_DIST_BACKEND": "gloo", "CUDA_VISIBLE_DEVICES": "",
           "CELLBENCH_GLOBAL_BN": "1"}  # the single process uses the same BatchNorm arithmetic
    if processes == 1:
        cmd = [sys.executable, str(WORKER), str(out)]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(WORKER), str(out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return [torch.load(out / f"weights_rank{r}.pt", weights_only=True) for r in range(processes)]


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.flatten().double() for v in state.values() if v.is_floating_point()])


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    (one,) = _run(tmp_path / "one", 1)
    rank0, rank1 = _run(tmp_path / "two", 2)
    for model, state in rank0.items():
        assert all(torch.equal(v, rank1[model][k]) for k, v in state.items()), model  # DDP keeps ranks in step
        assert all(torch.equal(v, one[model][k]) for k, v in state.items() if not v.is_floating_point()), model
    for model in ("pci", "dino_teacher", "dino_center"):
        diff = float((_flat(one[model]) - _flat(rank0[model])).abs().max())
        assert diff <= 1e-4, f"{model}: max difference {diff:.2e}"
    for model in ("deeploc", "dino_student"):
        a, b = _flat(one[model]), _flat(rank0[model])
        rel = float((a - b).norm() / a.norm())
        beyond = float(((a - b).abs() > 1e-4).double().mean())
        assert rel <= 0.02 and beyond < 0.02, f"{model}: relative L2 {rel:.2e}, {beyond:.2%} beyond 1e-4"
    assert torch.isfinite(_flat(rank0["weak"])).all()
    assert (one["pci"]["source.blocks.0.bn.running_mean"] != 0).any()  # BatchNorm statistics were updated


def test_kedro_run_under_torchrun_writes_once(tmp_path):
    """``torchrun --nproc_per_node=2 --no-python kedro run``: both processes train together, rank 0
    writes the outputs and the one MLflow run."""
    import mlflow

    from tests.test_run import copy_project

    project = copy_project(tmp_path)
    db = tmp_path / "mlflow.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CELLBENCH_DIST_BACKEND": "gloo", "CUDA_VISIBLE_DEVICES": "",
           "CELLBENCH_MLFLOW_URI": f"sqlite:///{db}", "KEDRO_DISABLE_TELEMETRY": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true", "COLUMNS": "400"}  # rich wraps log lines at the width
    params = ("ingestion.simulation.size=0.003,representation.pci.steps=2,representation.pci.batch_size=16,"
              "representation.pci.min_cells_per_group=2,representation.pci.width=0.0625")
    kedro = str(Path(sys.executable).with_name("kedro"))
    first = subprocess.run([kedro, "run", "--pipelines=ingestion", "--params", params], env=env, cwd=project,
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python", kedro,
           "run", "--pipelines=representation", "--namespaces=representation.pci", "--params", params]
    done = subprocess.run(cmd, env=env, cwd=project, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "outputs kept in memory; rank 0 writes" in done.stdout + done.stderr
    model = torch.load(project / "data/06_models/pci.pt", weights_only=True)
    assert model["config"]["width"] == 0.0625
    assert {p.name for p in (project / "data/04_feature/pci").iterdir()} == {f"conv{i}.parquet" for i in range(1, 6)}
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    runs = mlflow.search_runs(experiment_names=["cellbench"])
    assert len(runs) == 2 and (runs.status == "FINISHED").all()  # ingestion, then one run for the 2 processes
