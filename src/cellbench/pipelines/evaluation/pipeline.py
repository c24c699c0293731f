from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from ..representation import REPRESENTATIONS
from .nodes import build_report, evaluate_representation


def _instance(name: str) -> Pipeline:
    func = update_wrapper(partial(evaluate_representation, representation=name), evaluate_representation)
    return Pipeline(
        [Node(func, ["features", "params:evaluation"], ["results", "confusion"], name="evaluate")],
        namespace=f"evaluation.{name}",
        inputs={"features": f"{name}_features"},
        outputs={"results": f"{name}_results", "confusion": f"{name}_confusion"},
        parameters={"params:evaluation": "params:evaluation"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    names = list(REPRESENTATIONS)
    report = Node(
        build_report,
        ["params:evaluation"] + [f"{n}_results" for n in names] + [f"{n}_confusion" for n in names],
        ["coos_benchmark_results", "coos_benchmark_table", "coos_confusion", "coos_error_by_split", "coos_metrics",
         "coos_per_class_sensitivity"],
        name="coos_report",
    )
    return sum((_instance(n) for n in names), Pipeline([])) + Pipeline([report])
