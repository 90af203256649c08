"""What a model is, read in one place: its :class:`ModelInfo` (the metadata a model file carries),
its dimension, the tile multiple, the output activation, the single-output softmax rule.

Every module asks here instead of re-deriving these from shapes or ``getattr`` with defaults.
Example: a depth-4 2D U-Net from the original DeepSCEM (no metadata) ->
``model_dimension(model) == 2``, ``tile_multiple(model) == 16`` (the pooling strides multiplied).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from deepscem import __version__
from deepscem.config import UNetConfig, from_dict, to_dict
from deepscem.errors import DeepScemError, ModelError

# Input normalisation the datasets apply (): grey values mapped to [0, 1]
# with the volume-wide min/max (never per patch).
NORMALIZATION_MINMAX = "minmax"


@dataclass
class ModelInfo:
    """What a model file says about the network, besides its weights.

    dimension: 2 (input (Y, X, 1)) or 3 (input (Z, Y, X, 1)). outputs: output channels.
    label_names: one name per output. patch_size: training patch (Z, Y, X), None if never
    trained. normalization: input intensity mapping ("minmax": volume-wide min-max to [0, 1];
    "percentile 0.5 99.5": those percentiles of each volume to 0 and 1, see
    deepscem.dataset.normalization); prediction repeats it.
    unet: the architecture options (None when unknown). version: DeepSCEM version that wrote
    the file (None for the original's files). history: training summary (JSON-able dict:
    e.g. epochs, final/best losses), None if untrained. legacy: the network comes from a
    file written by the original DeepSCEM (its label names, patch size and normalisation
    are defaults, not what it was trained with); it stays set when such a model is re-saved.
    targets: what the outputs predict: "label" (one mask per label) or "label+boundary"
    (``outputs / 2`` masks, then each label's object boundaries, for the instance watershed;
    ``model create --boundary``).
    """

    dimension: int
    outputs: int
    label_names: list[str] = field(default_factory=list)
    patch_size: tuple[int, int, int] | None = None
    normalization: str = NORMALIZATION_MINMAX
    unet: UNetConfig | None = None
    version: str | None = __version__
    history: dict | None = None
    legacy: bool = False
    targets: str = "label"

    @property
    def n_labels(self) -> int:
        """Labels the model segments (its outputs, less the boundary channels)."""
        return int(self.outputs) // 2 if self.targets == "label+boundary" else int(self.outputs)

    def __post_init__(self) -> None:
        if not self.label_names:
            self.label_names = [f"label {i}" for i in range(int(self.outputs))]
        if self.patch_size is not None:
            self.patch_size = tuple(int(p) for p in self.patch_size)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["unet"] = to_dict(self.unet) if self.unet is not None else None
        data["patch_size"] = list(self.patch_size) if self.patch_size is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelInfo:
        """Inverse of ``to_dict``. Keys written by a newer version are ignored (the file
        must still load); a U-Net config that no longer parses becomes None."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        unet = values.get("unet")
        if isinstance(unet, dict):
            known = {f.name for f in dataclasses.fields(UNetConfig)}
            try:
                values["unet"] = from_dict(UNetConfig, {k: v for k, v in unet.items() if k in known})
            except (DeepScemError, TypeError, ValueError):
                values["unet"] = None
        return cls(**values)


def model_info_from(model: Any, config: UNetConfig | None = None) -> ModelInfo:
    """Metadata for an in-memory model (new or unsaved): dimension and outputs read from
    the model's shapes, default label names, no patch size or history yet."""
    return ModelInfo(dimension=model_dimension(model), outputs=output_channels(model), unet=config)


