"""Online adaptation of a CODA dual model to new, unlabelled plates (seed 001: "as new data arrive,
it is preferable that they are analysed in an online fashion").

* :func:`train_source_model` trains, on one source, the DINO foundation (with cross-batch pairs:
  CODA's DINO-CB; or plain DINO) and the dual model's task part on its labels, and packs them into
  one artefact (``model: coda_dual``): the dual model's weights, the DINO student / teacher /
  centre that ODA and CODA continue from, the settings that rebuild both, the class names, and a
  seeded sample of the source's crops (``reference_images``, float16) against which a new plate's
  distance from the source is measured.
* :func:`adapt` continues DINO on the cells of one unit (a plate, a batch or a source) from the
  artefact's state and swaps the adapted teacher backbone into the dual model (ODA; CODA with
  cross-batch pairs among the unit's plates: same treatment, another plate), returning a new
  artefact whose task part is unchanged.
* :func:`shift_report` measures how far a unit is from the source before and after:

  - ``entropy``: mean entropy (nats) of the predicted class distribution;
  - ``frechet``: the Fréchet distance between Gaussians fitted to the foundation's class tokens of
    the source reference crops and of the unit,
    ``FD = |mu_s - mu_t|^2 + tr(S_s + S_t - 2 (S_s S_t)^{1/2})``, divided by ``tr(S_s)`` so that
    the unadapted and adapted feature spaces compare (0 = the unit looks like the source);
  - ``cka_source`` / ``cka_target``: linear CKA between the unadapted and adapted foundations on
    the source reference crops / the unit's crops (1 = unchanged);
  - ``accuracy`` and ``macro_f1`` when the unit's labels are known (simulated plates).

References: Haslum et al., "Bridging Generalization Gaps in High Content Imaging Through Online
Self-Supervised Domain Adaptation" (CODA, seed 001); the Fréchet distance as in Heusel et al. 2017
(FID).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd
import torch

from cellbench.adaptation.pairs import CrossBatchSampler
from cellbench.config import Config, ConfigError, positive
from cellbench.ingest.sources import IngestionConfig
from cellbench.metrics.similarity import linear_cka
from cellbench.models.vit import DualModel, ViT
from cellbench.reporting.montage import MontageConfig

log = logging.getLogger(__name__)

MODEL = "coda_dual"
METHODS = ("oda", "coda")


def train_source_model(images: np.ndarray, meta: pd.DataFrame, y: np.ndarray, classes: list[str], source: str,
                       config, pairs: str, seed: int, reference_cells: int, device: torch.device) -> tuple[dict, dict]:
    """The artefact of a dual model trained on ``source`` (module doc) and its training histories.

    ``images`` / ``meta`` / ``y`` are the labelled cells of every source (``labelled_cells``);
    only ``source``'s training plates train, its validation plate chooses the checkpoint."""
    from cellbench.adaptation.experiment import cross_batch_sampler, domain_splits
    from cellbench.representations.coda import dual_model, train_classifier, train_dino

    if pairs not in ("cb", "none"):
        raise ValueError(f"coda_model.pairs: {pairs!r}; expected 'cb' (CODA's DINO-CB) or 'none' (DINO)")
    split = domain_splits(meta, source, config.columns)
    tr, va = split["train"], split["val"]
    sampler = cross_batch_sampler(meta, tr, config) if pairs == "cb" else None
    state, dino_hist = train_dino(images[tr], config.dino, seed, device, sampler=sampler)
    dual = dual_model(state.teacher.backbone, len(classes), config.classifier, seed)
    dual, cls_hist = train_classifier(dual, images[tr], y[tr], images[va], y[va], config.classifier, seed, device)
    rng = np.random.default_rng(seed)
    ref = np.sort(rng.choice(tr, min(len(tr), int(reference_cells)), replace=False))
    artefact = {
        "model": MODEL,
        "config": {"vit": {k: v for k, v in config.dino.vit.to_dict().items() if k != "drop_path"},
                   "in_channels": int(images.shape[1]), "n_classes": len(classes),
                   "task_depth": config.classifier.task_depth, "task_heads": config.classifier.task_heads},
        "state_dict": {k: v.detach().cpu() for k, v in dual.state_dict().items()},
        "dino": {"student": _cpu(state.student.state_dict()), "teacher": _cpu(state.teacher.state_dict()),
                 "center": state.center.detach().cpu()},
        "dino_config": config.dino.to_dict(),
        "eval_size": int(config.classifier.global_size),
        "classes": [str(c) for c in classes],
        "source": str(source),
        "pairs": pairs,
        "adapted_on": [],
        "reference_images": torch.from_numpy(images[ref].astype(np.float16)),
    }
    return artefact, {"dino": dino_hist, "classifier": cls_hist}


