from kedro.pipeline import Node, Pipeline

from .nodes import texture_features

# representation name -> node function (crops, params) -> {layer: table}
REPRESENTATIONS = {"texture": texture_features}


def _instance(name: str, func) -> Pipeline:
    return Pipeline(
        [Node(func, ["coos_crops", "params:settings"], "features", name="features")],
        namespace=f"representation.{name}",
        inputs={"coos_crops"},
        outputs={"features": f"{name}_features"},
        parameters={"params:settings": f"params:representation.{name}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum((_instance(n, f) for n, f in REPRESENTATIONS.items()), Pipeline([]))
