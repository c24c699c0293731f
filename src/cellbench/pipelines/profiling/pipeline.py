from kedro.pipeline import Node, Pipeline

from .nodes import profile_variants


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                profile_variants,
                ["profiling_wells", "params:profiling"],
                ["treatment_profiles", "moa_matching", "moa_matching_per_treatment", "profiling_metrics"],
                name="profile_variants",
            ),
        ]
    )
