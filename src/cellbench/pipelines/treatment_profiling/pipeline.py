from kedro.pipeline import Node, Pipeline, pipeline

from ..ingestion import create_pipeline as ingestion
from ..profiling import create_pipeline as profiling
from .nodes import cells_to_wells, combine_moa_matching, treatment_texture, vae_features, weak_resnet_features

# feature sets compared on the simulated screen: name -> node function (crops, params) -> tables [, model, history]
FEATURE_SETS = {
    "texture": (treatment_texture, False),
    "resnet_plain": (weak_resnet_features, True),
    "resnet_mixup": (weak_resnet_features, True),
    "resnet_gru": (weak_resnet_features, True),
    "ae": (vae_features, True),
    "vae": (vae_features, True),
    "vaeplus": (vae_features, True),
}


def _feature_set(name: str, func, learned: bool) -> Pipeline:
    outputs = [f"treatment_{name}_features"]
    if learned:
        outputs += [f"treatment_{name}_model", f"treatment_{name}_training_history"]
    group = "weak" if name.startswith("resnet") else "vae"
    params = "params:treatments.texture" if name == "texture" else f"params:treatments.{group}.{name}"
    nodes = [
        Node(func, ["treatment_crops", params], outputs if learned else outputs[0], name="features",
             namespace=f"treatments.{name}"),
        Node(cells_to_wells, [f"treatment_{name}_features", "params:treatments.wells"], f"treatment_{name}_wells",
             name="cells_to_wells", namespace=f"treatments.{name}"),
    ]
    profile = pipeline(
        profiling(),
        namespace=f"treatments.{name}",
        inputs={"profiling_wells": f"treatment_{name}_wells"},
        parameters={"params:profiling": "params:treatments.profiling"},
        outputs={"treatment_profiles": f"simulated_{name}_treatment_profiles",
                 "moa_matching": f"simulated_{name}_moa_matching",
                 "moa_matching_per_treatment": f"simulated_{name}_per_treatment",
                 "profiling_metrics": f"simulated_{name}_metrics"},
    )
    return Pipeline(nodes) + profile


def create_pipeline(**kwargs) -> Pipeline:
    ingest = pipeline(
        ingestion(),
        namespace="treatments",
        parameters={"params:ingestion": "params:treatments.ingestion",
                    "params:ingestion.montage": "params:treatments.montage"},
        outputs={"coos_crops": "treatment_crops", "coos_qc_montage": "treatment_qc_montage"},
    )
    sets = sum((_feature_set(n, f, learned) for n, (f, learned) in FEATURE_SETS.items()), Pipeline([]))
    combine = Node(combine_moa_matching, {n: f"simulated_{n}_moa_matching" for n in FEATURE_SETS},
                   ["simulated_moa_matching", "simulated_profiling_metrics"], name="combine", namespace="treatments")
    return ingest + sets + Pipeline([combine])
