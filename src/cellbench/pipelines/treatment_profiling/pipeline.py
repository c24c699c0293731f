from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline, pipeline

from ..ingestion import namespaced as namespaced_ingestion
from ..profiling import create_pipeline as profiling
from .nodes import (cells_to_wells, combine_moa_matching, moa_table, treatment_texture, vae_features, vae_figures,
                    weak_resnet_features)

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


SUMMARIES = {"mean": "", "mean_sd": "_mean_sd"}  # well summaries of the cells (seed 003: Mean, Mean+S.D.)


def feature_node(name: str) -> Node:
    """The node computing feature set ``name`` of the treatment crops (and, when learned, its model
    ``treatment_<name>_model`` and training history)."""
    func, learned = FEATURE_SETS[name]
    outputs = [f"treatment_{name}_features"]
    if learned:
        outputs += [f"treatment_{name}_model", f"treatment_{name}_training_history"]
    group = "weak" if name.startswith("resnet") else "vae"
    params = "params:treatments.texture" if name == "texture" else f"params:treatments.{group}.{name}"
    if learned:
        func = update_wrapper(partial(func, name=name), func)
    return Node(func, ["treatment_crops", params], outputs if learned else outputs[0], name="features",
                namespace=f"treatments.{name}")


def _feature_set(name: str, func, learned: bool) -> Pipeline:
    nodes = [feature_node(name)]
    profiles = Pipeline([])
    for summary, suffix in SUMMARIES.items():
        key = f"{name}{suffix}"
        nodes.append(Node(cells_to_wells, [f"treatment_{name}_features", "params:treatments.wells",
                                           f"params:treatments.summaries.{summary}"],
                          f"treatment_{key}_wells", name=f"cells_to_wells_{summary}", namespace=f"treatments.{name}"))
        profiles += pipeline(
            profiling(),
            namespace=f"treatments.{name}.{summary}",
            inputs={"profiling_wells": f"treatment_{key}_wells"},
            parameters={"params:profiling": "params:treatments.profiling"},
            outputs={"treatment_profiles": f"simulated_{key}_treatment_profiles",
                     "moa_matching": f"simulated_{key}_moa_matching",
                     "moa_matching_per_treatment": f"simulated_{key}_per_treatment",
                     "profiling_metrics": f"simulated_{key}_metrics"},
        )
    return Pipeline(nodes) + profiles


def create_pipeline(**kwargs) -> Pipeline:
    ingest = namespaced_ingestion("treatments", "treatment_crops", "treatment_qc_montage")
    sets = sum((_feature_set(n, f, learned) for n, (f, learned) in FEATURE_SETS.items()), Pipeline([]))
    combine = Node(combine_moa_matching, {f"{n}{suffix}": f"simulated_{n}{suffix}_moa_matching"
                                          for n in FEATURE_SETS for suffix in SUMMARIES.values()},
                   ["simulated_moa_matching", "simulated_profiling_metrics"], name="combine", namespace="treatments")
    table = Node(moa_table, ["simulated_moa_matching", "params:treatments.table"], "simulated_moa_table",
                 name="table", namespace="treatments")
    figures = Node(vae_figures, ["treatment_crops", "treatment_ae_model", "treatment_vae_model", "treatment_vaeplus_model",
                                 "treatment_vaeplus_features", "params:treatments.vae_figures"],
                   ["treatment_vae_reconstructions", "treatment_vae_interpolation"], name="vae_figures",
                   namespace="treatments")
    return ingest + sets + Pipeline([combine, table, figures])
