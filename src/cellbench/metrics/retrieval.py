"""Retrieval metrics on profiles: nearest-neighbour matching (NSC / NSCB, replicate and group
accuracy), mean average precision with copairs-compatible p-values, and PCI's normalised average
pairwise distance score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.metadata import feature_columns, require_columns


def cosine_similarity(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """cos(x, y) = x.y / (|x| |y|) for every row pair of ``a`` and ``b`` (default ``a``)."""
    a = np.asarray(a, dtype=np.float64)
    b = a if b is None else np.asarray(b, dtype=np.float64)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = an if b is a else b / np.linalg.norm(b, axis=1, keepdims=True)
    return an @ bn.T


def _codes(meta: pd.DataFrame, cols: list[str]) -> np.ndarray:
    if not cols:
        return np.zeros(len(meta), dtype=np.int64)
    return meta.groupby(list(cols), sort=False, dropna=False).ngroup().to_numpy()


def _batch_sets(values: pd.Series, sep: str = ",") -> list[frozenset]:
    return [frozenset(str(v).split(sep)) for v in values]


def nearest_neighbour_matching(meta: pd.DataFrame, feats: np.ndarray, label: str,
                               exclude_same: list[str] | None = None, multi_valued: list[str] | None = None,
                               sep: str = ",") -> pd.DataFrame:
    """1-NN (cosine) prediction of ``label`` for every profile among the other profiles.

    Candidates sharing a value with the query in any ``exclude_same`` column are left out (NSC:
    the compound; NSCB: compound and batch). A column in ``multi_valued`` holds ``sep``-joined sets
    (a treatment seen in several batches) and excludes candidates whose set intersects the query's.
    Returns ``meta`` with ``predicted``, ``neighbour`` (row position), ``similarity``, ``correct``.
    """
    where = "nearest_neighbour_matching"
    exclude_same = list(exclude_same or [])
    multi_valued = set(multi_valued or [])
    require_columns(meta, [label] + exclude_same, where)
    feats = np.asarray(feats, dtype=np.float64)
    if len(meta) != len(feats):
        raise ValueError(f"{where}: {len(meta)} metadata rows but {len(feats)} feature rows")
    if np.isnan(feats).any():
        raise ValueError(f"{where}: NaN in the features")
    sim = cosine_similarity(feats)
    allowed = ~np.eye(len(meta), dtype=bool)
    for col in exclude_same:
        if col in multi_valued:
            sets = _batch_sets(meta[col], sep)
            same = np.array([[bool(s & t) for t in sets] for s in sets], dtype=bool).reshape(len(sets), len(sets))
        else:
            c = _codes(meta, [col])
            same = c[:, None] == c[None, :]
        allowed &= ~same
    sim = np.where(allowed, sim, -np.inf)
    nn = np.argmax(sim, axis=1)
    has = allowed.any(axis=1)
    labels = meta[label].to_numpy()
    out = meta.reset_index(drop=True).copy()
    out["neighbour"] = np.where(has, nn, -1)
    out["similarity"] = np.where(has, sim[np.arange(len(nn)), nn], np.nan)
    out["predicted"] = np.where(has, labels[nn], None)
    out["correct"] = has & (out["predicted"].to_numpy() == labels)
    return out


def nsc_nscb(treatments: pd.DataFrame, feats: np.ndarray, moa: str = "Metadata_MoA",
             compound: str = "Metadata_Compound", batch: str = "Metadata_Batch") -> dict:
    """BBBC021 MoA matching (Ljosa et al. 2013) on treatment profiles, 1-NN cosine.

    NSC: not-same-compound (all treatments of the query's compound are excluded). NSCB: also not
    the same batch (``batch`` may hold comma-joined weeks); MoAs whose treatments all lie in one
    batch cannot be matched and are dropped (Cholesterol-lowering and Kinase inhibitors on BBBC021:
    103 -> 92 treatments). Returns counts, accuracies and both per-treatment tables.
    """
    nsc = nearest_neighbour_matching(treatments, feats, moa, [compound])
    batches = _batch_sets(treatments[batch])
    moa_batches: dict = {}
    for m, b in zip(treatments[moa], batches):
        moa_batches.setdefault(m, set()).update(b)
    keep = np.array([len(moa_batches[m]) > 1 for m in treatments[moa]])
    sub = treatments.loc[keep].reset_index(drop=True)
    nscb = nearest_neighbour_matching(sub, np.asarray(feats)[keep], moa, [compound, batch], multi_valued=[batch])
    return {
        "nsc": float(nsc["correct"].mean()), "nsc_correct": int(nsc["correct"].sum()), "nsc_n": len(nsc),
        "nscb": float(nscb["correct"].mean()), "nscb_correct": int(nscb["correct"].sum()), "nscb_n": len(nscb),
        "nscb_dropped_moas": sorted(m for m, b in moa_batches.items() if len(b) <= 1),
        "nsc_table": nsc, "nscb_table": nscb,
    }


# -- mean average precision (copairs 0.5.5 conventions, PROFILING.md section 2) ------------------
def _pair_mask(meta: pd.DataFrame, sameby: list[str], diffby: list[str]) -> np.ndarray:
    n = len(meta)
    mask = ~np.eye(n, dtype=bool)
    for col in sameby:
        c = _codes(meta, [col])
        mask &= c[:, None] == c[None, :]
    for col in diffby:
        c = _codes(meta, [col])
        mask &= c[:, None] != c[None, :]
    return mask


def average_precision(meta: pd.DataFrame, feats: np.ndarray, pos_sameby: list[str], pos_diffby: list[str],
                      neg_sameby: list[str], neg_diffby: list[str]) -> pd.DataFrame:
    """Average precision of every profile retrieving its positives among its positives and negatives.

    For profile i, the ranked list holds the profiles j forming a positive pair with i (same values
    in ``pos_sameby``, different in ``pos_diffby``) and those forming a negative pair, sorted by
    cosine similarity (rounded to float32 as copairs does) from high to low, positives first on
    ties. AP_i = (1 / P_i) sum_k rel_k * precision@k. Profiles without positive pairs get NaN.
    Adds ``average_precision``, ``n_pos_pairs``, ``n_total_pairs`` to ``meta``.
    """
    where = "average_precision"
    cols = list(dict.fromkeys(pos_sameby + pos_diffby + neg_sameby + neg_diffby))
    require_columns(meta, cols, where)
    if meta[cols].isna().any(axis=None):
        raise ValueError(f"{where}: metadata columns {cols} must not contain nulls")
    feats = np.asarray(feats, dtype=np.float64)
    if np.isnan(feats).any():
        raise ValueError(f"{where}: NaN in the features")
    pos = _pair_mask(meta, pos_sameby, pos_diffby)
    neg = _pair_mask(meta, neg_sameby, neg_diffby)
    if not pos.any():
        raise ValueError(f"{where}: no positive pairs (pos_sameby={pos_sameby}, pos_diffby={pos_diffby})")
    if not neg.any():
        raise ValueError(f"{where}: no negative pairs (neg_sameby={neg_sameby}, neg_diffby={neg_diffby})")
    sim = cosine_similarity(feats).astype(np.float32)
    n = len(meta)
    ap = np.full(n, np.nan)
    n_pos = pos.sum(axis=1)
    n_total = n_pos + neg.sum(axis=1)
    for i in np.flatnonzero(n_pos > 0):
        s = np.concatenate([sim[i, pos[i]], sim[i, neg[i]]])
        rel = np.concatenate([np.ones(n_pos[i]), np.zeros(n_total[i] - n_pos[i])])
        order = np.lexsort([np.float32(1) - s])  # stable: positives first on ties
        rel = rel[order]
        k = np.arange(1, len(rel) + 1)
        ap[i] = float(np.sum(np.cumsum(rel) / k * rel) / n_pos[i])
    out = meta.reset_index(drop=True).copy()
    out["average_precision"] = ap
    out["n_pos_pairs"] = n_pos
    out["n_total_pairs"] = np.where(n_total > 0, n_total, 0)
    return out


def null_average_precision(num_pos: int, total: int, null_size: int, seed: int) -> np.ndarray:
    """AP of ``null_size`` random rankings with ``num_pos`` relevant among ``total`` (float32).

    Drawn exactly as copairs 0.5.5 does (a permutation of positions per draw from
    ``numpy.random.default_rng(seed)``, the first ``num_pos`` taken as the positives), so p-values
    agree with copairs for the same seed.
    """
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if total < 2**16 else np.uint32
    idx = np.tile(np.arange(total, dtype=dtype), (null_size, 1))
    rng.permuted(idx, axis=1, out=idx)
    ranks = np.sort(idx[:, :num_pos], axis=1)
    pr = np.arange(1, num_pos + 1, dtype=np.float32) / (ranks + 1)
    return (pr.sum(axis=1) / num_pos).astype(np.float32)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values: q_(i) = min_{j >= i} p_(j) m / j, capped at 1."""
    p = np.asarray(p, dtype=np.float64)
    m = len(p)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def cached_null(num_pos: int, total: int, null_size: int, seed: int, cache_dir=None) -> np.ndarray:
    """:func:`null_average_precision`, read from ``cache_dir`` when it was drawn before.

    One ``.npy`` per draw, keyed by every parameter that determines it
    (``ns<null_size>/seed<seed>/n<total>_k<num_pos>.npy``, ``seed`` the configuration's own seed),
    written atomically (temporary file, then rename) so concurrent or killed writers never leave a
    partial file; an unreadable file is drawn again. copairs 0.5.5 caches the same draws in
    ``~/.copairs/seed<seed>/ns<size>/n<total>_k<k>.npy`` without the configuration's seed in the key,
    so its result depends on what the cache already holds; this one does not.
    """
    if cache_dir is None:
        return null_average_precision(num_pos, total, null_size, seed)
    import os
    import uuid
    from pathlib import Path

    path = Path(cache_dir) / f"ns{null_size}" / f"seed{seed}" / f"n{total}_k{num_pos}.npy"
    if path.is_file():
        try:
            null = np.load(path)
            if null.shape == (null_size,) and null.dtype == np.float32:
                return null
        except (OSError, ValueError):
            pass
    null = null_average_precision(num_pos, total, null_size, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    with open(tmp, "wb") as fh:
        np.save(fh, null)
    os.replace(tmp, path)
    return null


def mean_average_precision(ap_scores: pd.DataFrame, sameby: list[str], null_size: int = 10_000,
                           threshold: float = 0.05, seed: int = 0, cache_dir=None) -> pd.DataFrame:
    """mAP per group of ``sameby`` with a permutation p-value and BH correction (copairs semantics).

    The group's null is the element-wise mean of its members' null APs (one null per
    (n_pos_pairs, n_total_pairs) configuration, seeded from ``seed`` in sorted configuration order);
    p = (#(null > mAP) + 1) / (null_size + 1). ``cache_dir`` keeps the null draws between calls
    (:func:`cached_null`); the result is the same with or without it.
    """
    scores = ap_scores[ap_scores["average_precision"].notna() & (ap_scores["n_pos_pairs"] > 0)].reset_index(drop=True)
    if scores.empty:
        raise ValueError("mean_average_precision: no profile has an average precision")
    confs, inverse = np.unique(scores[["n_pos_pairs", "n_total_pairs"]].to_numpy(), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    seeds = np.random.default_rng(seed).integers(8096, size=len(confs))
    nulls = np.stack([cached_null(int(k), int(n), null_size, int(s), cache_dir) for (k, n), s in zip(confs, seeds)])
    rows = []
    for key, idx in scores.groupby(list(sameby), sort=True, observed=True).indices.items():
        m = float(scores["average_precision"].to_numpy()[idx].mean())
        null = nulls[inverse[idx]].mean(axis=0)
        p = (np.sum(null > m) + 1) / (null_size + 1)
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(sameby, key)), "mean_average_precision": m, "p_value": p})
    out = pd.DataFrame(rows)
    out["corrected_p_value"] = benjamini_hochberg(out["p_value"].to_numpy())
    out["below_p"] = out["p_value"] < threshold
    out["below_corrected_p"] = out["corrected_p_value"] < threshold
    return out