def _cpu(state: dict) -> dict:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _check_artefact(artefact) -> None:
    if not isinstance(artefact, dict) or artefact.get("model") != MODEL:
        got = artefact.get("model") if isinstance(artefact, dict) else type(artefact).__name__
        raise ValueError(f"adapt: the model is {got!r}, not a CODA dual model ({MODEL!r}: kedro run --pipelines=coda_model)")


def dual_from(artefact: dict) -> DualModel:
    """The dual model of an artefact, weights loaded, in eval mode."""
    _check_artefact(artefact)
    cfg = artefact["config"]
    foundation = ViT(**cfg["vit"], in_channels=cfg["in_channels"])
    dual = DualModel(foundation, cfg["n_classes"], depth=cfg["task_depth"], heads=cfg["task_heads"])
    dual.load_state_dict(artefact["state_dict"])
    dual.freeze_foundation()
    return dual.eval()


def dino_state_from(artefact: dict):
    """The DINO student / teacher / centre ODA and CODA continue from."""
    from cellbench.representations.coda import DinoConfig, new_dino

    _check_artefact(artefact)
    dino = DinoConfig.from_params({**artefact["dino_config"], "pretrained": None}, "coda_model.dino")
    state = new_dino(dino, artefact["config"]["in_channels"], 0)  # the architecture; the weights are loaded next
    state.student.load_state_dict(artefact["dino"]["student"])
    state.teacher.load_state_dict(artefact["dino"]["teacher"])
    state.center = artefact["dino"]["center"].clone()
    return state, dino


def check_crops(artefact: dict, crops: np.ndarray, what: str = "crops") -> None:
    """Channel count and size against the network; an empty set is an error."""
    cfg = artefact["config"]
    x = np.asarray(crops) if not hasattr(crops, "shape") else crops
    if len(x.shape) != 4:
        raise ValueError(f"{what}: must be N x C x H x W, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{what}: no cells (the CODA model needs at least one crop)")
    if x.shape[1] != cfg["in_channels"]:
        raise ValueError(f"{what}: the CODA model takes {cfg['in_channels']} channel(s), got {x.shape[1]} "
                         f"(shape {tuple(x.shape)})")
    if min(x.shape[2:]) < artefact["eval_size"]:
        raise ValueError(f"{what}: the CODA model needs crops of at least {artefact['eval_size']} x "
                         f"{artefact['eval_size']} px, got {x.shape[2]} x {x.shape[3]}")


@torch.no_grad()
def probabilities(dual: DualModel, images: np.ndarray, size: int, batch_size: int = 256) -> np.ndarray:
    """Softmax class probabilities of raw crops (the CODA evaluation view: max-normalised, centre
    crop, self-normalised)."""
    from cellbench.adaptation.dino import eval_view
    from cellbench.representations.coda import _unit

    out = [torch.softmax(dual(eval_view(_unit(images[s:s + batch_size]), size)).float(), dim=1).numpy()
           for s in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float64)


def class_tokens(foundation: ViT, images: np.ndarray, size: int) -> np.ndarray:
    """The foundation's class tokens of raw crops (the CODA evaluation view), float64."""
    from cellbench.representations.coda import predict

    return predict(foundation, images, size, torch.device("cpu"), features=True).astype(np.float64)


def predict_table(artefact: dict, crops, batch_size: int = 256) -> pd.DataFrame:
    """``Prob_<class>`` per crop: the served form of a CODA dual model (raw crops in)."""
    x = np.asarray(crops, dtype=np.float32)
    check_crops(artefact, x)
    probs = probabilities(dual_from(artefact), x, artefact["eval_size"], batch_size)
    return pd.DataFrame(probs, columns=[f"Prob_{c}" for c in artefact["classes"]])


