"""``benchmarks/gpu_check.py --tiny``: the device check's own code on the CPU at toy sizes, so the
script that runs the first time a GPU appears cannot rot unseen."""

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_tiny_runs_every_section(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sys.modules.pop("gpu_check", None)
    import gpu_check

    assert gpu_check.main(["--tiny", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "gpu_check.csv")
    assert set(table.section) == {"host", "parity", "throughput", "paper", "coda"}
    parity = table[table.section == "parity"]
    assert len(parity) == 2 * 6 and (parity.note == "ok").all()  # fp32 vs channels-last on the CPU
    rates = table[(table.section == "throughput") & table.metric.str.endswith("cells_per_s")]
    assert (rates.value.astype(float) > 0).all() and len(rates) == 12
    errors = table[table.metric.str.endswith("balanced_error")]
    assert {"texture/haralick/l1_logreg", "pci/conv3/l1_logreg", "deeploc/end_to_end/end_to_end"} <= set(errors.item)
    assert errors.value.astype(float).between(0, 100).all()
    assert "## Device check" in (tmp_path / "gpu_check.md").read_text()
