"""Synthetic single-cell microscopy with controllable covariate shift.

Composable parts: ``cells`` (geometry), ``phenotypes`` (what a compartment looks like),
``imaging`` (the microscope), ``designs`` (the experiment hierarchy and its nuisance effects).
"""

from .designs import COOS7_SPLIT_SIZES, SPLITS, CoosDesign, Nuisance, coos7_layout, simulate_coos7
from .imaging import Microscope, acquire
from .phenotypes import COOS7_CLASSES, Appearance

__all__ = [
    "COOS7_CLASSES",
    "COOS7_SPLIT_SIZES",
    "SPLITS",
    "Appearance",
    "CoosDesign",
    "Microscope",
    "Nuisance",
    "acquire",
    "coos7_layout",
    "simulate_coos7",
]
