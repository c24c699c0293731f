from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from .nodes import features, trained_features

# representation name -> learned? (its method in cellbench.representations has the same name)
REPRESENTATIONS = {"texture": False, "deeploc": True, "pci": True, "autoencoder": True, "vgg16": False}


def _instance(name: str, learned: bool) -> Pipeline:
    base = trained_features if learned else features
    func = update_wrapper(partial(base, name=name), base)
    outputs = ["features", "model", "training_history"] if learned else "features"
    out_map = {"features": f"{name}_features"}
    if learned:
        out_map |= {"model": f"{name}_model", "training_history": f"{name}_training_history"}
    return Pipeline(
        [Node(func, ["coos_crops", "params:settings"], outputs, name="features")],
        namespace=f"representation.{name}",
        inputs={"coos_crops"},
        outputs=out_map,
        parameters={"params:settings": f"params:representation.{name}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum((_instance(n, learned) for n, learned in REPRESENTATIONS.items()), Pipeline([]))
