from kedro.pipeline import Node, Pipeline, pipeline

from ..ingestion import create_pipeline as ingestion
from ..profiling import create_pipeline as profiling
from .nodes import cells_to_wells, treatment_texture


def create_pipeline(**kwargs) -> Pipeline:
    ingest = pipeline(
        ingestion(),
        namespace="treatments",
        parameters={"params:ingestion": "params:treatments.ingestion",
                    "params:ingestion.montage": "params:treatments.montage"},
        outputs={"coos_crops": "treatment_crops", "coos_qc_montage": "treatment_qc_montage"},
    )
    features = Pipeline([
        Node(treatment_texture, ["treatment_crops", "params:treatments.texture"], "treatment_texture_features",
             name="treatments.texture"),
        Node(cells_to_wells, ["treatment_texture_features", "params:treatments.wells"], "treatment_wells",
             name="treatments.cells_to_wells"),
    ])
    profile = pipeline(
        profiling(),
        namespace="treatments",
        inputs={"profiling_wells": "treatment_wells"},
        parameters={"params:profiling": "params:treatments.profiling"},
        outputs={"treatment_profiles": "simulated_treatment_profiles", "moa_matching": "simulated_moa_matching",
                 "moa_matching_per_treatment": "simulated_moa_matching_per_treatment",
                 "profiling_metrics": "simulated_profiling_metrics"},
    )
    return ingest + features + profile
