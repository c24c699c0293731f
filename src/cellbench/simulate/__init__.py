"""Synthetic single-cell microscopy with controllable covariate shift.

Composable parts: ``cells`` (geometry), ``phenotypes`` (what a compartment looks like),
``imaging`` (the microscope), ``designs`` (the COOS-7 experiment hierarchy and its nuisance
effects), ``library`` (a protein library in several cell lines, seed 002), ``treatments`` (BBBC021-like and JUMP-like treatment screens with MoA phenotypes).
"""

from .designs import COOS7_SPLIT_SIZES, SPLITS, CoosDesign, Nuisance, coos7_layout, simulate_coos7
from .imaging import Microscope, acquire
from .library import CELL_LINES, LIBRARY_COMPARTMENTS, LibraryDesign, simulate_library
from .phenotypes import COOS7_CLASSES, Appearance
from .treatments import MOA_PHENOTYPES, TreatmentDesign, simulate_treatments, treatment_layout

__all__ = [
    "CELL_LINES",
    "COOS7_CLASSES",
    "LIBRARY_COMPARTMENTS",
    "LibraryDesign",
    "COOS7_SPLIT_SIZES",
    "MOA_PHENOTYPES",
    "SPLITS",
    "Appearance",
    "CoosDesign",
    "Microscope",
    "Nuisance",
    "TreatmentDesign",
    "acquire",
    "coos7_layout",
    "simulate_coos7",
    "simulate_library",
    "simulate_treatments",
    "treatment_layout",
]
