"""Convert a trained ReLU network (ONNX) into a TTFS run directory, then optionally fine-tune.

Pipeline (`convert`):

1. `ttfs.sdk.onnx_import.import_onnx` maps the ONNX graph to our layer list (input normalisation and
   BatchNorm folded), and the imported ReLU network is checked against onnxruntime on test
   images (`import_agreement`, `import_max_abs_error`).
2. Calibration (data-based normalisation, after Rueckauer et al. 2017, with the kernel chosen
   per layer): for a hidden layer l with pre-activation z_l (original units) the TTFS layer
   computes a_l = f_l(c_l z_l) / c_l, where f_l is the TTFS activation with (tau_l, td_l = 0),
   whose range is (0, x_max = exp(td/tau) = 1], and c_l = 1 / lambda_l scales the layer's p-th
   percentile activation lambda_l to x_max. f_l quantizes log z in steps of 1 / tau_l (relative
   error within about +-1/(2 tau_l)) over a range of (T - 1 + q) / tau_l below saturation, so
   tau_l trades resolution against the dead zone. Layer by layer, with the layers before l
   already converted and the layers after l kept ReLU, (p, tau_l) is chosen from a grid to
   minimise the mean squared error of the output scores against the ReLU network's on the
   calibration images. The scales are then moved into the weights, which is exact for
   ReLU (positively homogeneous) and for max pooling:
       W~_l = W_l c_l / c_{l-1},  b~_l = b_l c_l  (c_0 = 1 for the input, c_L = 1 for output).
3. Each hidden layer gets a BatchNorm that is the identity in evaluation and close to it in
   training mode: running_mean = beta = mu, running_var = v - eps, gamma = sqrt(v), with
   mu and v = max(var, 2 eps) the per-channel mean and variance of z~_l on the calibration
   images, so BN(z) = gamma (z - mu) / sqrt(v) + beta = z, and a training batch (normalised by
   its own statistics, close to mu and v) sees nearly the same network. TKBN then acts on
   gamma and beta in the units in which the paper states it.
4. Optional fine-tuning: `ttfs.sdk.train.fit(..., init_state=...)` with the paper's SR + TR + TKBN
   from epoch 0 (E_SR = E_tk = 0, so p(e) = 1: the converted network already runs on TTFS).

The run directory holds config.json (with a `convert` section: source file, its sha256, the
per-layer calibration), model.safetensors with our keys and result.json (test metrics of the
final model, plus the ReLU reference and the metrics before fine-tuning), so `ttfs-train --eval`
and `ttfs-export` read it like a trained run.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ttfs.sdk.onnx_import import ImportedNetwork, InputAffine, OnnxImportError, import_onnx

#: Images of the training split used for calibration by default.
DEFAULT_CALIBRATION = 500
#: Candidate activation percentiles lambda_l (Rueckauer et al. use 99.9 / 99.99).
PERCENTILES = (99.0, 99.9, 99.99, 100.0)
#: Candidate tau_l as fractions of T: the log range (T - 1 + q) / tau_l from about 2 to 6.
TAU_FRACTIONS = (1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6)


class ConvertError(ValueError):
    """Bad options, a dataset that does not fit the model, or a failed import check."""


@dataclass
class ConvertOptions:
    """Options of `convert` (see `ttfs-convert --help`).

    T: time steps per window; tau: fixed tau for every layer (None: calibrate per layer);
    percentile: fixed activation percentile (None: calibrate); calibration: training images used
    for calibration; finetune: fine-tuning epochs (0: none) with `method`, `lr`, `lambda_bn`,
    `tkbn_form`; input_scale / input_offset: what the ONNX model's input is in terms of
    byte / 255 (x_onnx = scale * x + offset), folded into the first layer; data_dir: source
    folder for mnist / fashion-mnist (`ttfs.sdk.data.load_dataset`).
    """

    dataset: str = "mnist5k"
    T: int = 16
    q: float = 0.5
    tau: float | None = None
    percentile: float | None = None
    calibration: int = DEFAULT_CALIBRATION
    finetune: int = 0
    method: str = "sr+tr+tkbn"
    lr: float = 1e-3
    lambda_bn: float = 1e-1
    tkbn_form: str = "taylor"
    batch_size: int = 32
    seed: int = 0
    input_scale: list[float] = field(default_factory=lambda: [1.0])
    input_offset: list[float] = field(default_factory=lambda: [0.0])
    data_dir: str | None = None

    def check(self) -> None:
        from ttfs.sdk.train import METHODS, TKBN_FORMS

        checks = [
            (self.T >= 2, f"--T must be at least 2, got {self.T}"),
            (0 <= self.q < 1, f"--q must be in [0, 1), got {self.q}"),
            (self.tau is None or (self.tau > 0 and math.isfinite(self.tau)),
             f"--tau must be > 0, got {self.tau}"),
            (self.percentile is None or 0 < self.percentile <= 100,
             f"--percentile must be in (0, 100], got {self.percentile}"),
            (self.calibration >= 1, f"--calibration must be at least 1, got "
                                    f"{self.calibration}"),
            (self.finetune >= 0, f"--finetune must be >= 0, got {self.finetune}"),
            (self.method in METHODS and self.method != "relu",
             f"--method {self.method!r}: expected one of "
             f"{', '.join(m for m in METHODS if m != 'relu')}"),
            (self.lr > 0, f"--lr must be > 0, got {self.lr}"),
            (self.batch_size >= 1, f"--batch-size must be >= 1, got {self.batch_size}"),
            (self.lambda_bn >= 0, f"--lambda-bn must be >= 0, got {self.lambda_bn}"),
            (self.tkbn_form in TKBN_FORMS, f"--tkbn-form {self.tkbn_form!r}: expected "
                                           f"{' or '.join(TKBN_FORMS)}"),
            (all(math.isfinite(v) and v != 0 for v in self.input_scale),
             "--input-scale values must be finite and non-zero"),
            (all(math.isfinite(v) for v in self.input_offset),
             "--input-offset values must be finite"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvertError(message)


@dataclass
class Converted:
    """A converted network: run config, state dict (numpy float32), result metrics."""

    config: dict
    state: dict[str, np.ndarray]
    result: dict
    history: list[dict] | None = None
    selected_epoch: int | None = None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_affine(options: ConvertOptions) -> InputAffine | None:
    """The --input-scale/--input-offset transform, None when it is the identity."""
    scale, offset = np.asarray(options.input_scale, float), np.asarray(options.input_offset, float)
    if np.all(scale == 1) and np.all(offset == 0):
        return None
    return InputAffine(scale, offset)


def onnx_scores(path: Path, imported: ImportedNetwork, images: np.ndarray,
                affine: InputAffine | None = None) -> np.ndarray:
    """The ONNX model's outputs (onnxruntime, CPU, one thread) for uint8 images [N, C, H, W]:
    x = byte / 255, fed as scale * x + offset per channel (`affine`), in the model's rank."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = images.astype(np.float64) / 255.0
    if affine is not None:
        c = x.shape[1]
        x = (x * np.broadcast_to(affine.scale, (c,)).reshape(1, c, 1, 1)
             + np.broadcast_to(affine.offset, (c,)).reshape(1, c, 1, 1))
    x = x.astype(np.float32)
    if imported.input_rank == 2:
        x = x.reshape(len(x), -1)
    step = imported.batch or 500            # a model exported with a fixed batch size
    pad = -len(x) % step if imported.batch else 0
    x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], np.float32)])
    out = np.concatenate([session.run(None, {imported.input_name: x[i:i + step]})[0]
                          for i in range(0, len(x), step)])
    return out.reshape(len(x), -1)[:len(x) - pad].astype(np.float64)


