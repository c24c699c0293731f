"""domain_adaptation: simulated JUMP-like multi-source screen (and, optionally, a generic pre-training
pool of other sources) -> CODA experiment -> report."""

from kedro.pipeline import Node, Pipeline

from ..ingestion import namespaced as namespaced_ingestion
from .nodes import pretrain_pool, report_domain_adaptation, run_domain_adaptation, umap_class_tokens


def create_pipeline(**kwargs) -> Pipeline:
    ingest = namespaced_ingestion("domain_adaptation", "da_crops", "da_qc_montage")
    nodes = [
        Node(pretrain_pool, "params:domain_adaptation", ["da_pool_foundation", "da_pool_history"],
             name="pretrain_pool", namespace="domain_adaptation"),
        Node(run_domain_adaptation, ["da_crops", "da_pool_foundation", "params:domain_adaptation"],
             ["da_results", "da_granularity", "da_cka", "da_class_tokens", "da_models", "da_training_history"],
             name="run", namespace="domain_adaptation"),
        Node(report_domain_adaptation, ["da_results", "da_granularity", "da_cka"],
             ["da_summary", "da_report", "da_matrix_heatmap", "da_granularity_figure", "da_cka_figure", "da_metrics"],
             name="report", namespace="domain_adaptation"),
        Node(umap_class_tokens, ["da_class_tokens", "params:domain_adaptation"], "da_umap",
             name="umap", namespace="domain_adaptation"),
    ]
    return ingest + Pipeline(nodes)
