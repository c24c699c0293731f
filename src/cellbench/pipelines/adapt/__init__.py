"""``adapt``: a registered CODA dual model adapted online (ODA / CODA) to new unlabelled plates,
one registered version per adaptation unit, with predictions and a before / after report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
