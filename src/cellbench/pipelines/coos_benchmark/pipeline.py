from kedro.pipeline import Pipeline

from ..evaluation import create_pipeline as evaluation
from ..ingestion import create_pipeline as ingestion
from ..representation import create_pipeline as representation


def create_pipeline(**kwargs) -> Pipeline:
    return ingestion() + representation() + evaluation()
