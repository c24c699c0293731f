"""Cross-batch (CB) pairs: for each image, a partner with the same treatment from another plate or
batch (CODA, seed 001; the reference pairs on plate)."""

from __future__ import annotations

import numpy as np
import pandas as pd


class CrossBatchSampler:
    """Draws, for each anchor, a uniform partner among the images with the same ``treatment`` and a
    different ``group`` (plate or batch). A treatment seen in a single group has no such partner;
    its images are paired within the treatment (``n_unpaired`` counts them) so training can proceed,
    and callers can report the fraction.
    """

    def __init__(self, treatment, group):
        t = pd.Series(np.asarray(treatment)).astype(str).to_numpy()
        g = pd.Series(np.asarray(group)).astype(str).to_numpy()
        if len(t) != len(g) or len(t) == 0:
            raise ValueError(f"cross-batch pairs need one treatment and one group per image; got {len(t)} and {len(g)}")
        t_codes, t_inv = np.unique(t, return_inverse=True)
        g_codes, g_inv = np.unique(g, return_inverse=True)
        order = np.lexsort((g_inv, t_inv))  # images sorted by treatment, then group
        self.order = order
        t_sorted, g_sorted = t_inv[order], g_inv[order]
        self.t_start = np.searchsorted(t_sorted, t_inv)  # start of the anchor's treatment block
        self.t_size = np.bincount(t_inv)[t_inv]
        key_sorted = t_sorted * len(g_codes) + g_sorted
        key = t_inv * len(g_codes) + g_inv
        self.tg_start = np.searchsorted(key_sorted, key) - self.t_start  # offset of the (t, g) block
        self.tg_size = np.searchsorted(key_sorted, key, side="right") - np.searchsorted(key_sorted, key)
        self.n_candidates = self.t_size - self.tg_size
        self.n_unpaired = int((self.n_candidates == 0).sum())

    def sample(self, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        anchors = np.asarray(anchors, dtype=np.int64)
        n_cand = self.n_candidates[anchors]
        paired = n_cand > 0
        r = np.floor(rng.random(len(anchors)) * np.where(paired, n_cand, self.t_size[anchors])).astype(np.int64)
        # skip the anchor's own (treatment, group) block when a cross-group partner exists
        skip = paired & (r >= self.tg_start[anchors])
        r = r + np.where(skip, self.tg_size[anchors], 0)
        return self.order[self.t_start[anchors] + r]
