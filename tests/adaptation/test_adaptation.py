"""CODA's building blocks and protocol: DINO loss / centring / EMA / schedules, multicrop,
cross-batch pairs, CKA, the ViT family, source splits, scores, the experiment's input checks and
reports (the training loops are in tests/representations/test_coda.py)."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from cellbench.adaptation import CrossBatchSampler, cosine_schedule, dino_loss, ema_update, linear_cka, update_center
from cellbench.adaptation.dino import multicrop, self_normalize, teacher_temperature
from cellbench.adaptation.experiment import domain_splits, scores
from cellbench.config import ConfigError
from cellbench.models.vit import DINOHead, DualModel, MAEDecoder, ViT, mae_loss, patchify, vit_param_count, vit_small
from cellbench.representations.coda import CodaConfig

from ..conftest import base_params
from ..representations.test_coda import _merge

def test_dino_loss_hand_computed():
    # one image, K = 2, two global crops only (n_crops = 2): pairs (t0, s1) and (t1, s0)
    s = torch.tensor([[0.2, -0.2], [0.0, 0.1]])  # student crop 0, crop 1
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])   # teacher crop 0, crop 1
    c = torch.tensor([[0.5, 0.5]])
    tau_s, tau_t = 0.1, 0.5
    def softmax(v):
        e = [math.exp(x) for x in v]
        return [x / sum(e) for x in e]
    def ce(p, logits):
        q = softmax(logits)
        return -sum(pi * math.log(qi) for pi, qi in zip(p, q))
    p0 = softmax([(1.0 - 0.5) / tau_t, (0.0 - 0.5) / tau_t])
    p1 = softmax([(0.0 - 0.5) / tau_t, (1.0 - 0.5) / tau_t])
    expected = (ce(p0, [0.0 / tau_s, 0.1 / tau_s]) + ce(p1, [0.2 / tau_s, -0.2 / tau_s])) / 2
    assert float(dino_loss(s, t, c, 2, tau_s, tau_t)) == pytest.approx(expected, rel=1e-6)


def test_dino_loss_skips_same_view_and_counts_pairs():
    torch.manual_seed(0)
    b, k, n = 3, 5, 4
    s, t = torch.randn(n * b, k), torch.randn(2 * b, k)
    c = torch.zeros(1, k)
    q = torch.softmax(t / 0.04, -1).chunk(2)
    ls = torch.log_softmax(s / 0.1, -1).chunk(n)
    manual = sum(-(q[i] * ls[v]).sum(-1).mean() for i in range(2) for v in range(n) if v != i) / (2 * n - 2)
    assert float(dino_loss(s, t, c, n)) == pytest.approx(float(manual), rel=1e-6)
    with pytest.raises(ValueError, match="crops"):
        dino_loss(s[:-1], t, c, n)


def test_centre_and_ema_updates():
    c = update_center(torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0], [5.0, 4.0]]), momentum=0.9)
    assert torch.allclose(c, torch.tensor([[0.9 * 1 + 0.1 * 4, 0.9 * 2 + 0.1 * 2]]))
    student, teacher = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        student.weight.fill_(1.0), student.bias.fill_(2.0), teacher.weight.fill_(0.0), teacher.bias.fill_(-1.0)
    ema_update(student, teacher, 0.996)
    assert torch.allclose(teacher.weight, torch.full((1, 2), 0.004))
    assert torch.allclose(teacher.bias, torch.tensor([-0.996 + 0.008]))


def test_schedules():
    s = cosine_schedule(1.0, 0.0, 10, warmup=2)
    assert s[0] == 0.0 and s[1] == 0.5 and s[2] == 1.0
    assert s[2 + 4] == pytest.approx(0.5) and len(s) == 10 and np.all(np.diff(s[2:]) < 0)
    m = cosine_schedule(0.996, 1.0, 100)
    assert m[0] == 0.996 and m[-1] < 1.0 and m[-1] > 0.9999
    t = teacher_temperature(10, 0.04, 0.07, warmup=4)
    assert t[0] == 0.04 and t[3] == pytest.approx(0.07) and (t[4:] == 0.07).all()


def test_multicrop_views_and_cross_batch_split():
    rng = np.random.default_rng(0)
    a, b = torch.zeros(4, 3, 20, 20), torch.ones(4, 3, 20, 20)
    a[:, :, ::2] = 1.0
    b[:, :, :, ::3] = 5.0
    views = multicrop(a, rng, 16, 8, 4, partner=b)
    assert [tuple(v.shape) for v in views] == [(4, 3, 16, 16)] * 2 + [(4, 3, 8, 8)] * 4
    # self-normalised per image and channel
    assert torch.allclose(views[2].mean((2, 3)), torch.zeros(4, 3), atol=1e-5)
    # global_1 and locals 1-2 from the anchor (row stripes), global_2 and locals 3-4 from the partner
    row_striped = [bool((v[:, :, 0] != v[:, :, 1]).any()) for v in views]
    assert row_striped == [True, False, True, True, False, False]


def test_cross_batch_sampler_same_treatment_other_plate():
    meta = pd.DataFrame({"treatment": list("aaaabbbbcc"), "plate": ["p1", "p1", "p2", "p3", "p1", "p2", "p2", "p2", "p1", "p1"]})
    sampler = CrossBatchSampler(meta.treatment, meta.plate)
    rng = np.random.default_rng(0)
    anchors = np.repeat(np.arange(10), 200)
    partners = sampler.sample(anchors, rng)
    t, p = meta.treatment.to_numpy(), meta.plate.to_numpy()
    assert (t[partners] == t[anchors]).all()
    paired = t[anchors] != "c"
    assert (p[partners[paired]] != p[anchors[paired]]).all()
    # treatment c lives on one plate: paired within the treatment, and counted
    assert sampler.n_unpaired == 2
    # anchor 0 (a, p1): partners uniform over a@p2 and a@p3
    counts = np.bincount(partners[anchors == 0], minlength=10)
    assert set(np.flatnonzero(counts)) == {2, 3} and abs(counts[2] - counts[3]) < 60
    # anchor 5 (b, p2): the only cross-plate partner is 4
    assert (partners[anchors == 5] == 4).all()


def test_linear_cka():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0)
    # 1-d hand case: centred x = (-1, 0, 1), y = (-1, 1, 0): (x.y)^2 / (|x|^2 |y|^2) = 1 / 4
    assert linear_cka(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [3.0], [2.0]])) == pytest.approx(0.25)
    assert linear_cka(x, rng.normal(size=(50, 4))) < 0.5
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(x, x[:10])


def test_vit_parameter_counts_from_the_specification():
    # DeiT-S / ViT-S/16 with a 1000-class head: 22,050,664 parameters (timm deit_small_patch16_224)
    assert vit_param_count(224, 16, 3, 384, 12, n_classes=1000) == 22_050_664
    model = vit_small(n_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == 22_050_664
    tiny = ViT(16, 4, 3, 16, 2, 2)
    assert sum(p.numel() for p in tiny.parameters()) == vit_param_count(16, 4, 3, 16, 2)
    head = DINOHead(384, 4096, 2048, 256)
    expected = (384 * 2048 + 2048) + (2048 * 2048 + 2048) + (2048 * 256 + 256) + 256 * 4096
    assert sum(p.numel() for p in head.parameters()) == expected
    keys = set(model.state_dict())
    assert {"patch_embed.proj.weight", "cls_token", "pos_embed", "blocks.11.attn.qkv.weight", "blocks.0.mlp.fc1.bias",
            "norm.weight", "head.weight"} <= keys


def test_vit_shapes_and_interpolated_positions():
    torch.manual_seed(0)
    vit = ViT(16, 4, 3, 16, 2, 2).eval()
    assert vit.tokens(torch.randn(2, 3, 16, 16)).shape == (2, 17, 16)
    assert vit.tokens(torch.randn(2, 3, 8, 8)).shape == (2, 5, 16)  # a local crop
    assert [t.shape for t in vit.block_outputs(torch.randn(2, 3, 16, 16))] == [(2, 16)] * 2
    assert patchify(torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8), 4).shape == (2, 4, 48)
    dec = MAEDecoder(vit, 3, 8, 1, 2)
    assert torch.isfinite(mae_loss(vit, dec, torch.randn(2, 3, 16, 16), 0.75))


def test_domain_splits_and_scores():
    meta = pd.DataFrame({"src": ["s1"] * 6 + ["s2"] * 2, "plate": ["a", "b", "c", "d", "d", "e", "x", "y"],
                         "batch": ["w1", "w1", "w1", "w2", "w2", "w2", "v", "v"]})
    cols = {"source": "src", "plate": "plate", "batch": "batch"}
    split = domain_splits(meta, "s1", cols)
    assert list(split["val"]) == [5] and list(split["test"]) == [2] and list(split["train"]) == [0, 1, 3, 4]
    with pytest.raises(ValueError, match="need >= 3"):
        domain_splits(meta, "s2", cols)
    with pytest.raises(ValueError, match="no cells of source"):
        domain_splits(meta, "s9", cols)
    sc = scores(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert sc["accuracy"] == 0.5
    assert sc["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)  # F1: 2/3, 1/2, 0


def test_self_normalize():
    x = torch.rand(2, 3, 8, 8) * 7 + 3
    y = self_normalize(x)
    assert torch.allclose(y.mean((2, 3)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(y.std((2, 3)), torch.ones(2, 3), atol=1e-4)


def test_dual_model_bad_heads():
    with pytest.raises(ValueError, match="divisible"):
        ViT(16, 4, 3, 15, 1, 2)
    with pytest.raises(ValueError, match="multiple of patch_size"):
        ViT(18, 4, 3, 16, 1, 2)
    assert isinstance(DualModel(ViT(16, 4, 3, 16, 1, 2), 3, depth=1), DualModel)


def _crops(n=12):
    from cellbench.crops import Crops
    meta = pd.DataFrame({"Metadata_Source": ["source_1"] * 6 + ["source_2"] * 6, "Metadata_Batch": "b",
                         "Metadata_Plate": [f"p{i % 3}" for i in range(n)], "Metadata_Compound": "c",
                         "Metadata_MoA": ["A", "B"] * (n // 2), "Metadata_Control": [False] * (n - 1) + [True]})
    return Crops(np.zeros((n, 3, 16, 16), np.uint16), meta)


COLS = {"source": "Metadata_Source", "batch": "Metadata_Batch", "plate": "Metadata_Plate",
        "treatment": "Metadata_Compound", "label": "Metadata_MoA"}


def coda(**over) -> CodaConfig:
    return CodaConfig.from_params(_merge(base_params("domain_adaptation"), over), "domain_adaptation")


def test_domain_adaptation_inputs_are_checked():
    from cellbench.adaptation.experiment import chosen_sources, granularity_study, labelled_cells

    images, meta, y, classes = labelled_cells(_crops(), coda(columns=COLS, drop="Metadata_Control == True"))
    assert len(images) == 11 and classes == ["A", "B"] and list(y[:2]) == [0, 1]
    with pytest.raises(ConfigError, match=r"domain_adaptation\.columns\.label: missing"):
        CodaConfig.from_params({**base_params("domain_adaptation"),
                                "columns": {k: v for k, v in COLS.items() if k != "label"}}, "domain_adaptation")
    with pytest.raises(ValueError, match="Metadata_Well"):
        labelled_cells(_crops(), coda(columns={**COLS, "plate": "Metadata_Well"}))
    with pytest.raises(ValueError, match="no cells left"):
        labelled_cells(_crops(), coda(columns=COLS, drop="Metadata_Compound == 'c'"))
    with pytest.raises(ValueError, match=r"unknown source\(s\) \['source_9'\]"):
        chosen_sources(meta, coda(columns=COLS, targets=["source_9"]), "targets")
    assert chosen_sources(meta, coda(columns=COLS, targets=None), "targets") == ["source_1", "source_2"]
    with pytest.raises(ValueError, match="granularity level 'well'"):
        granularity_study({}, images, meta, y, "source_1", "source_2", coda(columns=COLS), 0, torch.device("cpu"),
                          levels=["well"])
    with pytest.raises(ValueError, match="granularity level 'well'"):  # checked before "source" is adapted
        granularity_study({}, images, meta, y, "source_1", "source_2", coda(columns=COLS), 0, torch.device("cpu"),
                          levels=["source", "well"])
    with pytest.raises(ConfigError, match=r"domain_adaptation\.granularity\.levels: granularity level 'well'"):
        coda(granularity={"levels": ["well"]})
    with pytest.raises(ConfigError, match=r"domain_adaptation\.adapt\.stpes: unknown parameter"):
        coda(adapt={"stpes": 3})
    assert coda(adapt={"steps": 7, "vit": {"drop_path": 0.0}}).adapt_dino().steps == 7
    assert coda(adapt={"vit": {"drop_path": 0.0}}).adapt_dino().vit.dim == 64  # nested keys merge


def test_summaries_and_matrix_report():
    from cellbench.adaptation.experiment import summarise
    from cellbench.reporting.adaptation import gap_table, matrix_markdown
    rows = [{"seed": s, "method": "supervised", "source": a, "target": b, "accuracy": acc, "macro_f1": acc / 2}
            for s, a, b, acc in [(0, "s1", "s1", 0.8), (1, "s1", "s1", 0.6), (0, "s1", "s2", 0.3), (1, "s1", "s2", 0.5)]]
    summary = summarise(pd.DataFrame(rows))
    diag = summary[summary.target == "s1"].iloc[0]
    assert diag.accuracy_mean == pytest.approx(0.7) and diag.accuracy_std == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert (summary.n_seeds == 2).all()
    gaps = gap_table(summary)
    assert gaps.loc["supervised", "in_source"] == pytest.approx(0.7)
    assert gaps.loc["supervised", "out_of_source"] == pytest.approx(0.4)
    md = matrix_markdown(summary)
    assert "| s1 | 70.0 ± 14.1 | 40.0 ± 14.1 |" in md and "| s2 | - | - |" in md


def test_profiling_tables_markdown_mean_sd_over_seeds():
    from cellbench.reporting.tables import profiling_tables_markdown
    rows = [{"features": "ae", "summary": "mean", "variant": "v", "seed": s, "nsc": n, "nscb": n - 0.1,
             "replicate_accuracy": 0.5, "group_accuracy": np.nan, "n_features": 8} for s, n in [(0, 0.9), (1, 0.7)]]
    md = profiling_tables_markdown(pd.DataFrame(rows), {"Mean": ["mean", "v"], "Other": ["mean_sd", "v"]})
    assert "| ae | 80.0 ± 14.1 | - |" in md  # NSC mean ± SD over the two seeds; no mean_sd rows
    assert "| ae | 8 | 80.0 | 70.0 | -10.0 |" in md  # Table 2 layout: dim, NSC, NSCB, drop


def test_report_names_its_seeds_as_plain_integers():
    """The report's header read ``Seeds: [np.int64(0)]`` once the seeds came from a Parquet table."""
    from cellbench.reporting.adaptation import seeds_line
    results = pd.DataFrame({"seed": np.array([1, 0, 1], dtype=np.int64)})
    line = seeds_line(results)
    assert line.startswith("Seeds: [0, 1];") and "np.int64" not in line