# -- PCI (Lu et al. 2019, PLoS Comput Biol) ----------------------------------------------------------
def standardise(feats: np.ndarray) -> np.ndarray:
    """Columns scaled to zero mean and unit variance (constant columns become 0), as seed 002 does
    before every distance."""
    feats = np.asarray(feats, dtype=np.float64)
    sd = feats.std(axis=0)
    return (feats - feats.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def image_distances(feats: np.ndarray, image: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``(images, D)``: the sorted image ids and the exact mean cell-to-cell Euclidean distance
    between every two images,

        D(A, B) = 1 / (|A| |B|) * sum over a in A, b in B of ||f_a - f_b||_2,

    computed ``chunk`` cells at a time (memory ``chunk x N``). ``D(A, A)`` includes each cell's
    zero distance to itself; only ``A != B`` is used by the scores."""
    feats = np.asarray(feats, dtype=np.float64)
    images, codes = np.unique(np.asarray(image), return_inverse=True)
    counts = np.bincount(codes, minlength=len(images)).astype(np.float64)
    sq = (feats**2).sum(axis=1)
    sums = np.zeros((len(images), len(images)))
    for s in range(0, len(feats), chunk):
        block = feats[s:s + chunk]
        d = np.sqrt(np.maximum(sq[s:s + chunk, None] + sq[None, :] - 2.0 * block @ feats.T, 0.0))
        per_image = np.zeros((len(block), len(images)))
        np.add.at(per_image.T, codes, d.T)  # columns summed by image
        np.add.at(sums, codes[s:s + chunk], per_image)
    return images, sums / np.outer(counts, counts)


def _image_table(image, label, group, cell_line) -> pd.DataFrame:
    frame = pd.DataFrame({"image": np.asarray(image), "label": np.asarray(label),
                          "group": np.asarray(image) if group is None else np.asarray(group),
                          "cell_line": "" if cell_line is None else np.asarray(cell_line)})
    per_image = frame.groupby("image", sort=True).nunique()
    for col, what in (("label", "label"), ("group", "protein"), ("cell_line", "cell line")):
        mixed = per_image.index[per_image[col] > 1]
        if len(mixed):
            raise ValueError(f"image {mixed[0]!r} has cells of more than one {what}; an image is one protein "
                             "in one cell line")
    return frame.groupby("image", sort=True).first()


def _check_classes(images: pd.DataFrame) -> None:
    proteins = images.groupby("label")["group"].nunique()
    if len(proteins) < 2:
        raise ValueError(f"the pairwise-distance score needs at least two classes, got {list(proteins.index)}")
    lonely = proteins.index[proteins < 2]
    if len(lonely):
        raise ValueError(f"class {lonely[0]!r} has {int(proteins[lonely[0]])} protein; the pairwise-distance score "
                         "pairs images of two different proteins of a class, so every class needs at least two")


def _distances(feats, image, images: pd.DataFrame, distances) -> np.ndarray:
    """The image-distance matrix: ``distances`` when the caller already has it (the ``D`` of
    ``image_distances(standardise(feats), image)``, e.g. to compute both pairwise scores of one
    table once), else computed here."""
    if distances is None:
        return image_distances(standardise(feats), image)[1]
    distances = np.asarray(distances)
    if distances.shape != (len(images), len(images)):
        raise ValueError(f"distances: expected the {len(images)} x {len(images)} image-distance matrix, got shape "
                         f"{distances.shape}")
    return distances


def _sample_pairs(rng, first: np.ndarray, second: np.ndarray, group: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random pairs (i from ``first``, j from ``second``) of images of different proteins."""
    i = rng.choice(first, 4 * n)
    j = rng.choice(second, 4 * n)
    keep = group[i] != group[j]
    i, j = i[keep][:n], j[keep][:n]
    if len(i) == 0:
        raise ValueError("no pair of images of different proteins to compare")
    return i, j


def pairwise_distance_score(feats: np.ndarray, image: np.ndarray, label: np.ndarray, n_pairs: int = 1000,
                            seed: int = 0, group: np.ndarray | None = None, distances=None) -> pd.DataFrame:
    """Normalised average pairwise distance of seed 002 (Fig 2B), per label and ``overall``.

    Features are standardised; ``D(A, B)`` is the mean distance between the cells of images A and
    B (:func:`image_distances`). For label L, with ``n_pairs`` random pairs of images of two
    different proteins (``group``; default every image its own protein) both labelled L, and
    ``n_pairs`` random pairs (L, M) for each other label M (balanced over the other labels, the
    seed's 1,000 per term):

        score_L = mean D(same-label pairs) / mean over M of mean D(L, M pairs) - 1,

    negative when cells of one label are closer than expected. ``overall`` is the mean over labels.
    Every label needs images of at least two proteins (a clear error otherwise). ``distances``:
    the image-distance matrix, if already computed (:func:`_distances`).
    """
    images = _image_table(image, label, group, None)
    _check_classes(images)
    dist = _distances(feats, image, images, distances)
    lab, grp = images["label"].to_numpy(), images["group"].to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    for value in sorted(pd.unique(lab)):
        same = np.flatnonzero(lab == value)
        d_same = dist[_sample_pairs(rng, same, same, grp, n_pairs)].mean()
        d_diff = np.mean([dist[_sample_pairs(rng, same, np.flatnonzero(lab == other), grp, n_pairs)].mean()
                          for other in sorted(pd.unique(lab)) if other != value])
        rows.append({"label": value, "score": d_same / d_diff - 1.0})
    out = pd.DataFrame(rows)
    return pd.concat([out, pd.DataFrame([{"label": "overall", "score": out["score"].mean()}])], ignore_index=True)


def cell_line_distance_scores(feats: np.ndarray, image: np.ndarray, label: np.ndarray, cell_line: np.ndarray,
                              n_pairs: int = 10000, seed: int = 0, group: np.ndarray | None = None,
                              distances=None) -> dict:
    """Seed 002 Table 2: the normalised average pairwise distance with both images from the same
    cell line, and from different cell lines.

    For each constraint, ``n_pairs`` random image pairs of two different proteins with the same
    label and ``n_pairs`` with different labels (any, not balanced, as the seed), all pairs obeying
    the constraint: ``score = mean D(same label) / mean D(different label) - 1``. Returns
    ``{"same_cell_line", "different_cell_line", "difference"}`` (difference = different - same;
    smaller = more robust to morphology). ``distances`` as for :func:`pairwise_distance_score`."""
    images = _image_table(image, label, group, cell_line)
    _check_classes(images)
    if images["cell_line"].nunique() < 2:
        raise ValueError("the cell-line control needs images from at least two cell lines")
    dist = _distances(feats, image, images, distances)
    lab, grp, line = (images[c].to_numpy() for c in ("label", "group", "cell_line"))
    rng = np.random.default_rng(seed)
    out = {}
    for name, same_line in (("same_cell_line", True), ("different_cell_line", False)):
        i = rng.integers(0, len(lab), 40 * n_pairs)
        j = rng.integers(0, len(lab), 40 * n_pairs)
        ok = (grp[i] != grp[j]) & ((line[i] == line[j]) == same_line)
        same = ok & (lab[i] == lab[j])
        diff = ok & (lab[i] != lab[j])
        if not same.any() or not diff.any():
            raise ValueError(f"no image pairs for the {name.replace('_', ' ')} constraint")
        d_same = dist[i[same][:n_pairs], j[same][:n_pairs]].mean()
        d_diff = dist[i[diff][:n_pairs], j[diff][:n_pairs]].mean()
        out[name] = float(d_same / d_diff - 1.0)
    out["difference"] = out["different_cell_line"] - out["same_cell_line"]
    return out


def well_matching(wells: pd.DataFrame, control: str, moa: str, compound: str, plate: str,
                  treatment: list[str]) -> dict:
    """Well-level 1-NN (cosine) accuracy of the normalised, non-control well profiles.

    * replicate accuracy: the nearest well on another plate is a replicate (same treatment);
    * group accuracy: the nearest well of another compound has the same MoA.
    Wells with no allowed neighbour are left out of each rate.
    """
    treated = wells.drop(index=wells.query(control).index).reset_index(drop=True)
    missing = [c for c in [plate, *treatment, moa, compound] if c not in treated.columns]
    if missing or treated.empty:
        return {"replicate_accuracy": np.nan, "group_accuracy": np.nan}
    feats = treated[feature_columns(treated)].to_numpy()
    key = treated[treatment].astype(str).agg("@".join, axis=1).rename("_treatment")
    rep = nearest_neighbour_matching(pd.concat([treated[[plate]], key], axis=1), feats, "_treatment", exclude_same=[plate])
    grp = nearest_neighbour_matching(treated[[moa, compound]], feats, moa, exclude_same=[compound])
    return {"replicate_accuracy": float(rep.loc[rep.neighbour >= 0, "correct"].mean()),
            "group_accuracy": float(grp.loc[grp.neighbour >= 0, "correct"].mean())}
