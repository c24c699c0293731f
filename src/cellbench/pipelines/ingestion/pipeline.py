from kedro.pipeline import Node, Pipeline

from .nodes import qc_montage, simulate_crops


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(simulate_crops, "params:ingestion.simulation", "coos_crops", name="simulate_coos_crops"),
            Node(qc_montage, ["coos_crops", "params:ingestion.montage"], "coos_qc_montage", name="coos_qc_montage"),
        ]
    )
