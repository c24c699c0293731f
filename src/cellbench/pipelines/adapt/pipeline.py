from kedro.pipeline import Node, Pipeline

from ..ingestion import namespaced
from .nodes import adapt_online


def create_pipeline(**kwargs) -> Pipeline:
    return namespaced("adapt", "adapt_crops", "adapt_qc_montage") + Pipeline(
        [Node(adapt_online, ["adapt_crops", "params:adapt"], ["adapt_predictions", "adapt_report", "adapt_metrics"],
              name="adapt", namespace="adapt")])
