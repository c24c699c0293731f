from kedro.pipeline import Node, Pipeline

from .nodes import ingest_crops, qc_montage


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(ingest_crops, "params:ingestion", "coos_crops", name="ingest_coos_crops"),
            Node(qc_montage, ["coos_crops", "params:ingestion.montage"], "coos_qc_montage", name="coos_qc_montage"),
        ]
    )
