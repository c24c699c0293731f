"""Project pipelines: one package per pipeline (see KEDRO.md on composite pipelines)."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    # Kedro 1.7 loads only the requested pipelines (``kedro run --pipelines=ingestion`` finds just
    # ``ingestion``), so the default is set only when coos_benchmark itself was loaded.
    pipelines = find_pipelines(raise_errors=True)
    if "coos_benchmark" in pipelines:
        pipelines["__default__"] = pipelines["coos_benchmark"]
    return pipelines