def all_layers(model: Any):
    """Every layer of ``model``, nested models included (depth first)."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def output_channels(model: Any) -> int:
    return int(model.outputs[0].shape[-1])


def input_channels(model: Any) -> int | None:
    channels = model.inputs[0].shape[-1]
    return None if channels is None else int(channels)


def model_dimension(model: Any, info: ModelInfo | None = None) -> int:
    """2 for (B, Y, X, C) inputs, 3 for (B, Z, Y, X, C): from ``info`` when it knows, else
    from the input rank; :class:`ModelError` for anything else."""
    if info is not None and info.dimension in (2, 3):
        return int(info.dimension)
    rank = len(model.inputs[0].shape)
    if rank not in (4, 5):
        raise ModelError(f"model input has rank {rank}; a DeepSCEM model takes 2D (batch, Y, X, 1) "
                         "or 3D (batch, Z, Y, X, 1) images")
    return rank - 2


def check_grey_input(model: Any) -> None:
    """:class:`ModelError` unless the model has one input with one channel (a grey image), or,
    for a 2D model, an odd number 1 + 2c of channels (2.5D: the slice and c neighbours on
    either side, see deepscem.dataset.context)."""
    channels = input_channels(model) if len(model.inputs) == 1 else -1
    two_and_a_half_d = len(model.inputs[0].shape) == 4 and channels is not None and channels % 2 == 1
    if len(model.inputs) != 1 or not (channels in (None, 1) or two_and_a_half_d):
        raise ModelError("a DeepSCEM model takes one grey image (one input with one channel, or "
                         "1 + 2 x context slices for a 2.5D model); this one has inputs "
                         f"{[tuple(t.shape) for t in model.inputs]}")


def tile_multiple(model: Any = None, info: ModelInfo | None = None) -> int:
    """Every spatial tile/patch size must be a multiple of this: 2**depth (times the U-Net's
    ``scale``) for a U-Net, from
    ``info``'s U-Net config when known, else the model's pooling strides multiplied (files
    without metadata). Example: depth 4 -> 16, so a 256 patch fits and 250 does not."""
    unet = info.unet if info is not None else None
    if isinstance(unet, UNetConfig):
        return 2 ** int(unet.depth) * int(unet.scale)
    if model is None:
        raise ModelError("cannot tell the tile multiple: give the keras model (its metadata has no "
                         "U-Net configuration)")
    import keras

    pools = (keras.layers.MaxPooling2D, keras.layers.MaxPooling3D,
             keras.layers.AveragePooling2D, keras.layers.AveragePooling3D)
    multiple = 1
    for layer in all_layers(model):
        if isinstance(layer, pools):
            multiple *= max(int(s) for s in layer.strides)
    return multiple


def model_scale(info: Any) -> int:
    """The U-Net's ``scale`` (its network works at 1/scale of the YX resolution): 1 when the
    metadata has no U-Net configuration (files without metadata, no info at all)."""
    return int(getattr(getattr(info, "unet", None), "scale", 1) or 1)


def round_to_multiple(size: int, multiple: int) -> int:
    """The nearest size >= ``multiple`` that is a multiple of it, rounding DOWN (a tile or patch
    never grows past what the user asked; too small rounds up to one multiple).

    >>> round_to_multiple(250, 16), round_to_multiple(256, 16), round_to_multiple(5, 16)
    (240, 256, 16)
    """
    return max(int(multiple), int(size) // int(multiple) * int(multiple))


def output_activation(model: Any, info: ModelInfo | None = None) -> str:
    """sigmoid, softmax, tanh or linear: from the metadata, else from the last layer."""
    if info is not None and info.unet is not None and info.unet.activation:
        return str(info.unet.activation)
    fn = getattr(model.layers[-1], "activation", None)
    name = getattr(fn, "__name__", None) or (fn if isinstance(fn, str) else None)
    return {"linear": "linear", "sigmoid": "sigmoid", "softmax": "softmax", "tanh": "tanh"}.get(
        str(name), "sigmoid")


#: A softmax over one channel is always 1.0. Building such a model is refused (ConfigError in
#: ``UNetConfig``/``build_unet``); an existing file (the original DeepSCEM allowed it) loads,
#: trains and predicts with this warning, so the user can still open and replace it.
SINGLE_SOFTMAX_NOTE = ("this model ends in a softmax over a single output channel, so it predicts 1 "
                       "everywhere (the original DeepSCEM allowed this); use a sigmoid model for one label")


def single_softmax(model: Any, info: ModelInfo | None = None) -> bool:
    return output_activation(model, info) == "softmax" and output_channels(model) == 1
