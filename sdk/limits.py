"""Limits and naming rules every loader checks before it allocates (DESIGN.md section 4).

One place for the rules that a run directory (`ttfs.sdk.floatnet`), a `model.ttfs`
(`ttfs.sdk.ir`), the
quantizer and `ttfs-train` (through `ttfs.sdk.floatnet.check_layer_specs`) all apply:

- names: C and Verilog identifiers of at most 64 characters that are no reserved word of C,
  Verilog or Python (compared case-insensitively), do not start with the runtime's prefix
  `ttfs_` in any case, nor with `__` or `_` + capital letter (reserved in C);
- input codings: `real`, `ttfs`;
- sizes: `T`, the input, every layer's neurons, the outputs, the weights, and the peak working
  memory of a simulation (`SIM_BUDGET_BYTES`, 1 GiB) estimated from the shapes alone;
- kernel parameters: tau >= `MIN_TAU`, and every exponent the quantizer evaluates within
  +-`MAX_EXP_ARG`, so that no table, scale or reference value is infinite or zero.

The functions return a problem description (or None) so each module raises its own
ValueError subclass (TTFSFormatError, NetworkError, QuantizeError) with the file and field.
"""

from __future__ import annotations

import json
import keyword
import math
import re
from collections.abc import Iterable

INPUT_CODINGS = ("real", "ttfs")
MAX_NAME = 64
MAX_T = 4096
MAX_LAYERS = 256
#: Bytes of one input image (C*H*W): 3x512x512 fits.
MAX_INPUTS = 2**20
#: Spike-time neurons (or accumulators) of one layer.
MAX_NEURONS = 2**22
MAX_OUTPUTS = 2**16
#: Weights of the whole network (int32 on disk: 128 MiB).
MAX_WEIGHTS = 2**25
#: Channels and kernel size of a convolution, window of a max pool.
MAX_CHANNELS = 2**14
MAX_KERNEL = 64
MAX_STRIDE = 16
#: Peak working memory of one simulation (golden or float) besides the returned trace.
SIM_BUDGET_BYTES = 2**30
#: Samples simulated at once when the budget allows it.
CHUNK = 128
MIN_TAU = 1e-3
#: |x| of every exp(x) on the quantization path: exp(+-700) is finite and nonzero in float64.
MAX_EXP_ARG = 700.0

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: Reserved words of C, (System)Verilog and Python; names are compared in lower case.
RESERVED = frozenset(word.lower() for word in keyword.kwlist) | frozenset(
    """auto break case char const continue default do double else enum extern float for goto
    if inline int long register restrict return short signed sizeof static struct switch typedef
    union unsigned void volatile while bool true false null main always always_comb always_ff
    always_latch assign begin end endmodule function endfunction input output inout logic
    module parameter localparam reg wire integer generate endgenerate genvar initial posedge
    negedge task endtask bit byte real time case endcase default""".split()
)
RESERVED_PREFIX = "ttfs_"


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a model or layer name, or None when it can (see module doc)."""
    if not isinstance(name, str) or not _IDENT.match(name) or len(name) > MAX_NAME:
        return (f"{show(name)} is not an identifier (letters, digits, '_'; not starting "
                f"with a digit; at most {MAX_NAME} characters)")
    low = name.lower()
    if low in RESERVED:
        return f"{name!r} is a reserved word of C, Verilog or Python (in any case)"
    if low.startswith(RESERVED_PREFIX):
        return f"{name!r} starts with the reserved prefix '{RESERVED_PREFIX}' (in any case)"
    if name.startswith("__") or re.match(r"_[A-Z]", name):
        return f"{name!r} starts with '__' or '_' and a capital letter (reserved in C)"
    return None


def coding_problem(coding: object) -> str | None:
    """Why `coding` is not an input coding, or None."""
    if coding in INPUT_CODINGS and isinstance(coding, str):
        return None
    return f"expected one of {', '.join(INPUT_CODINGS)}, got {show(coding)}"


def int_problem(value: object, lo: int, hi: int) -> str | None:
    """Why `value` is not a Python int (bool excluded) in lo..hi, or None."""
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return None
    return f"expected an int in {lo}..{hi}, got {show(value)}"


def float_problem(value: object, lo: float, hi: float) -> str | None:
    """Why `value` is not a finite real number (int or float, bool excluded) in [lo, hi]."""
    if (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and lo <= value <= hi):
        return None
    return f"expected a finite number in [{lo:g}, {hi:g}], got {show(value)}"


def kernel_problem(tau: object, td: object, *, T: int, q: float) -> str | None:
    """Why (tau, td) cannot give finite, nonzero tables and scales, or None.

    The quantizer evaluates exp(-t/tau), exp(td/tau) and exp(-(t - td + q)/tau) for
    t = 0..T-1; every exponent must lie within +-MAX_EXP_ARG (else a scale or x_max would be
    Infinity or 0 and the integer model degenerate).
    """
    for what, value in (("tau", tau), ("td", td)):
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value)):
            return f"{what} = {show(value)} is not a finite number"
    if tau < MIN_TAU:
        return f"tau = {tau!r} is below the minimum {MIN_TAU} (degenerate kernel)"
    worst = max(abs(td / tau), abs((T - 1) / tau), abs((0 - td + q) / tau),
                abs((T - 1 - td + q) / tau))
    if worst > MAX_EXP_ARG:
        return (f"tau = {tau!r}, td = {td!r} need exp of {worst:.4g}, beyond +-{MAX_EXP_ARG:g} "
                "(the tables and scales would be Infinity or 0)")
    return None


def shape_problem(shape: object, ndim: int | None = None) -> str | None:
    """Why `shape` is not a list/tuple of positive ints (of length `ndim`), or None."""
    if (not isinstance(shape, (list, tuple)) or not shape or (ndim and len(shape) != ndim)
            or any(int_problem(d, 1, MAX_INPUTS) for d in shape)):
        return (f"expected {ndim or 'some'} positive ints (each <= {MAX_INPUTS}), "
                f"got {show(shape)}")
    return None


def working_set(steps: Iterable[tuple[str, tuple[int, ...], tuple[int, ...], int]]
                ) -> tuple[int, int, int]:
    """(bytes per sample, fixed bytes, trace bytes per sample) of a simulation.

    `steps` is one (kind, in_shape, out_shape, kernel_size) per layer. Per sample: the largest
    transient of one layer (conv: the im2col patches, int64 plus a float64 copy, plus operands
    and potentials; others: operands and potentials, 3 x 8 bytes each) plus the spike times
    kept for the trace (4 bytes per neuron). Fixed: every weight as int64 and float64.
    """
    per_sample = fixed = trace = 0
    for kind, in_shape, out_shape, k in steps:
        n_in, n_out = math.prod(in_shape), math.prod(out_shape)
        transient = 24 * (n_in + n_out)
        if kind == "conv2d":
            transient += 16 * math.prod(out_shape[1:]) * in_shape[0] * k * k
        if kind in ("conv2d", "dense", "output"):
            fixed += 16 * (out_shape[0] * (in_shape[0] * k * k if kind == "conv2d" else n_in))
        if kind in ("conv2d", "dense", "maxpool2d"):
            trace += 4 * n_out
        per_sample = max(per_sample, transient)
    return per_sample + trace, fixed, trace


def size_problem(n_inputs: int, steps: list[tuple[str, tuple[int, ...], tuple[int, ...], int]]
                 ) -> str | None:
    """Why a network of these shapes exceeds a limit (see the module doc), or None."""
    if n_inputs > MAX_INPUTS:
        return f"the input has {n_inputs} values, more than the limit {MAX_INPUTS}"
    if len(steps) > MAX_LAYERS:
        return f"{len(steps)} layers, more than the limit {MAX_LAYERS}"
    weights = 0
    for kind, in_shape, out_shape, k in steps:
        if math.prod(out_shape) > MAX_NEURONS:
            return (f"{kind} layer gives {math.prod(out_shape)} neurons {list(out_shape)}, more "
                    f"than the limit {MAX_NEURONS}")
        if kind in ("conv2d", "dense", "output"):
            weights += out_shape[0] * (in_shape[0] * k * k if kind == "conv2d"
                                       else math.prod(in_shape))
    if steps and math.prod(steps[-1][2]) > MAX_OUTPUTS:
        return f"{math.prod(steps[-1][2])} outputs, more than the limit {MAX_OUTPUTS}"
    if weights > MAX_WEIGHTS:
        return f"{weights} weights, more than the limit {MAX_WEIGHTS}"
    per_sample, fixed, _ = working_set(steps)
    if fixed + per_sample > SIM_BUDGET_BYTES:
        return (f"simulating one sample needs about {(fixed + per_sample) / 2**20:.0f} MiB, more "
                f"than the budget {SIM_BUDGET_BYTES // 2**20} MiB")
    return None


def chunk_size(steps: list[tuple[str, tuple[int, ...], tuple[int, ...], int]]) -> int:
    """Samples per simulation chunk: CHUNK, or fewer so the chunk stays within the budget."""
    per_sample, fixed, _ = working_set(steps)
    return int(max(1, min(CHUNK, (SIM_BUDGET_BYTES - fixed) // max(per_sample, 1))))


def show(value: object) -> str:
    """repr(value), cut to 60 characters (a 5,000-digit integer stays one readable line)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def clip(text: str, n: int = 160) -> str:
    """`text` on one line, cut to n characters (for messages quoting a library's error)."""
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


def strict_json(text: str) -> object:
    """json.loads that refuses the non-standard NaN, Infinity and -Infinity literals
    (ValueError, like every other JSON error; integers over 4,300 digits are refused by
    Python itself)."""
    def refuse(name: str) -> float:
        raise ValueError(f"{name} is not allowed")

    return json.loads(text, parse_constant=refuse)
