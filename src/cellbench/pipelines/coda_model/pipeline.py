from kedro.pipeline import Node, Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory

from .._models import INPUT, inference, log_model_kwargs
from ..ingestion import namespaced
from .nodes import train_coda_model


def create_pipeline(**kwargs):
    training = namespaced("domain_adaptation", "da_crops", "da_qc_montage") + Pipeline(
        [Node(train_coda_model, ["da_crops", "params:domain_adaptation", "params:coda_model"],
              ["coda_model", "coda_training_history"], name="train", namespace="coda_model")])
    return pipeline_ml_factory(training=training, inference=inference("coda_model"), input_name=INPUT,
                               log_model_kwargs=log_model_kwargs("coda"))
