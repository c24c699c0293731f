from kedro.pipeline import Node, Pipeline

from .nodes import (
    autoencoder_representation,
    deeploc_representation,
    pci_representation,
    texture_features,
    vgg16_representation,
)

# representation name -> (node function (crops, params) -> tables [, model, history], learned?)
REPRESENTATIONS = {
    "texture": (texture_features, False),
    "deeploc": (deeploc_representation, True),
    "pci": (pci_representation, True),
    "autoencoder": (autoencoder_representation, True),
    "vgg16": (vgg16_representation, False),
}


def _instance(name: str, func, learned: bool) -> Pipeline:
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
    return sum((_instance(n, f, learned) for n, (f, learned) in REPRESENTATIONS.items()), Pipeline([]))
