"""ONNX target: the float surrogate of a run, as a standard-op ONNX graph.

`emit` rebuilds the trained torch model (eval mode) from the run directory and exports an
export-only forward that computes the same function as `ttfs.sdk.functional.ttfs_activation` with
standard ONNX ops (no custom ops, no searchsorted): per spiking layer, in float64,

    theta_k = exp(-(k - td + q) / tau),  k = 0..T-1          (decreasing)
    t       = sum_k [z < theta_k]    (= the first k with z >= theta_k, T when none)
    a       = exp((td - t) / tau) if t < T else 0

(Less, Cast, ReduceSum, Exp, Where; BatchNorm, Conv, Gemm, MaxPool as usual). It writes
`model.onnx` (input `images`: float32 [N, C, H, W] = byte / 255; output `scores` [N, classes])
and `reference.npz` (the torch surrogate's float64 scores and classes on the vectors' inputs).

`verify` runs `model.onnx` under onnxruntime on `vectors.npz`'s inputs / 255 and compares the
classes with the torch reference: it passes when at least 99.9 % agree (a float32 rounding
difference between torch and onnxruntime can move a spike by one step at a threshold tie);
every disagreement is listed. Agreement with the integer golden classes is reported too.

torch is imported lazily (only `emit` needs it); `verify` needs onnx + onnxruntime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ttfs.codegen.targets import (ExportContext, ExportError, Report, reject_options,
                             resolve_build_dir, take_vectors)
from ttfs.sdk import npzip
from ttfs.sdk.vectors import load as load_vectors

MODEL_FILE = "model.onnx"
REFERENCE_FILE = "reference.npz"
OPSET = 17
MIN_AGREEMENT = 0.999


def emit(ctx: ExportContext) -> None:
    """Write model.onnx and reference.npz into ctx.out (needs the run directory)."""
    if ctx.run_dir is None:
        raise ExportError("--target onnx exports the float surrogate and needs a run directory "
                          "(config.json + model.safetensors), not a model.ttfs")
    try:
        import onnx
        import torch
    except ImportError as exc:
        from ttfs.codegen.tools import missing_extra
        raise missing_extra(exc.name, "--target onnx") from None
    from ttfs.sdk.train import load_run

    model, _ = load_run(ctx.run_dir)
    model.eval()
    export_model = _export_forward_class()(model)
    inputs = torch.from_numpy(ctx.vectors.inputs.reshape(-1, *model.input_shape)
                              .astype(np.float32)) / 255.0
    with torch.no_grad():
        scores = model(inputs).double().numpy()
        if not np.array_equal(np.argmax(export_model(inputs).double().numpy(), axis=1),
                              np.argmax(scores, axis=1)):
            raise ExportError("onnx: the export-only forward disagrees with the torch model "
                              "(internal error; please report)")
    path = ctx.out / MODEL_FILE
    with warnings.catch_warnings():
        # the TorchScript exporter is deprecated, but the dynamo one needs onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(export_model, (inputs[:1],), str(path), dynamo=False,
                          input_names=["images"], output_names=["scores"], opset_version=OPSET,
                          dynamic_axes={"images": {0: "batch"}, "scores": {0: "batch"}})
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    npzip.write(ctx.out / REFERENCE_FILE, {
        "scores.npy": npzip.npy_bytes(scores),
        "classes.npy": npzip.npy_bytes(np.argmax(scores, axis=1).astype(np.int32))})


def verify(out: Path, *, progress: bool = True, build_dir: Path | None = None,
           sim: str | None = None, board: str | None = None, vectors: int | None = None,
           synth: bool = True) -> Report:
    """Run model.onnx under onnxruntime on the first `vectors` golden vectors and compare with
    the torch reference classes (see the module docstring). `sim` and `board`
    are refused, `synth` does not apply; nothing is built, `build_dir` only has to lie outside
    the export."""
    reject_options("onnx", sim=sim, board=board)
    out = Path(out)
    resolve_build_dir(out, build_dir)
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        from ttfs.codegen.tools import missing_extra
        raise missing_extra(exc.name, "onnx verification") from None
    for name in (MODEL_FILE, REFERENCE_FILE, "vectors.npz"):
        if not (out / name).is_file():
            raise ExportError(f"{out / name}: missing; export again with --target onnx")
    report = Report(target="onnx", tools={"onnx": onnx.__version__,
                                          "onnxruntime": onnxruntime.__version__})
    with report.timed("onnxruntime"):
        onnx.checker.check_model(onnx.load(str(out / MODEL_FILE)), full_check=True)
        golden = take_vectors(load_vectors(out / "vectors.npz"), vectors)
        n = len(golden)
        with np.load(out / REFERENCE_FILE, allow_pickle=False) as ref:
            torch_classes, torch_scores = ref["classes"][:n], ref["scores"][:n]
        session = onnxruntime.InferenceSession(str(out / MODEL_FILE),
                                               providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape[1:]
        images = golden.inputs.reshape(-1, *shape).astype(np.float32) / np.float32(255.0)
        scores = session.run(["scores"], {"images": images})[0]
    classes = np.argmax(scores, axis=1).astype(np.int32)
    disagree = np.flatnonzero(classes != torch_classes)
    agreement = 1.0 - len(disagree) / n
    golden_agreement = float(np.mean(classes == golden.trace.classes))
    report.data = {"images": n, "agreement": agreement, "golden_agreement": golden_agreement,
                   "max_abs_score_diff": float(np.abs(scores - torch_scores).max())}
    first = None
    if len(disagree):
        i = int(disagree[0])
        first = {"layer": "classes", "sample": i, "neuron": 0, "time": None,
                 "expected": int(torch_classes[i]), "got": int(classes[i])}
    ok = agreement >= MIN_AGREEMENT
    report.add_case("onnxruntime", "pass" if ok else "fail", passed=n - len(disagree),
                    failed=0 if ok else len(disagree), first_divergence=first,
                    message="" if first is None else
                    f"first disagreement at vector {first['sample']}: onnx class "
                    f"{first['got']}, torch class {first['expected']}")
    report.lines.append(f"onnxruntime vs torch surrogate: {n - len(disagree)}/{n} classes agree "
                        f"({100 * agreement:.2f} %, need {100 * MIN_AGREEMENT:.1f} %); max "
                        f"|score difference| {report.data['max_abs_score_diff']:.3g}")
    report.lines.extend(f"  disagreement on vector {i}: onnx class {classes[i]}, torch class "
                        f"{torch_classes[i]}" for i in disagree)
    report.lines.append(f"onnxruntime vs integer golden: {100 * golden_agreement:.2f} % of "
                        "classes agree (informational: quantization moves some spikes)")
    return report


def _export_forward_class():
    """The torch module class of the export-only forward (built lazily: torch is optional)."""
    import torch
    from torch import nn

    def activation(z: torch.Tensor, tau: torch.Tensor, td: torch.Tensor, T: int, q: float
                   ) -> torch.Tensor:
        tau64, td64 = tau.double(), td.double()
        theta = torch.exp(-(torch.arange(T, dtype=torch.float64) - td64 + q) / tau64)
        t = (z.double().unsqueeze(-1) < theta).to(torch.float64).sum(-1)
        value = torch.exp((td64 - t) / tau64)
        return torch.where(t < T, value, torch.zeros_like(value)).to(z.dtype)

    class ExportForward(nn.Module):
        """The eval-mode forward of a `ttfs.sdk.model.TTFSNet` in standard ONNX ops."""

        def __init__(self, model: nn.Module):
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            m = self.model
            return m.propagate(x, lambda kernel, z: activation(z, kernel.tau, kernel.td, m.T,
                                                               m.q))

    return ExportForward