def adapt(artefact: dict, images: np.ndarray, method: str, overrides: dict, seed: int, device: torch.device,
          treatment=None, plate=None, unit: str = "") -> tuple[dict, dict]:
    """ODA / CODA on one unit's ``images`` from the artefact's DINO state (module doc). CODA pairs
    each cell with one of the same ``treatment`` on another ``plate``. ``overrides`` replaces DINO
    settings for the adaptation (e.g. ``{"steps": 100}``). Returns ``(adapted artefact, history)``."""
    from cellbench.representations.coda import adapt_dual, dino_overridden

    if method not in METHODS:
        raise ValueError(f"adapt.method: {method!r}; expected one of {list(METHODS)}")
    check_crops(artefact, images, f"adaptation unit {unit!r}")
    state, dino = dino_state_from(artefact)
    dino = dino_overridden(dino, overrides, "adapt.dino")
    sampler = None
    if method == "coda":
        if treatment is None or plate is None:
            raise ValueError("adapt: CODA needs each cell's treatment and plate (adapt.columns.treatment / plate)")
        sampler = CrossBatchSampler(treatment, plate)
        if sampler.n_unpaired:
            log.info("CODA on %s: %d of %d cells have no partner on another plate (paired within the treatment)",
                     unit, sampler.n_unpaired, len(images))
    adapted, new_state, history = adapt_dual(dual_from(artefact), state, images, dino, seed, device, sampler=sampler)
    out = dict(artefact)
    out["state_dict"] = {k: v.detach().cpu() for k, v in adapted.state_dict().items()}
    out["dino"] = {"student": _cpu(new_state.student.state_dict()), "teacher": _cpu(new_state.teacher.state_dict()),
                   "center": new_state.center.detach().cpu()}
    out["adapted_on"] = [*artefact.get("adapted_on", []), {"unit": str(unit), "method": method,
                                                           "steps": int(dino.steps), "seed": int(seed)}]
    return out, history


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})`` of Gaussians fitted to the rows of
    ``a`` and ``b`` (sample covariances)."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"Fréchet distance needs two n x d matrices (n >= 2) of one width, got {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(sa @ sb)
    if np.iscomplexobj(root):
        root = root.real
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * np.trace(root))


def entropy(probs: np.ndarray) -> float:
    """Mean entropy (nats) of rows of class probabilities."""
    p = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    return float(-(p * np.log(p)).sum(1).mean())


def shift_report(before: dict, after: dict, images: np.ndarray, labels=None) -> tuple[dict, np.ndarray, np.ndarray]:
    """Scores of a unit before and after adaptation (module doc). Returns ``(scores, probabilities
    before, probabilities after)``; ``labels`` are class names (``None``: no accuracy)."""
    from sklearn.metrics import f1_score

    size = before["eval_size"]
    ref = before["reference_images"].float().numpy()
    out: dict = {"n_cells": int(len(images))}
    probs, tokens = {}, {}
    for stage, art in (("before", before), ("after", after)):
        dual = dual_from(art)
        probs[stage] = probabilities(dual, images, size)
        tokens[stage] = (class_tokens(dual.foundation, ref, size), class_tokens(dual.foundation, images, size))
        src, tgt = tokens[stage]
        out[f"entropy_{stage}"] = entropy(probs[stage])
        out[f"frechet_{stage}"] = frechet_distance(src, tgt) / max(float(np.trace(np.atleast_2d(np.cov(src, rowvar=False)))),
                                                                   1e-12)
        if labels is not None:
            classes = np.asarray(before["classes"])
            pred = classes[probs[stage].argmax(1)]
            y = np.asarray(labels).astype(str)
            out[f"accuracy_{stage}"] = float(np.mean(pred == y))
            out[f"macro_f1_{stage}"] = float(f1_score(y, pred, labels=classes, average="macro", zero_division=0))
    out["cka_source"] = linear_cka(tokens["before"][0], tokens["after"][0])
    out["cka_target"] = linear_cka(tokens["before"][1], tokens["after"][1])
    return out, probs["before"], probs["after"]