class _Forward:
    """The imported network in torch float64 with a chosen activation per hidden layer.

    `run(x, acts, start)` applies the layer specs from index `start` to x (the tensor that
    enters that layer); `acts[name](z)` is hidden layer `name`'s activation (ReLU if absent).
    """

    def __init__(self, imported: ImportedNetwork):
        import torch

        self.torch = torch
        self.specs = imported.layers
        self.tail = imported.tail
        self.w = {k: torch.from_numpy(np.asarray(v, dtype=np.float64))
                  for k, v in imported.arrays.items()}

    def weighted(self, spec: dict, x):
        import torch.nn.functional as F

        w, b = self.w[f"{spec['name']}.weight"], self.w[f"{spec['name']}.bias"]
        if spec["kind"] == "conv2d":
            return F.conv2d(x, w, b, spec["stride"], spec["padding"])
        return F.linear(x, w, b)

    def run(self, x, acts: dict, start: int = 0, stop: int | None = None):
        import torch.nn.functional as F

        for spec in self.specs[start:stop]:
            kind = spec["kind"]
            if kind in ("conv2d", "dense"):
                z = self.weighted(spec, x)
                x = acts[spec["name"]](z) if spec["name"] in acts else F.relu(z)
            elif kind == "maxpool2d":
                x = F.max_pool2d(x, spec["size"])
            elif kind == "flatten":
                x = x.flatten(1)
            else:
                x = self.weighted(spec, x)
        return x

    def scores(self, images: np.ndarray, acts: dict | None = None) -> np.ndarray:
        with self.torch.no_grad():
            return self.run(self._x(images), acts or {}).numpy()

    def outputs(self, images: np.ndarray) -> np.ndarray:
        """What the ONNX graph outputs: the ReLU scores, through its final (Log)Softmax."""
        with self.torch.no_grad():
            z = self.run(self._x(images), {})
            if self.tail == "Softmax":
                z = z.softmax(1)
            elif self.tail == "LogSoftmax":
                z = z.log_softmax(1)
            return z.numpy()

    def _x(self, images: np.ndarray):
        return self.torch.from_numpy(images.astype(np.float64) / 255.0)


