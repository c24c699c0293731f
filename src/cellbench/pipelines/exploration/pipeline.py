from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from ..ingestion import namespaced as namespaced_ingestion
from ..representation.pipeline import instance
from .nodes import combine_scores, explore_representation

# representation -> learned? (each configured by exploration.representation.<name>)
REPRESENTATIONS = {"texture": False, "pci": True, "autoencoder": True, "deeploc": True}


def _explore(name: str) -> Node:
    func = update_wrapper(partial(explore_representation, name=name), explore_representation)
    return Node(func, [f"library_{name}_features", "library_crops", "params:exploration.analysis",
                       "params:exploration.layers"],
                [f"library_{name}_exploration", f"library_{name}_heatmap", f"library_{name}_multilocalisation",
                 f"library_{name}_clades"], name="explore", namespace=f"exploration.{name}")


def create_pipeline(**kwargs) -> Pipeline:
    ingest = namespaced_ingestion("exploration", "library_crops", "library_qc_montage")
    features = sum((instance(n, learned, crops="library_crops", section="exploration.representation",
                             prefix="library_") for n, learned in REPRESENTATIONS.items()), Pipeline([]))
    combine = Node(combine_scores, {n: f"library_{n}_exploration" for n in REPRESENTATIONS},
                   ["exploration_scores", "exploration_table", "exploration_metrics"], name="combine",
                   namespace="exploration")
    return ingest + features + Pipeline([_explore(n) for n in REPRESENTATIONS] + [combine])