def test_a_subset_of_methods_trains_what_it_needs_and_scores_as_the_full_run():
    """``run_experiment(methods=...)`` (the budget study's ``--methods``): only the models the chosen
    methods need are trained, each exactly as in the full run, so the subset's scores are the full
    run's; an unknown method is an error naming the known ones."""
    from cellbench.adaptation.experiment import chosen_methods, models_needed, run_experiment
    from cellbench.ingest.sources import ingest

    assert models_needed(["oda"]) == {"dual_dino"} and models_needed(["ttt", "coda"]) == {"dual_mae", "dual_cb"}
    assert chosen_methods(["coda", "supervised"]) == ("supervised", "coda")  # the report's order
    with pytest.raises(ValueError, match=r"\['odaa'\] chosen; expected one or more of \['supervised'"):
        chosen_methods(["supervised", "odaa"])
    with pytest.raises(ValueError, match="none chosen"):
        chosen_methods([])
    vit = {"image_size": 16, "patch_size": 8, "dim": 16, "depth": 1, "heads": 2, "drop_path": 0.1}
    config = coda(ingestion={"simulation": {"n_sources": 2, "cells_per_well": 2, "compounds_per_moa": 2,
                                            "moas": ["Actin disruptors", "DNA damage", "Eg5 inhibitors"]}},
                  seeds=[0], train_sources=["source_1"], targets=None,
                  dino={"vit": vit, "head": {"out_dim": 16, "hidden": 16, "bottleneck": 8}, "global_size": 16,
                        "local_size": 8, "n_local": 2, "steps": 3, "batch_size": 16,
                        "mae": {"steps": 2, "decoder_dim": 8}, "ttt": {"steps": 1, "batch_size": 32}},
                  classifier={"global_size": 16, "steps": 3, "batch_size": 16, "eval_every": 3},
                  adapt={"steps": 2}, granularity={"source": "source_1", "target": "source_2", "levels": ["source"]},
                  cka_cells=32)
    crops = ingest(config.ingestion).materialize()
    full, gran_full, *_ = run_experiment(crops, config, torch.device("cpu"))
    part, gran_part, cka, tokens, artefact, hist = run_experiment(crops, config, torch.device("cpu"),
                                                                  methods=["oda", "supervised"])
    assert set(part.method) == {"supervised", "oda"} and set(gran_part.method) == {"oda"} and tokens.empty
    assert set(cka.method) == {"oda"} and not any("/cb_pretrain" in k or "/mae_pretrain" in k for k in hist)
    assert not any("/dual_cb/" in k or "/dual_mae/" in k for k in artefact["state_dict"])
    key = ["method", "source", "target"]
    merged = part.merge(full, on=key, suffixes=("", "_full"))
    assert len(merged) == len(part) == 3  # supervised in source and on source_2, ODA on source_2
    for col in ("accuracy", "macro_f1", "probe_accuracy"):
        np.testing.assert_array_equal(merged[col].to_numpy(), merged[f"{col}_full"].to_numpy())
    assert gran_part.accuracy.tolist() == gran_full[gran_full.method == "oda"].accuracy.tolist()