def _ttfs(tau: float, scale: float, *, T: int, q: float):
    """z -> f(z / scale) * scale: the TTFS layer with (tau, td = 0) in original units."""
    import torch

    from ttfs.sdk.functional import ttfs_activation

    tau_t, td_t = torch.tensor([tau], dtype=torch.float64), torch.zeros(1, dtype=torch.float64)
    return lambda z: ttfs_activation(z / scale, tau_t, td_t, T=T, q=q) * scale


@dataclass
class LayerCalibration:
    """The calibrated kernel and scale of one hidden layer (`scale` = lambda = 1 / c)."""

    name: str
    tau: float
    percentile: float
    scale: float
    score_mse: float
    mean: np.ndarray = field(repr=False, default=None)
    var: np.ndarray = field(repr=False, default=None)

    def summary(self) -> dict:
        return {"name": self.name, "tau": self.tau, "td": 0.0, "percentile": self.percentile,
                "scale": self.scale, "score_mse": self.score_mse}


def calibrate(net: _Forward, images: np.ndarray, options: ConvertOptions,
              *, quiet: bool = True) -> list[LayerCalibration]:
    """Choose (percentile, tau) per hidden layer, greedily in network order (module docstring,
    step 2), and record the per-channel mean and variance of the scaled potentials."""
    from tqdm import tqdm

    torch = net.torch
    percentiles = PERCENTILES if options.percentile is None else (options.percentile,)
    taus = (tuple(options.T * f for f in TAU_FRACTIONS) if options.tau is None
            else (options.tau,))
    hidden = [j for j, s in enumerate(net.specs) if s["kind"] in ("conv2d", "dense")]
    result, acts = [], {}
    with torch.no_grad():
        reference = net.run(net._x(images), {})
        x, pos = net._x(images), 0
        for j in tqdm(hidden, desc="calibrating", file=sys.stderr, disable=quiet, leave=False):
            spec = net.specs[j]
            x = net.run(x, acts, pos, j)
            z = net.weighted(spec, x)
            positive = z[z > 0].numpy()
            best = None
            for p in percentiles:
                scale = float(np.percentile(positive, p)) if positive.size else 1.0
                scale = scale if scale > 0 else 1.0
                for tau in taus:
                    act = _ttfs(tau, scale, T=options.T, q=options.q)
                    err = float(((net.run(act(z), acts, j + 1) - reference) ** 2).mean())
                    if best is None or err < best[0]:
                        best = (err, p, tau, scale)
            err, p, tau, scale = best
            acts[spec["name"]] = _ttfs(tau, scale, T=options.T, q=options.q)
            axes = (0, 2, 3) if z.ndim == 4 else (0,)
            scaled = z / scale
            result.append(LayerCalibration(spec["name"], float(tau), float(p), scale, err,
                                           scaled.mean(axes).numpy(),
                                           scaled.var(axes, unbiased=False).numpy()))
            x, pos = acts[spec["name"]](z), j + 1
    return result


