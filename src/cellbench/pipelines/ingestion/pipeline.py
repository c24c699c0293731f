from kedro.pipeline import Node, Pipeline

from .nodes import ingest_crops, qc_montage


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(ingest_crops, "params:ingestion", "coos_crops", name="ingest_coos_crops"),
            Node(qc_montage, ["coos_crops", "params:ingestion.montage"], "coos_qc_montage", name="coos_qc_montage"),
        ]
    )


def namespaced(namespace: str, crops: str, montage: str) -> Pipeline:
    """The ingestion pipeline under ``namespace``, reading ``params:<namespace>.ingestion`` and
    ``params:<namespace>.montage`` and writing the datasets ``crops`` and ``montage``."""
    from kedro.pipeline import pipeline

    return pipeline(
        create_pipeline(),
        namespace=namespace,
        parameters={"params:ingestion": f"params:{namespace}.ingestion",
                    "params:ingestion.montage": f"params:{namespace}.montage"},
        outputs={"coos_crops": crops, "coos_qc_montage": montage},
    )