UNITS = ("plate", "batch", "source", "all")


@dataclasses.dataclass(frozen=True)
class CodaModelConfig(Config):
    """``coda_model``: which source of the ``domain_adaptation`` screen trains the registered dual
    model, with cross-batch pairs (``cb``, CODA's DINO-CB) or without (``none``), its seed, and how
    many source crops the artefact keeps as the reference of :func:`shift_report`."""

    source: str
    pairs: str
    seed: int
    reference_cells: int

    def check(self, path: str) -> None:
        positive(path, reference_cells=self.reference_cells)
        if self.pairs not in ("cb", "none"):
            raise ConfigError(f"{path}.pairs: {self.pairs!r}; expected 'cb' or 'none'")


@dataclasses.dataclass(frozen=True)
class AdaptColumns(Config):
    """``adapt.columns``: the metadata of a new plate. ``treatment`` pairs cells for CODA; ``label``
    (optional: a real new plate has none) is only used to score before / after."""

    source: str
    batch: str
    plate: str
    treatment: str | None
    label: str | None


@dataclasses.dataclass(frozen=True)
class AdaptConfig(Config):
    """``adapt``: the registered CODA model (``models:/<name>/<version>``), ODA or CODA, the unit a
    model version is adapted on (``plate``, ``batch``, ``source`` or ``all`` the cells at once), the
    cells to adapt on (a pandas query; null = all), DINO overrides for the adaptation, the seed,
    whether to register each adapted model, and the crops (any ingestion source) with their montage."""

    model: str
    method: str
    granularity: str
    cells: str | None
    columns: AdaptColumns
    dino: dict
    seed: int
    register: bool
    ingestion: IngestionConfig
    montage: MontageConfig

    def check(self, path: str) -> None:
        from cellbench.embedding import check_model_uri

        check_model_uri(path, self.model)
        if self.method not in METHODS:
            raise ConfigError(f"{path}.method: {self.method!r}; expected one of {list(METHODS)}")
        if self.granularity not in UNITS:
            raise ConfigError(f"{path}.granularity: {self.granularity!r}; expected one of {list(UNITS)}")
        check_overrides(self.dino, f"{path}.dino")
        if self.method == "coda" and self.columns.treatment is None:
            raise ConfigError(f"{path}.columns.treatment: CODA pairs cells by treatment across plates; name the column "
                              "or use method: oda")

    def unit_column(self) -> str | None:
        return None if self.granularity == "all" else getattr(self.columns, self.granularity)


def check_overrides(overrides: dict, path: str, cls=None) -> None:
    """Every key of ``overrides`` a field of the DINO settings (``cls``, nested sections checked in
    turn) and every value of that field's kind; a ``ConfigError`` naming the full path otherwise."""
    import typing

    from cellbench.config import _coerce
    from cellbench.representations.coda import DinoConfig

    cls = cls or DinoConfig
    hints = {f.name: typing.get_type_hints(cls)[f.name] for f in dataclasses.fields(cls)}
    for key, value in (overrides or {}).items():
        if key not in hints:
            raise ConfigError(f"{path}.{key}: unknown parameter; the known keys are {sorted(hints)}")
        kind = hints[key]
        if isinstance(kind, type) and issubclass(kind, Config) and isinstance(value, dict):
            check_overrides(value, f"{path}.{key}", kind)
        else:
            _coerce(value, kind, f"{path}.{key}")


def adaptation_units(meta: pd.DataFrame, config: AdaptConfig) -> list[tuple[str, np.ndarray]]:
    """``[(unit, row positions)]`` of the cells ``config.cells`` selects, one entry per value of the
    granularity column in sorted (arrival) order; an error naming the query or column when there
    are no cells."""
    from cellbench.metadata import require_columns

    needed = [c for c in (config.unit_column(), config.columns.plate, config.columns.treatment, config.columns.label)
              if c is not None and (c != config.columns.treatment or config.method == "coda")]
    require_columns(meta, needed, "adapt crops")
    keep = np.ones(len(meta), bool)
    if config.cells:
        try:
            keep = meta.eval(config.cells).to_numpy(bool)
        except Exception as exc:
            raise ValueError(f"adapt.cells: cannot evaluate {config.cells!r} on the crop metadata ({exc})") from exc
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise ValueError(f"adapt.cells: no cells to adapt on ({config.cells!r} selects none of {len(meta)} crops)"
                         if config.cells else "adapt: the crops hold no cells to adapt on")
    column = config.unit_column()
    if column is None:
        return [("all", rows)]
    values = meta[column].astype(str).to_numpy()[rows]
    return [(u, rows[values == u]) for u in sorted(set(values))]