def converted_state(imported: ImportedNetwork, calibration: list[LayerCalibration], *,
                    bn_eps: float) -> dict[str, np.ndarray]:
    """Our state dict (float32 numpy) for the calibrated network (module docstring, step 3)."""
    by_name = {c.name: c for c in calibration}
    state, c_prev = {}, 1.0
    for spec in imported.layers:
        name = spec["name"]
        if spec["kind"] not in ("conv2d", "dense", "output"):
            continue
        w, b = imported.arrays[f"{name}.weight"], imported.arrays[f"{name}.bias"]
        if spec["kind"] == "output":
            state[f"{name}.weight"], state[f"{name}.bias"] = w / c_prev, b
            continue
        cal = by_name[name]
        c = 1.0 / cal.scale
        v = np.maximum(cal.var, 2 * bn_eps)
        state |= {f"{name}.weight": w * c / c_prev, f"{name}.bias": b * c,
                  f"{name}.bn.weight": np.sqrt(v), f"{name}.bn.bias": cal.mean,
                  f"{name}.bn.running_mean": cal.mean, f"{name}.bn.running_var": v - bn_eps,
                  f"{name}.tau": np.array([cal.tau]), f"{name}.td": np.zeros(1)}
        c_prev = c
    return {k: np.asarray(v, dtype=np.float32) for k, v in state.items()}


def calibration_images(dataset, n: int, *, seed: int) -> np.ndarray:
    """n images of the training part of the training split (never validation or test)."""
    from ttfs.sdk.data import split_validation

    train_x, _, _, _ = split_validation(dataset.train_images, dataset.train_labels)
    order = np.random.default_rng(seed).permutation(len(train_x))
    return train_x[order[:n]]


def train_config(options: ConvertOptions, layers: list[dict], tau0: float) -> dict:
    """The TrainConfig fields of a converted run (what fine-tuning runs with)."""
    from ttfs.sdk.train import TrainConfig

    method = options.method if options.finetune else "sm"
    cfg = TrainConfig(dataset=options.dataset, arch="onnx", method=method,
                      epochs=max(options.finetune, 1), T=options.T, tau0=tau0, td0=0.0,
                      q=options.q, lambda_bn=options.lambda_bn, tkbn_form=options.tkbn_form,
                      sr_epochs=0, tk_epoch=0, batch_size=options.batch_size, lr=options.lr,
                      seed=options.seed)
    return asdict(cfg) | {"layers": layers}


