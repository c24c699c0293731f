from kedro.pipeline import Node, Pipeline

from ..ingestion import namespaced
from .nodes import embed


def create_pipeline(**kwargs) -> Pipeline:
    return namespaced("embed", "embed_crops", "embed_qc_montage") + Pipeline(
        [Node(embed, ["embed_crops", "params:embed"], "embedded_features", name="embed")])