def train_registered_model(crops, da, config: CodaModelConfig, device: torch.device) -> tuple[dict, dict]:
    """:func:`train_source_model` on the labelled cells of ``crops`` (the ``domain_adaptation``
    screen ``da`` describes), after checking that ``config.source`` is one of its sources."""
    from cellbench.adaptation.experiment import labelled_cells

    images, meta, y, classes = labelled_cells(crops, da)
    present = sorted(meta[da.columns.source].astype(str).unique())
    if config.source not in present:
        raise ValueError(f"coda_model.source: {config.source!r} is not a source of the crops "
                         f"(column {da.columns.source}: {present})")
    return train_source_model(images, meta, y, classes, config.source, da, config.pairs, config.seed,
                              config.reference_cells, device)


def adapt_cells(artefact: dict, crops, units: list[tuple[str, np.ndarray]], config: AdaptConfig,
                device: torch.device) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[str, dict]]]:
    """Adapt ``artefact`` on each unit of ``crops`` (from :func:`adaptation_units`) and score it
    before / after. Returns ``(per-cell predictions, per-unit report, [(unit, adapted artefact)])``."""
    import time

    check_crops(artefact, crops, "adapt crops")
    meta, cols = crops.metadata.reset_index(drop=True), config.columns
    classes = np.asarray(artefact["classes"])
    adapted, reports, predictions = [], [], []
    for k, (unit, rows) in enumerate(units, 1):
        t0 = time.perf_counter()
        images, part = np.asarray(crops.take(rows).images, dtype=np.float32), meta.iloc[rows]
        new, _ = adapt(artefact, images, config.method, config.dino, config.seed, device,
                       treatment=part[cols.treatment].to_numpy() if cols.treatment else None,
                       plate=part[cols.plate].to_numpy(), unit=unit)
        scores, before, after = shift_report(artefact, new, images,
                                             part[cols.label].astype(str).to_numpy() if cols.label else None)
        reports.append({"unit": unit, "method": config.method, "granularity": config.granularity, **scores,
                        "seconds": time.perf_counter() - t0})
        predictions.append(part[[c for c in part.columns if c.startswith("Metadata_")]].assign(
            Metadata_AdaptUnit=unit, Predicted_before=classes[before.argmax(1)], Predicted_after=classes[after.argmax(1)],
            **{f"Prob_{c}": after[:, i] for i, c in enumerate(classes)}))
        adapted.append((unit, new))
        log.info("adapt %d/%d: %s %s on %s (%d cells) in %.0f s: %s", k, len(units), config.method.upper(),
                 config.granularity, unit, len(rows), time.perf_counter() - t0,
                 ", ".join(f"{key} {value:.3f}" for key, value in scores.items() if isinstance(value, float)))
    return pd.concat(predictions, ignore_index=True), pd.DataFrame(reports), adapted


def with_versions(predictions: pd.DataFrame, report: pd.DataFrame, versions: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The registered version of each unit added to the predictions (``Metadata_ModelVersion``) and
    the report (``registered_version``; empty when nothing was registered), and the report as
    MLflow metrics ``adapt/<unit>/<score>``."""
    report = report.copy()
    report.insert(1, "registered_version", [versions.get(u, "") for u in report["unit"]])
    predictions = predictions.assign(Metadata_ModelVersion=predictions["Metadata_AdaptUnit"].map(versions).fillna(""))
    metrics = {f"adapt/{safe_name(r['unit'])}/{key}": [{"step": 0, "value": float(v)}]
               for r in report.to_dict("records") for key, v in r.items()
               if isinstance(v, float) and key not in ("seconds",)}
    return predictions, report, metrics


def safe_name(unit: str) -> str:
    """A unit name usable in MLflow metric and model names."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(unit))