def convert(path: str | Path, options: ConvertOptions, *, quiet: bool = False) -> Converted:
    """Import, check against onnxruntime, calibrate, evaluate, optionally fine-tune."""
    from ttfs.sdk.data import load_dataset
    from ttfs.sdk.model import build_model, classes
    from ttfs.sdk.train import evaluate, load_state

    options.check()
    path = Path(path)
    dataset = load_dataset(options.dataset, data_dir=options.data_dir)
    affine = input_affine(options)
    if affine is not None and len({len(affine.scale), len(affine.offset), 1,
                                   dataset.input_shape[0]}) > 2:
        raise ConvertError(f"--input-scale/--input-offset need 1 or {dataset.input_shape[0]} "
                           "values (one per input channel)")
    imported = import_onnx(path, input_shape=dataset.input_shape, input_affine=affine)
    net = _Forward(imported)
    log = (lambda *a: None) if quiet else (lambda msg: print(msg, file=sys.stderr))

    # 1. the import against onnxruntime, and the ReLU reference accuracy
    ours = net.outputs(dataset.test_images)
    theirs = onnx_scores(path, imported, dataset.test_images, affine)
    if theirs.shape != ours.shape:
        raise ConvertError(f"{path}: the model's output has {theirs.shape[1]} values per image, "
                           f"the imported network {ours.shape[1]}")
    import_error = float(np.abs(ours - theirs).max())
    import_agreement = float((classes(ours) == classes(theirs)).mean())
    if not imported.affine_inexact and import_error > 1e-3 * max(1.0, np.abs(theirs).max()):
        raise ConvertError(f"{path}: the imported network differs from onnxruntime by "
                           f"{import_error:.3g} (an op's semantics are not what the importer "
                           "assumes; please report this model)")
    if imported.affine_inexact:
        log(f"warning: the input offset is folded into the zero-padded first convolution; "
            f"border pixels differ (class agreement with onnxruntime {import_agreement:.2%})")
    if theirs.shape[1] != dataset.num_classes:
        raise ConvertError(f"{path}: the model has {theirs.shape[1]} outputs, dataset "
                           f"{options.dataset} has {dataset.num_classes} classes")
    relu_accuracy = float((classes(theirs) == dataset.test_labels).mean())

    # 2.-3. calibration and the converted state
    calib = calibration_images(dataset, options.calibration, seed=options.seed)
    calibration = calibrate(net, calib, options, quiet=quiet)
    bn_eps = 1e-5
    state = converted_state(imported, calibration, bn_eps=bn_eps)
    tau0 = float(np.median([c.tau for c in calibration]))
    config = train_config(options, imported.layers, tau0)
    model = build_model({"layers": imported.layers, "input_shape": list(dataset.input_shape),
                         "T": options.T, "q": options.q, "input_coding": "real",
                         "bn_eps": bn_eps})
    load_state(model, state, what="the converted state")
    config |= model.config() | {"device": "cpu"}
    config["convert"] = {
        "source": path.name, "sha256": sha256(path), "producer": imported.producer,
        "opset": imported.opset, "nodes": imported.nodes,
        "input_scale": list(options.input_scale), "input_offset": list(options.input_offset),
        "calibration_images": int(len(calib)), "finetune_epochs": options.finetune,
        "layers": [c.summary() for c in calibration]}
    before = evaluate(model, config | {"method": "sm"}, dataset)
    log(f"converted: float SNN {before['snn_test_accuracy']:.2%} (ReLU {relu_accuracy:.2%}), "
        f"{before['spikes_per_hidden_neuron']:.3f} spikes per hidden neuron")
    result = dict(before) | {"relu_test_accuracy": relu_accuracy,
                             "import_agreement": import_agreement,
                             "import_max_abs_error": import_error,
                             "before_finetune": before}
    if not options.finetune:
        return Converted(config, state, result)

    converted = Converted(config, state, result)
    return finetune(converted, options, dataset, quiet=quiet) if options.finetune else converted


def finetune(converted: Converted, options: ConvertOptions, dataset, *, quiet: bool = False
             ) -> Converted:
    """`options.finetune` epochs of `ttfs.sdk.train.fit` from a converted state (module docstring,
    step 4); the result keeps the ReLU reference and `before_finetune`."""
    import torch

    from ttfs.sdk.train import TrainConfig, evaluate, fit

    options.check()
    config = converted.config | train_config(options, converted.config["layers"],
                                             converted.config["tau0"])
    config["convert"] = config["convert"] | {"finetune_epochs": options.finetune}
    fields = {k: v for k, v in config.items() if k in TrainConfig.__dataclass_fields__}
    torch.manual_seed(options.seed)
    tuned = fit(TrainConfig(**fields), dataset, quiet=quiet, init_state=converted.state)
    after = evaluate(tuned.model, config, dataset)
    seconds = [h["train_seconds"] for h in tuned.history]
    result = after | {k: v for k, v in converted.result.items() if k not in after} | {
        "selected_epoch": tuned.selected_epoch,
        "train_seconds_per_epoch": float(np.median(seconds))}
    state = {k: v.detach().cpu().numpy() for k, v in tuned.model.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    return Converted(config, state, result, tuned.history, tuned.selected_epoch)


def write(converted: Converted, out: str | Path, *, force: bool = False,
          sources: tuple = ()) -> None:
    """Write the run directory `out` atomically (`ttfs.sdk.outdir.replacing`): at every instant it
    is either the old folder or the complete new one."""
    from ttfs.sdk import outdir
    from ttfs.sdk.train import write_run

    with outdir.replacing(out, force=force, sources=sources, what="-o") as tmp:
        write_run(tmp, converted.config, converted.state, converted.result,
                  history=converted.history, selected_epoch=converted.selected_epoch)
        for p in tmp.iterdir():
            p.chmod(0o644)


__all__ = ["ConvertError", "ConvertOptions", "Converted", "OnnxImportError", "convert", "write"]
