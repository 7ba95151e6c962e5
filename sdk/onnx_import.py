"""Read a trained ReLU network from an ONNX file into our layer list (numpy + onnx, no torch).

The importer accepts the standard-op subset that our layers express exactly and refuses
everything else with an `OnnxImportError` that names the node (name and op type) and the
reason. Accepted, as one chain from the single graph input to the output:

- `Conv` (2-D, square kernel, equal strides, equal pads, group 1, dilation 1, NOTSET auto_pad),
  `Gemm` (transA = 0; alpha, beta and transB folded), `MatMul` with a constant right operand,
  each optionally followed by `Add` of a per-channel constant and by `BatchNormalization`
  (folded: s = scale / sqrt(var + epsilon), W <- W s, b <- (b - mean) s + B);
- `Relu` after every weighted layer except the last (the last one is the output layer);
- `MaxPool` with kernel = stride, no padding, dilation 1 (before or after the `Relu`: both
  orders are equal because max and ReLU commute);
- `Flatten` (axis 1) and `Reshape` to [N, C*H*W] with a constant shape;
- `Identity` anywhere; a trailing `Softmax`/`LogSoftmax` (argmax does not change);
- shape arithmetic on constants (`Shape` of the chain's tensor, `Gather`, `Unsqueeze`,
  `Squeeze`, `Concat`, `Slice`, `Cast`), as torch writes `x.view(x.size(0), -1)`;
- an input normalisation `Sub`/`Div`/`Mul`/`Add` by constants (scalar or per channel) between
  the graph input and the first weighted layer, folded into that layer (`InputAffine`).

Tensors are NCHW, opset >= 13, constants come from initializers or `Constant` nodes. Weights are
returned in float64 with our names and shapes (docs/architecture.md): conv [Cout, Cin, k, k],
dense/output [out, in].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Lowest default-domain opset accepted.
MIN_OPSET = 13
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul")
#: Ops evaluated when all their inputs are constants (shape arithmetic).
SHAPE_OPS = ("Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Identity")


class OnnxImportError(ValueError):
    """The ONNX file cannot be read or uses something our layers cannot express."""


@dataclass
class InputAffine:
    """x_onnx = scale * x + offset per input channel, x = byte / 255 (what our network sees)."""

    scale: np.ndarray
    offset: np.ndarray


@dataclass
class ImportedNetwork:
    """A ReLU network in our layer vocabulary.

    `layers`: layer specs (docs/architecture.md) with the hidden conv2d/dense layers followed by
    ReLU and the last weighted layer of kind `output`. `arrays`: `<name>.weight`, `<name>.bias`
    (float64, input normalisation and BatchNorm folded). `input_shape`: the images' (C, H, W);
    `input_rank`: 4 for an NCHW ONNX input, 2 for [N, C*H*W]; `batch`: the input's fixed
    batch size (None when symbolic; our network takes any). `nodes`: layer name -> the ONNX
    nodes it was built from. `affine`: the folded input normalisation, if any;
    `affine_inexact`: its offset met a zero-padded first convolution (border taps differ).
    `tail`: 'Softmax' or 'LogSoftmax' when the graph ends with one (dropped: the class, the
    argmax, is the same; onnxruntime's outputs are that function of our scores).
    """

    layers: list[dict]
    arrays: dict[str, np.ndarray]
    input_shape: tuple[int, int, int]
    input_name: str
    input_rank: int
    batch: int | None
    output_name: str
    opset: int
    producer: str
    nodes: dict[str, list[str]] = field(default_factory=dict)
    affine: InputAffine | None = None
    affine_inexact: bool = False
    tail: str | None = None


def _label(node, index: int) -> str:
    return f"node '{node.name or f'#{index}'}' ({node.op_type})"


class _Graph:
    """Constant lookup and the chain walk state of one ONNX graph."""

    def __init__(self, model, path: Path):
        from onnx import numpy_helper

        self.path = path
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        for init in self.graph.initializer:
            try:
                self.consts[init.name] = numpy_helper.to_array(init).astype(np.float64)
            except Exception as err:  # noqa: BLE001 - any decoding problem of a tensor
                raise OnnxImportError(f"{path}: initializer '{init.name}' cannot be read "
                                      f"({err})") from None
        self.numpy_helper = numpy_helper

    def const(self, node, index: int, position: int, what: str) -> np.ndarray:
        """The constant at input `position` of `node`, or an error naming the node."""
        if position >= len(node.input) or not node.input[position]:
            raise OnnxImportError(f"{_label(node, index)}: missing input {position} ({what})")
        name = node.input[position]
        if name not in self.consts:
            raise OnnxImportError(f"{_label(node, index)}: input '{name}' ({what}) must be a "
                                  "constant (an initializer or a Constant node); it is not "
                                  "defined as one")
        return self.consts[name]


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _load(path: Path):
    import onnx

    try:
        data = path.read_bytes()
    except OSError as err:
        raise OnnxImportError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as err:  # noqa: BLE001 - protobuf raises several types on bad bytes
        raise OnnxImportError(f"{path}: not a valid ONNX file ({type(err).__name__}: "
                              f"{' '.join(str(err).split())[:200]})") from None
    if not model.graph.node:
        raise OnnxImportError(f"{path}: not a valid ONNX file (the graph has no nodes; "
                              "truncated or empty?)")
    return model


def _opset(model, path: Path) -> int:
    versions = {o.domain: o.version for o in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None or opset < MIN_OPSET:
        raise OnnxImportError(f"{path}: opset {opset} is not supported; export with opset "
                              f">= {MIN_OPSET} (torch.onnx.export(..., opset_version=17))")
    return int(opset)


def _input(graph: _Graph, path: Path, images: tuple[int, int, int] | None
           ) -> tuple[str, int, tuple[int, int, int], int | None]:
    """(name, rank, image shape (C, H, W), fixed batch size or None) of the single data input,
    checked against `images` (the dataset's shape; needed when the ONNX input has symbolic
    dimensions)."""
    inputs = [i for i in graph.graph.input if i.name not in graph.consts]
    if len(inputs) != 1:
        raise OnnxImportError(f"{path}: the graph must have exactly one data input, it has "
                              f"{len(inputs)} ({', '.join(i.name for i in inputs) or '-'})")
    value = inputs[0]
    tensor_type = value.type.tensor_type
    if not tensor_type.HasField("shape"):
        raise OnnxImportError(f"{path}: input '{value.name}' has no declared shape")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    shown = ["N" if d is None else d for d in dims]
    if len(dims) not in (2, 4):
        raise OnnxImportError(f"{path}: input '{value.name}' has rank {len(dims)} (shape "
                              f"{shown}); expected NCHW [N, C, H, W] or [N, C*H*W]")
    if images is None:
        if len(dims) != 4 or None in dims[1:]:
            raise OnnxImportError(f"{path}: input '{value.name}' (shape {shown}) does not fix "
                                  "the image shape; give the dataset")
        return value.name, 4, tuple(dims[1:]), dims[0]
    images = tuple(int(d) for d in images)
    expected = list(images) if len(dims) == 4 else [int(np.prod(images))]
    if any(d is not None and d != e for d, e in zip(dims[1:], expected)):
        raise OnnxImportError(f"{path}: input '{value.name}' has shape {shown}; the dataset's "
                              f"images need [N, {', '.join(map(str, expected))}]")
    return value.name, len(dims), images, dims[0]


def import_onnx(path: str | Path, *, input_shape: tuple[int, int, int] | None = None,
                input_affine: InputAffine | None = None) -> ImportedNetwork:
    """Read `path` and map it to our layer list; raises OnnxImportError naming the node.

    `input_shape`: the dataset's (C, H, W); the ONNX input must match it (NCHW, or flattened
    [N, C*H*W] for an MLP). `input_affine`: what the model's input is in terms of ours,
    x_onnx = scale * (byte / 255) + offset per channel (e.g. a model trained on raw bytes:
    scale 255), folded into the first layer together with any normalisation in the graph.
    """
    path = Path(path)
    model = _load(path)
    opset = _opset(model, path)
    graph = _Graph(model, path)
    input_name, rank, images, batch = _input(graph, path, input_shape)
    outputs = [o.name for o in graph.graph.output]
    if len(outputs) != 1:
        raise OnnxImportError(f"{path}: the graph must have exactly one output, it has "
                              f"{len(outputs)}")
    builder = _Builder(graph, input_name,
                       images if rank == 4 else (int(np.prod(images)),), batch)
    if input_affine is not None:
        builder.start_affine(input_affine)
    for index, node in enumerate(graph.graph.node):
        builder.add(node, index)
    layers, arrays, nodes = builder.finish(outputs[0])
    return ImportedNetwork(layers, arrays, images, input_name, rank, batch, outputs[0], opset,
                           f"{model.producer_name} {model.producer_version}".strip(), nodes,
                           builder.affine, builder.inexact, builder.tail_softmax or None)


class _Builder:
    """Walks the node chain and collects layers (see the module docstring).

    `shape` is the current tensor's shape without the batch axis: (C, H, W) or (n,).
    """

    def __init__(self, graph: _Graph, input_name: str, shape: tuple, batch: int | None):
        self.g = graph
        self.current = input_name
        self.shape = tuple(shape)
        self.batch = batch
        self.affine: InputAffine | None = None
        self.affine_nodes: list[str] = []
        self.inexact = False
        self.layers: list[dict] = []        # {"kind", "weight", "bias", "relu", "node", ...}
        self.open: dict | None = None       # last weighted layer still taking Add/BN
        self.tail_softmax: str | bool = False
        self.defined = {input_name}        # tensors produced so far (besides constants)

    def start_affine(self, affine: InputAffine) -> None:
        """Begin with x_onnx = scale x + offset (scalars or one value per input channel)."""
        n = self.shape[0]
        self.affine = InputAffine(*(np.broadcast_to(np.asarray(v, dtype=np.float64).reshape(-1),
                                                    (n,)).copy()
                                    for v in (affine.scale, affine.offset)))
        self.affine_nodes.append("--input-scale/--input-offset")

    # -- chain handling -------------------------------------------------------------------
    def add(self, node, index: int) -> None:
        op = node.op_type
        if op == "Constant":
            self._constant(node, index)
            return
        if op == "Shape" or (op in SHAPE_OPS and node.input
                             and all(i in self.g.consts for i in node.input if i)):
            self._fold_shape(node, index, _attrs(node))
            return
        if node.domain not in ("", "ai.onnx"):
            raise OnnxImportError(f"{_label(node, index)}: custom domain '{node.domain}' is "
                                  "not supported")
        if self.tail_softmax:
            raise OnnxImportError(f"{_label(node, index)}: nothing may follow the final "
                                  "Softmax/LogSoftmax")
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise OnnxImportError(
                f"{_label(node, index)}: op type {op} is not supported; supported: Conv, Gemm, "
                "MatMul(+Add), Relu, BatchNormalization, MaxPool, Flatten, Reshape, Identity, "
                "a final Softmax, input Sub/Div/Mul/Add by constants")
        for name in node.input:
            if name and name not in self.g.consts and name not in self.defined:
                raise OnnxImportError(
                    f"{_label(node, index)}: input '{name}' is not defined (no initializer, "
                    "Constant node, graph input or earlier node output: a missing "
                    "initializer?)")
        data = [i for i in node.input if i and i not in self.g.consts]
        if data != [self.current]:
            raise OnnxImportError(
                f"{_label(node, index)}: only a single chain of layers is supported; this node "
                f"reads {data or 'only constants'} but the chain's tensor is '{self.current}' "
                "(branches, skip connections and undefined inputs are not supported)")
        if node.input[0] != self.current and op not in ("Add", "Mul"):
            raise OnnxImportError(f"{_label(node, index)}: the data must be the first input")
        if len(node.output) < 1 or not node.output[0]:
            raise OnnxImportError(f"{_label(node, index)}: has no output")
        handler(node, index, _attrs(node))
        self.current = node.output[0]
        self.defined.update(o for o in node.output if o)

    def _constant(self, node, index: int) -> None:
        value = _attrs(node).get("value")
        if value is None:
            raise OnnxImportError(f"{_label(node, index)}: only tensor 'value' constants are "
                                  "supported")
        self.g.consts[node.output[0]] = self.g.numpy_helper.to_array(value).astype(np.float64)

    def _fold_shape(self, node, index: int, a: dict) -> None:
        """Evaluate shape arithmetic on constants, e.g. torch's `x.view(x.size(0), -1)`:
        Shape -> Gather -> Unsqueeze -> Concat -> Reshape. `Shape` of the chain's tensor is
        [0, *shape]: the batch axis as 0, which Reshape reads as "keep this axis"."""
        c = self.g.consts
        if node.op_type == "Shape":
            if list(node.input) != [self.current] or a.get("start", 0) or "end" in a:
                raise OnnxImportError(f"{_label(node, index)}: only the full shape of the "
                                      "chain's tensor is supported")
            value = np.array([0, *self.shape], dtype=np.float64)
        else:
            args = [c[i] if i else None for i in node.input]
            ints = [None if v is None else v.astype(np.int64) for v in args]
            op = node.op_type
            if op == "Gather":
                value = np.take(args[0], ints[1], axis=a.get("axis", 0))
            elif op == "Unsqueeze":
                value = args[0]
                for axis in sorted(ints[1].reshape(-1).tolist()):
                    value = np.expand_dims(value, axis if axis >= 0 else value.ndim + 1 + axis)
            elif op == "Squeeze":
                value = np.squeeze(args[0], axis=None if len(args) < 2 or args[1] is None
                                   else tuple(ints[1].reshape(-1).tolist()))
            elif op == "Concat":
                value = np.concatenate([np.atleast_1d(v) for v in args], axis=a.get("axis", 0))
            elif op == "Slice":
                starts, ends = ints[1].tolist(), ints[2].tolist()
                axes = ints[3].tolist() if len(ints) > 3 and ints[3] is not None \
                    else list(range(len(starts)))
                steps = ints[4].tolist() if len(ints) > 4 and ints[4] is not None \
                    else [1] * len(starts)
                index_tuple = [slice(None)] * args[0].ndim
                for axis, start, end, step in zip(axes, starts, ends, steps):
                    index_tuple[axis] = slice(start, end, step)
                value = args[0][tuple(index_tuple)]
            else:                                   # Cast, Identity
                value = args[0]
        c[node.output[0]] = np.asarray(value, dtype=np.float64)

    def _new(self, kind: str, node, index: int, weight: np.ndarray, bias: np.ndarray,
             out_shape: tuple, **extra) -> None:
        if self.layers and not self.layers[-1]["relu"]:
            last = self.layers[-1]
            raise OnnxImportError(
                f"{_label(node, index)}: the weighted layer before it (node '{last['node']}') "
                "has no Relu; only the last weighted layer may be linear")
        self.layers.append({"kind": kind, "weight": weight, "bias": bias, "relu": False,
                            "node": node.name or f"#{index}", "pools": [], "flat": False,
                            "nodes": [node.name or f"#{index}"], **extra})
        self.open = self.layers[-1]
        self.shape = out_shape

    def _need_open(self, node, index: int, what: str) -> dict:
        if self.open is None:
            raise OnnxImportError(f"{_label(node, index)}: {what} must directly follow a Conv, "
                                  "Gemm or MatMul (before Relu and pooling)")
        return self.open

    # -- weighted layers ------------------------------------------------------------------
    def _op_Conv(self, node, index: int, a: dict) -> None:
        if len(self.shape) != 3:
            raise OnnxImportError(f"{_label(node, index)}: Conv needs a 4-D NCHW input, got "
                                  f"[N, {', '.join(map(str, self.shape))}]")
        w = self.g.const(node, index, 1, "weight")
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise OnnxImportError(f"{_label(node, index)}: only square 2-D kernels are "
                                  f"supported, weight shape {list(w.shape)}")
        k = w.shape[2]
        group = a.get("group", 1)
        dil = list(a.get("dilations", [1, 1]))
        strides = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        problems = [(group != 1, f"group={group} (grouped/depthwise convolution)"),
                    (dil != [1, 1], f"dilations={dil}"),
                    (len(set(strides)) != 1, f"unequal strides {strides}"),
                    (len(set(pads)) != 1, f"asymmetric pads {pads}"),
                    (auto_pad != "NOTSET", f"auto_pad={auto_pad}"),
                    (list(a.get("kernel_shape", [k, k])) != [k, k],
                     f"kernel_shape {a.get('kernel_shape')} differs from the weight"),
                    (w.shape[1] != self.shape[0], f"a weight for {w.shape[1]} input channels "
                     f"(the input has {self.shape[0]})")]
        for bad, what in problems:
            if bad:
                raise OnnxImportError(f"{_label(node, index)}: {what} is not supported")
        b = (self._per_channel(self.g.const(node, index, 2, "bias"), w.shape[0], node, index,
                               "bias") if len(node.input) > 2 and node.input[2]
             else np.zeros(w.shape[0]))
        s, p = int(strides[0]), int(pads[0])
        _, h, wd = self.shape
        out = (int(w.shape[0]), (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1)
        if min(out) < 1:
            raise OnnxImportError(f"{_label(node, index)}: input {list(self.shape)} is too "
                                  "small for the kernel")
        self._new("conv2d", node, index, w, b, out, kernel_size=int(k), stride=s, padding=p)

    def _op_Gemm(self, node, index: int, a: dict) -> None:
        if a.get("transA", 0):
            raise OnnxImportError(f"{_label(node, index)}: transA=1 is not supported")
        b = self.g.const(node, index, 1, "weight B")
        w = a.get("alpha", 1.0) * (b if a.get("transB", 0) else b.T)
        self._dense(node, index, w)
        if len(node.input) > 2 and node.input[2]:
            c = a.get("beta", 1.0) * self.g.const(node, index, 2, "bias C")
            self.open["bias"] = self._broadcast(c, node, index, "bias C")

    def _op_MatMul(self, node, index: int, a: dict) -> None:
        self._dense(node, index, self.g.const(node, index, 1, "weight").T)

    def _dense(self, node, index: int, w: np.ndarray) -> None:
        if len(self.shape) != 1:
            raise OnnxImportError(f"{_label(node, index)}: needs a 2-D input [N, features]; "
                                  "add a Flatten before it")
        if w.ndim != 2 or w.shape[1] != self.shape[0]:
            raise OnnxImportError(f"{_label(node, index)}: weight of shape {list(w.shape)} "
                                  f"(as [out, in]) does not take {self.shape[0]} input features")
        self._new("dense", node, index, w, np.zeros(w.shape[0]), (int(w.shape[0]),))

    @staticmethod
    def _per_channel(c: np.ndarray, n: int, node, index: int, what: str) -> np.ndarray:
        """An input that is per channel by the op's definition: shape [n]."""
        if c.shape != (n,):
            raise OnnxImportError(f"{_label(node, index)}: {what} has shape {list(c.shape)}, "
                                  f"expected [{n}]")
        return c

    def _broadcast(self, c: np.ndarray, node, index: int, what: str) -> np.ndarray:
        """A constant broadcast against the current [N, C, H, W] or [N, n] tensor that is
        constant over everything but the channel axis -> a vector of C (or n) values."""
        n, rank = self.shape[0], len(self.shape) + 1
        if c.ndim > rank:
            raise OnnxImportError(f"{_label(node, index)}: {what} of shape {list(c.shape)} has "
                                  f"more axes than the data")
        full = (1,) * (rank - c.ndim) + c.shape
        if any(d != 1 for i, d in enumerate(full) if i != 1) or full[1] not in (1, n):
            raise OnnxImportError(f"{_label(node, index)}: {what} of shape {list(c.shape)} is "
                                  f"not constant per channel of the data "
                                  f"[N, {', '.join(map(str, self.shape))}]")
        return np.broadcast_to(c.reshape(-1), (n,)).astype(np.float64) if c.size == 1 \
            else c.reshape(-1).astype(np.float64)

    # -- what may follow a weighted layer ---------------------------------------------------
    def _op_Add(self, node, index: int, a: dict) -> None:
        if not self.layers:
            self._affine(node, index, "Add")
            return
        layer = self._need_open(node, index, "Add of a constant (a bias)")
        c = self.g.const(node, index, 1 if node.input[0] == self.current else 0, "addend")
        layer["bias"] = layer["bias"] + self._broadcast(c, node, index, "addend")
        layer["nodes"].append(node.name or f"#{index}")

    def _op_BatchNormalization(self, node, index: int, a: dict) -> None:
        layer = self._need_open(node, index, "BatchNormalization")
        if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise OnnxImportError(f"{_label(node, index)}: training mode is not supported")
        n = len(layer["bias"])
        scale, beta, mean, var = (self._per_channel(self.g.const(node, index, i, what), n,
                                                    node, index, what)
                                  for i, what in enumerate(("scale", "B", "mean", "var"),
                                                           start=1))
        if np.any(var + a.get("epsilon", 1e-5) <= 0):
            raise OnnxImportError(f"{_label(node, index)}: var + epsilon must be > 0")
        s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
        layer["weight"] = layer["weight"] * s.reshape((-1,) + (1,) * (layer["weight"].ndim - 1))
        layer["bias"] = (layer["bias"] - mean) * s + beta
        layer["nodes"].append(node.name or f"#{index}")

    def _op_Relu(self, node, index: int, a: dict) -> None:
        if not self.layers or self.layers[-1]["relu"] or self.layers[-1]["flat"]:
            raise OnnxImportError(f"{_label(node, index)}: a Relu must follow a Conv, Gemm or "
                                  "MatMul (one Relu per layer, before any Flatten)")
        self.layers[-1]["relu"] = True
        self.layers[-1]["nodes"].append(node.name or f"#{index}")
        self.open = None

    def _op_MaxPool(self, node, index: int, a: dict) -> None:
        if not self.layers or self.layers[-1]["kind"] != "conv2d" or len(self.shape) != 3:
            raise OnnxImportError(f"{_label(node, index)}: MaxPool must follow a Conv layer")
        kernel = list(a.get("kernel_shape", []))
        strides = list(a.get("strides", [1] * len(kernel)))
        problems = [(len(kernel) != 2 or kernel[0] != kernel[1], f"kernel_shape {kernel} (only "
                     "square 2-D windows)"),
                    (strides != kernel, f"strides {strides} differ from kernel_shape {kernel}"),
                    (any(a.get("pads", [0])), f"pads {list(a.get('pads', []))}"),
                    (list(a.get("dilations", [1, 1])) != [1, 1], "dilations"),
                    (a.get("ceil_mode", 0), "ceil_mode=1"),
                    (len(node.output) > 1 and node.output[1], "the Indices output")]
        for bad, what in problems:
            if bad:
                raise OnnxImportError(f"{_label(node, index)}: {what} is not supported; "
                                      "MaxPool needs kernel = stride, no padding")
        c, h, w = self.shape
        k = int(kernel[0])
        if h < k or w < k:
            raise OnnxImportError(f"{_label(node, index)}: input {list(self.shape)} is smaller "
                                  "than the window")
        self.layers[-1]["pools"].append((k, node.name or f"#{index}"))
        self.shape = (c, h // k, w // k)
        self.open = None

    def _op_Flatten(self, node, index: int, a: dict) -> None:
        if a.get("axis", 1) != 1:
            raise OnnxImportError(f"{_label(node, index)}: only axis=1 is supported")
        self._flatten()

    def _op_Reshape(self, node, index: int, a: dict) -> None:
        shape = self.g.const(node, index, 1, "shape").astype(np.int64).reshape(-1).tolist()
        n = int(np.prod(self.shape))
        batch_ok = len(shape) == 2 and (shape[0] in (0, -1) or shape[0] == self.batch)
        if not (batch_ok and (shape[1] == n or shape[1] == -1 and shape[0] != -1)):
            raise OnnxImportError(f"{_label(node, index)}: only a reshape to 2-D [N, {n}] is "
                                  f"supported, target shape {shape}")
        self._flatten()

    def _flatten(self) -> None:
        if len(self.shape) == 1:
            return
        self.shape = (int(np.prod(self.shape)),)
        self.open = None
        if self.layers:
            self.layers[-1]["flat"] = True

    def _op_Identity(self, node, index: int, a: dict) -> None:
        pass

    def _op_Softmax(self, node, index: int, a: dict) -> None:
        if not self.layers or self.layers[-1]["relu"] or len(self.shape) != 1 \
                or a.get("axis", -1) not in (-1, 1):
            raise OnnxImportError(f"{_label(node, index)}: a Softmax is only supported at the "
                                  "end, over the classes of the last (linear) layer")
        self.tail_softmax = node.op_type

    _op_LogSoftmax = _op_Softmax

    def _op_Sub(self, node, index: int, a: dict) -> None:
        self._affine(node, index, "Sub")

    def _op_Div(self, node, index: int, a: dict) -> None:
        self._affine(node, index, "Div")

    def _op_Mul(self, node, index: int, a: dict) -> None:
        self._affine(node, index, "Mul")

    def _affine(self, node, index: int, op: str) -> None:
        """Compose an input normalisation x' = scale x + offset (before any weighted layer)."""
        if self.layers:
            raise OnnxImportError(f"{_label(node, index)}: {op} by a constant is only supported "
                                  "as input normalisation before the first Conv/Gemm/MatMul"
                                  + (" or as a bias Add right after one" if op == "Add" else ""))
        if op in ("Sub", "Div") and node.input[0] != self.current:
            raise OnnxImportError(f"{_label(node, index)}: the data must be the first input")
        c = self.g.const(node, index, 1 if node.input[0] == self.current else 0, "constant")
        v = self._broadcast(c, node, index, "constant")
        if op == "Div" and np.any(v == 0):
            raise OnnxImportError(f"{_label(node, index)}: division by zero")
        if self.affine is None:
            self.affine = InputAffine(np.ones(len(v)), np.zeros(len(v)))
        s, o = self.affine.scale, self.affine.offset
        if op == "Sub":
            o = o - v
        elif op == "Add":
            o = o + v
        elif op == "Mul":
            s, o = s * v, o * v
        else:
            s, o = s / v, o / v
        self.affine = InputAffine(s, o)
        self.affine_nodes.append(node.name or f"#{index}")

    # -- result ---------------------------------------------------------------------------
    def finish(self, output: str) -> tuple[list[dict], dict[str, np.ndarray],
                                           dict[str, list[str]]]:
        if self.current != output:
            raise OnnxImportError(f"{self.g.path}: the chain ends at '{self.current}', not at "
                                  f"the graph output '{output}'")
        if not self.layers:
            raise OnnxImportError(f"{self.g.path}: the graph has no Conv, Gemm or MatMul")
        last = self.layers[-1]
        if last["relu"] or last["kind"] != "dense":
            raise OnnxImportError(
                f"node '{last['node']}': the last weighted layer must be a linear Gemm/MatMul "
                "(the class scores; no Relu after it)")
        specs, arrays, nodes, counts = [], {}, {}, {"conv2d": 0, "dense": 0, "pool": 0}
        if self.layers[0]["kind"] == "dense":
            specs.append({"kind": "flatten", "name": "flatten0"})
        for i, layer in enumerate(self.layers):
            kind = "output" if layer is last else layer["kind"]
            if kind == "output":
                name = "out"
            else:
                counts[kind] += 1
                name = f"{'conv' if kind == 'conv2d' else 'fc'}{counts[kind]}"
            spec = {"kind": kind, "name": name}
            if kind == "conv2d":
                spec |= {"out_channels": int(layer["weight"].shape[0]),
                         "kernel_size": layer["kernel_size"], "stride": layer["stride"],
                         "padding": layer["padding"]}
            else:
                spec["out_features"] = int(layer["weight"].shape[0])
            weight, bias = layer["weight"], layer["bias"]
            if i == 0 and self.affine is not None:
                weight, bias = self._fold_affine(weight, bias, spec)
            specs.append(spec)
            arrays[f"{name}.weight"], arrays[f"{name}.bias"] = weight, bias
            nodes[name] = (self.affine_nodes if i == 0 else []) + layer["nodes"]
            for size, node in layer["pools"]:
                counts["pool"] += 1
                specs.append({"kind": "maxpool2d", "name": f"pool{counts['pool']}",
                              "size": size})
                nodes[specs[-1]["name"]] = [node]
            if layer["flat"]:
                specs.append({"kind": "flatten", "name": "flatten"})
        return specs, arrays, nodes

    def _fold_affine(self, weight: np.ndarray, bias: np.ndarray, spec: dict
                     ) -> tuple[np.ndarray, np.ndarray]:
        """W x' + b with x' = s x + o (per input channel)  ==  (W s) x + (b + W o).

        Exact for dense layers and unpadded convolutions; with zero padding the border taps of
        the ONNX model see x' = 0 where ours see x = 0, i.e. x' = o (`self.inexact`).
        """
        s, o = self.affine.scale, self.affine.offset
        if weight.ndim == 4:
            self.inexact = bool(spec["padding"] and np.any(o != 0))
            return (weight * s.reshape(1, -1, 1, 1),
                    bias + (weight * o.reshape(1, -1, 1, 1)).sum(axis=(1, 2, 3)))
        per_in = weight.shape[1] // len(s)
        return weight * np.repeat(s, per_in)[None, :], bias + weight @ np.repeat(o, per_in)
