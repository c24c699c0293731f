"""Pretrained weights from a local file (never downloaded): ViT-S/16 from a timm DeiT-S/16 or a
DINO ViT-S/16 checkpoint, ResNet18 from the torchvision layout; ``.pth`` / ``.pt`` (read with
``torch.load(weights_only=True)``, so a file cannot execute code) or ``.safetensors`` (read by the
small reader below: an 8-byte little-endian header length, a JSON header of ``dtype``, ``shape``
and ``data_offsets`` per tensor, then the raw little-endian bytes).

Adaptations, the standard ways:

* **input channels** other than the checkpoint's 3 (``adapt_input_channels``, as timm's
  ``adapt_input_conv``): for 1 channel the RGB kernels are summed; for C > 3 they are repeated
  ceil(C / 3) times along the input axis, cut to C and scaled by 3 / C, so that the total input
  weight is kept (a constant input gives the RGB network's response on grey exactly when C is a
  multiple of 3);
* **position embeddings** of another grid (``resize_pos_embed``): the patch-grid embeddings are
  interpolated bicubically (align_corners False) from the checkpoint's side to the model's; the
  class-token embedding is kept.

Every key the model expects is checked: missing, unexpected (other than a classifier head the model
does not have) and mis-shaped keys are an error naming them.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PREFIXES = ("module.", "backbone.", "model.", "encoder.")
HEADS = ("head.", "fc.", "head_dist.", "classifier.")
SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32,
                      "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file (bf16 is widened to float32)."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
    (n,) = struct.unpack("<Q", data[:8])
    try:
        header = json.loads(data[8:8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a safetensors file (unreadable JSON header: {exc})") from exc
    body = memoryview(data)[8 + n:]
    out = {}
    for name, spec in header.items():
        if name == "__metadata__":
            continue
        start, end = spec["data_offsets"]
        raw = body[start:end]
        if spec["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        elif spec["dtype"] in SAFETENSORS_DTYPES:
            array = np.frombuffer(raw, dtype=np.dtype(SAFETENSORS_DTYPES[spec["dtype"]]).newbyteorder("<"))
        else:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {spec['dtype']}")
        out[name] = torch.from_numpy(array.reshape(spec["shape"]).copy())
    return out


def write_safetensors(tensors: dict[str, torch.Tensor], path: str | Path) -> None:
    """Write float32 / int tensors in the safetensors layout (for tests and exports)."""
    names = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy())
        raw = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": names[a.dtype], "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header).encode()
    head += b" " * (-len(head) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``path`` (``.safetensors`` or a weights-only torch file), unwrapped from the
    usual containers (``model``, ``state_dict``, DINO's ``teacher``) and common key prefixes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights {path}: file not found")
    if path.suffix == ".safetensors":
        state = read_safetensors(path)
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(f"pretrained weights {path}: not a readable weights-only torch file ({exc})") from exc
    for key in ("model", "state_dict", "teacher"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"pretrained weights {path}: expected a state dict of tensors, found {type(state).__name__}")
    for prefix in PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def adapt_input_channels(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first-layer kernel ``out x 3 x k x k`` for ``channels`` inputs (see the module docstring)."""
    c = weight.shape[1]
    if channels == c:
        return weight
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = math.ceil(channels / c)
    return weight.repeat(1, reps, 1, 1)[:, :channels] * (c / channels)


def resize_pos_embed(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """``1 x (1 + g*g) x D`` position embeddings resized to ``1 x (1 + grid*grid) x D``."""
    n = pos.shape[1] - 1
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise ValueError(f"pos_embed has {n} patch positions, not a square grid")
    if side == grid:
        return pos
    patches = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
    patches = F.interpolate(patches, size=(grid, grid), mode="bicubic", align_corners=False)
    return torch.cat([pos[:, :1], patches.permute(0, 2, 3, 1).reshape(1, grid * grid, -1).to(pos.dtype)], dim=1)


def _check_and_load(model: torch.nn.Module, state: dict, path, what: str) -> torch.nn.Module:
    expected = model.state_dict()
    unexpected = sorted(k for k in state if k not in expected and not k.startswith(HEADS))
    missing = sorted(k for k in expected if k not in state and not k.startswith(HEADS))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
                    for k in expected if k in state and state[k].shape != expected[k].shape)
    if unexpected or missing or shapes:
        parts = [f"missing keys {missing[:8]}{' ...' if len(missing) > 8 else ''}" if missing else "",
                 f"unexpected keys {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}" if unexpected else "",
                 f"mis-shaped keys {shapes[:8]}" if shapes else ""]
        raise ValueError(f"{what} weights {path}: " + "; ".join(p for p in parts if p))
    merged = {k: state.get(k, expected[k]) for k in expected}  # the model's own head where the file has none
    model.load_state_dict(merged, strict=True)
    return model


def load_vit(model: torch.nn.Module, path: str | Path | dict) -> torch.nn.Module:
    """ViT weights from a timm DeiT-S/16 or DINO ViT-S/16 checkpoint into ``cellbench.models.ViT``
    (same key names), with input channels and position embeddings adapted to the model; a
    classifier head in the file is ignored unless the model has one of the same shape. ``path``
    may also be a state dict already in memory (e.g. the pre-training pool's foundation)."""
    state = dict(path) if isinstance(path, dict) else dict(load_state_dict(path))
    path = "(in memory)" if isinstance(path, dict) else path
    state.pop("head_dist.weight", None), state.pop("head_dist.bias", None), state.pop("dist_token", None)
    own = model.state_dict()
    if "patch_embed.proj.weight" in state:
        state["patch_embed.proj.weight"] = adapt_input_channels(state["patch_embed.proj.weight"],
                                                                own["patch_embed.proj.weight"].shape[1])
    if "pos_embed" in state:
        state["pos_embed"] = resize_pos_embed(state["pos_embed"], model.image_size // model.patch_size)
    for key in ("head.weight", "head.bias"):
        if key in state and (key not in own or own[key].shape != state[key].shape):
            state.pop(key)
    return _check_and_load(model, state, path, "ViT")


TORCHVISION_RESNET = (("conv1.", "stem.0."), ("bn1.", "stem.1."))


def torchvision_to_resnet18(state: dict) -> dict:
    """torchvision ``resnet18`` keys -> ``cellbench.models.ResNet18`` keys (``layerK.i`` ->
    ``stages.K-1.i``, ``downsample`` -> ``down``, ``conv1`` / ``bn1`` of the stem -> ``stem.0`` /
    ``stem.1``); ``fc`` (the ImageNet classifier) is dropped."""
    out = {}
    for k, v in state.items():
        if k.startswith("fc."):
            continue
        if k.startswith("layer"):
            stage, rest = k[len("layer"):].split(".", 1)
            k = f"stages.{int(stage) - 1}.{rest}".replace(".downsample.", ".down.")
        else:
            for old, new in TORCHVISION_RESNET:
                if k.startswith(old):
                    k = new + k[len(old):]
        out[k] = v
    return out


def load_resnet18(model: torch.nn.Module, path: str | Path) -> torch.nn.Module:
    """ImageNet ResNet18 weights in the torchvision layout into ``cellbench.models.ResNet18`` (the
    trunk; the treatment head keeps its initialisation), first convolution adapted to the model's
    input channels."""
    state = torchvision_to_resnet18(load_state_dict(path))
    if "stem.0.weight" in state:
        state["stem.0.weight"] = adapt_input_channels(state["stem.0.weight"], model.stem[0].in_channels)
    own = model.state_dict()
    state.update({k: v for k, v in own.items() if k.startswith("head.")})
    return _check_and_load(model, state, path, "ResNet18")
