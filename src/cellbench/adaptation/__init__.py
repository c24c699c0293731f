"""Domain adaptation (seed 001, CODA): DINO, cross-batch pairs, the dual model, ODA / CODA, TTT-MAE,
CKA. Pure library: arrays and DataFrames in, models and tables out."""

from cellbench.metrics.similarity import linear_cka
from .dino import (cosine_schedule, dino_loss, ema_update, multicrop, self_normalize, teacher_temperature,
                   update_center)
from .pairs import CrossBatchSampler

__all__ = ["linear_cka", "cosine_schedule", "dino_loss", "ema_update", "multicrop", "self_normalize",
           "teacher_temperature", "update_center", "CrossBatchSampler"]
