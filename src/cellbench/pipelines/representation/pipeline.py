from functools import partial, update_wrapper

from kedro.pipeline import Node, Pipeline

from .nodes import features, trained_features

# representation name -> learned? (its method in cellbench.representations has the same name)
REPRESENTATIONS = {"texture": False, "deeploc": True, "pci": True, "autoencoder": True, "vgg16": False}


def instance(name: str, learned: bool, crops: str = "coos_crops", section: str = "representation",
             prefix: str = "") -> Pipeline:
    """Representation ``name`` of the crops ``crops``, configured by ``params:<section>.<name>``,
    writing ``<prefix><name>_features`` (and ``_model``, ``_training_history`` when learned)."""
    base = trained_features if learned else features
    func = update_wrapper(partial(base, name=name, path=f"{section}.{name}"), base)
    outputs = ["features", "model", "training_history"] if learned else "features"
    out_map = {"features": f"{prefix}{name}_features"}
    if learned:
        out_map |= {"model": f"{prefix}{name}_model", "training_history": f"{prefix}{name}_training_history"}
    return Pipeline(
        [Node(func, [crops, "params:settings"], outputs, name="features")],
        namespace=f"{section}.{name}",
        inputs={crops},
        outputs=out_map,
        parameters={"params:settings": f"params:{section}.{name}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum((instance(n, learned) for n, learned in REPRESENTATIONS.items()), Pipeline([]))
