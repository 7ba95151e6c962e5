"""View-model of the MCU target: every number, type and name the C templates substitute.

The templates in `firmware/templates/` only loop over and print what is computed here: the
`static const` arrays of each layer in the runtime's layout (conv2d weights output channels
innermost) and the smallest C type that holds them, the layer table handed to the runtime
`ttfs_run` (`firmware/runtime/ttfs.h`), the scratch buffers and their types, the trace layout,
the golden vectors that fit on the board, and the memory budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ttfs.codegen.targets import ExportError
from ttfs.sdk.ir import SPIKING, WEIGHTED, Conv2d, MaxPool2d, Network, Output
from ttfs.sdk.vectors import Vectors

#: sizeof on a 32-bit target (and on a 64-bit host the tables only grow, never the budget).
SIZEOF = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "uint8_t": 1, "uint16_t": 2, "uint32_t": 4}
LAYER_BYTES = 60         # struct ttfs_layer on a 32-bit target
#: Flash of the runtime, main.c, startup and libc's memset/memcpy (measured about 3 KiB on M0).
CODE_RESERVE = 6 * 1024
#: Multiplier of the per-layer trace checksum (Knuth's multiplicative hash constant).
CHECKSUM_MUL = 2654435761


@dataclass(frozen=True)
class Board:
    """A board QEMU emulates, and how the example firmware is built for it.

    Cortex-M boards: FLASH at 0x0, RAM at 0x20000000, `board_arm.c`, newlib-nano's memcpy and
    memset. RISC-V boards: QEMU's `sifive_e` (flash at 0x20400000, 16 KiB RAM at 0x80000000),
    `board_riscv.c`, picolibc's memcpy and memset.
    """

    name: str
    cpu: str           # what the table in the docs says: cortex-m0, rv32imc, ...
    flash: int
    ram: int
    stack: int
    ldscript: str
    arch: str          # "arm" | "riscv"
    arch_flags: str    # compiler flags that select the instruction set and ABI
    machine: str       # QEMU -M

    @property
    def cross(self) -> str:
        return "arm-none-eabi-" if self.arch == "arm" else "riscv64-unknown-elf-"

    @property
    def qemu(self) -> str:
        return "qemu-system-arm" if self.arch == "arm" else "qemu-system-riscv32"

    @property
    def libc(self) -> str:
        return "--specs=nano.specs" if self.arch == "arm" else "--specs=picolibc.specs"

    @property
    def startup(self) -> str:
        return f"board_{self.arch}.c"


def _arm(name: str, cpu: str, flash: int, ram: int, stack: int, ldscript: str) -> Board:
    return Board(name, cpu, flash, ram, stack, ldscript, "arm",
                 f"-mcpu={cpu} -mthumb -mfloat-abi=soft", name)


KIB, MIB = 1024, 2**20
BOARDS = {
    "microbit": _arm("microbit", "cortex-m0", 256 * KIB, 16 * KIB, 2 * KIB, "microbit.ld"),
    "mps2-an385": _arm("mps2-an385", "cortex-m3", 4 * MIB, 4 * MIB, 16 * KIB, "mps2.ld"),
    "mps2-an386": _arm("mps2-an386", "cortex-m4", 4 * MIB, 4 * MIB, 16 * KIB, "mps2.ld"),
    "mps2-an500": _arm("mps2-an500", "cortex-m7", 4 * MIB, 4 * MIB, 16 * KIB, "mps2.ld"),
    "sifive_e": Board("sifive_e", "rv32imc", 4 * MIB, 16 * KIB, 2 * KIB, "sifive_e.ld",
                      "riscv", "-march=rv32imc -mabi=ilp32", "sifive_e"),
    "sifive_e-rv32ec": Board("sifive_e-rv32ec", "rv32ec", 16 * KIB, 16 * KIB, 1 * KIB,
                             "sifive_e_rv32ec.ld", "riscv", "-march=rv32ec -mabi=ilp32e",
                             "sifive_e"),
}
#: Boards tried in this order when none is asked for: the smallest that holds the model.
BOARD_PREFERENCE = ("microbit", "mps2-an385")
#: Golden vectors compiled into the example firmware at most (all of them run on the host).
MAX_TARGET_VECTORS = 100


@dataclass(frozen=True)
class CArray:
    """One `static const` array: symbol, C element type, values (flat), and a comment."""

    symbol: str
    ctype: str
    values: np.ndarray
    comment: str

    @property
    def size(self) -> int:
        return int(self.values.size)

    @property
    def nbytes(self) -> int:
        return self.size * SIZEOF[self.ctype]

    @property
    def suffix(self) -> str:
        return "U" if self.ctype.startswith("u") else ""


@dataclass(frozen=True)
class LayerView:
    """A layer's arrays and its `struct ttfs_layer` initializer (field name -> C expression)."""

    name: str
    kind: str
    arrays: tuple[CArray, ...]
    fields: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Memory:
    """Bytes of constant data and of RAM the model needs, as the generator computes them."""

    weights: int
    tables: int       # biases, thresholds, kernels, input coding tables
    structs: int      # layer table and network descriptor
    scratch: int      # accumulators, spike times
    trace: int        # the optional trace buffer of <name>_infer_trace

    @property
    def const(self) -> int:
        return self.weights + self.tables + self.structs


def weights_per_word(bits: int) -> int:
    """Weight fields in one 32-bit word of a packed row: F = floor(32 / bits)."""
    return 32 // bits


def pack_rows(rows: np.ndarray, bits: int) -> np.ndarray:
    """Pack signed weights [n_rows, n] (|w| < 2^(bits-1)) into uint32 words [n_rows, ceil(n/F)].

    Field f of word k of a row holds weight k*F + f at bits [f*bits, f*bits + bits) in offset
    binary, u = w + 2^(bits-1), so the runtime decodes w = (word >> (f*bits) & (2^bits - 1)) -
    2^(bits-1) with unsigned shifts only (`ttfs_weight_value` in ttfs.h). Unused fields of a
    row's last word are 0.
    """
    rows = np.asarray(rows, dtype=np.int64)
    n_rows, n = rows.shape
    half = 1 << (bits - 1)
    if rows.size and (rows.min() < -half or rows.max() >= half):
        raise ExportError(f"weights out of the {bits}-bit range: {rows.min()}..{rows.max()}")
    per = weights_per_word(bits)
    words = -(-n // per)
    fields = np.zeros((n_rows, words * per), dtype=np.uint64)
    fields[:, :n] = rows + half
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))
    packed = (fields.reshape(n_rows, words, per) << shifts).sum(axis=2, dtype=np.uint64)
    return packed.astype(np.uint32)


def _shape3(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of a layer shape; a flat vector of n is (n, 1, 1)."""
    return tuple(shape) if len(shape) == 3 else (int(shape[0]), 1, 1)


def trace_layout(net: Network) -> list[tuple[str, int]]:
    """(name, neurons) of every block of a trace, in order: the input layer under `ttfs`
    coding, then each spiking layer and max pool (the layers of `ttfs.sdk.golden.Trace`)."""
    layout = [("input", net.n_inputs)] if net.input_coding == "ttfs" else []
    layout += [(layer.name, math.prod(info.out_shape)) for layer, info in zip(net.layers, net.info)
               if isinstance(layer, (*SPIKING, MaxPool2d))]
    return layout


def checksums(trace_blocks: list[np.ndarray]) -> np.ndarray:
    """Per sample and trace block: sum_i t_i * (CHECKSUM_MUL * (i + 1)) mod 2^32 (uint32 [N, B]).

    The same sum as `checksum()` in the example's main.c: any single changed spike time changes
    it, so the board can check every spike time with four bytes of flash per layer and sample.
    """
    sums = []
    for times in trace_blocks:
        n = times.shape[1]
        mul = (CHECKSUM_MUL * np.arange(1, n + 1, dtype=np.uint64)) % 2**32
        sums.append((times.astype(np.uint64) * mul).sum(axis=1, dtype=np.uint64) % 2**32)
    return np.stack(sums, axis=1).astype(np.uint32) if sums else np.zeros((0, 0), np.uint32)


def conv_rows(layer: Conv2d, h_out: int) -> int:
    """Output rows of a conv2d layer the runtime keeps open at once (its accumulator ring):
    the rows whose receptive field covers one input row, min(ceil(k / stride), h_out)."""
    return min(-(-int(layer.weight.shape[2]) // layer.stride), h_out)


def _runtime_weight(layer, bits: int) -> tuple[np.ndarray, str]:
    """The weights in the runtime's layout, packed (`pack_rows`), and its description: one row
    of fan-out per input event -- dense and output: W.T, a row of n_out weights per input;
    conv2d: [k][k][c_in] rows of c_out weights."""
    if isinstance(layer, Conv2d):
        c_out, c_in, k, _ = layer.weight.shape
        rows = layer.weight.transpose(2, 3, 1, 0).reshape(k * k * c_in, c_out)
        what = f"[{k}][{k}][{c_in}] rows of {c_out}"
    else:
        rows = layer.weight.T
        what = f"[{rows.shape[0]}] rows of {rows.shape[1]}"
    packed = pack_rows(rows, bits)
    return packed.reshape(-1), (f"{what} {bits}-bit weights, {weights_per_word(bits)} per word "
                                f"({packed.shape[1]} words per row)")


def _layer_view(model: str, layer, info, bits: int) -> LayerView:
    c_in, h_in, w_in = _shape3(info.in_shape)
    c_out, h_out, w_out = _shape3(info.out_shape)
    prefix = f"{model}_{layer.name}"
    pointers = {"weight": None, "bias": None, "theta": None, "kernel": None}
    if isinstance(layer, WEIGHTED):
        weight, layout = _runtime_weight(layer, bits)
        pointers["weight"] = CArray(f"{prefix}_weight", "uint32_t", weight,
                                    f"{layer.name}: weight, {layout}")
        pointers["bias"] = CArray(f"{prefix}_bias", "int32_t", layer.bias, f"{layer.name}: bias")
    if isinstance(layer, SPIKING):
        pointers["theta"] = CArray(f"{prefix}_theta", "int32_t", layer.theta,
                                   f"{layer.name}: threshold per time step (non-increasing)")
        pointers["kernel"] = CArray(f"{prefix}_kernel", "uint16_t", layer.kernel,
                                    f"{layer.name}: operand of a spike per time step")
    k, stride, padding, rows = 0, 0, 0, 0
    if isinstance(layer, Conv2d):
        k, stride, padding = int(layer.weight.shape[2]), layer.stride, layer.padding
        rows = conv_rows(layer, h_out)
    elif isinstance(layer, MaxPool2d):
        k = layer.size
    fields = [("kind", "TTFS_" + layer.kind.upper())]
    fields += [(key, "NULL" if arr is None else arr.symbol) for key, arr in pointers.items()]
    fields += [(key, f"{value}U") for key, value in (
        ("c_in", c_in), ("h_in", h_in), ("w_in", w_in), ("c_out", c_out), ("h_out", h_out),
        ("w_out", w_out), ("k", k), ("stride", stride), ("padding", padding), ("rows", rows))]
    arrays = tuple(arr for arr in pointers.values() if arr is not None)
    return LayerView(layer.name, layer.kind, arrays, tuple(fields))


def _time_buffers(net: Network) -> tuple[int, int]:
    """Sizes of net->times[0] and [1]: the n-th block that produces spike times writes
    buffer n % 2 (the alternation of `ttfs_run`)."""
    sizes = [0, 0]
    for i, (_, n) in enumerate(trace_layout(net)):
        sizes[i % 2] = max(sizes[i % 2], n)
    return sizes[0], sizes[1]


def scratch_plan(net: Network) -> dict:
    """The static scratch buffers of `ttfs_run`, sized for the largest layer that uses each:

    - `acc` (int32): a dense layer's n_out, or a conv2d layer's ring of open output rows
      (rows x w_out x c_out) and their operand sums (rows x w_out); the output layer
      accumulates into the caller's `scores`;
    - `times0`, `times1` (`ttfs_time_t`): the spike-time ping-pong of `_time_buffers`.

    Weighted layers read their input in place (no event list). Spike times are `uint8_t` when
    T <= 255, else `uint16_t`.
    """
    acc = [1]
    for layer, info in zip(net.layers, net.info):
        if isinstance(layer, Conv2d):
            c_out, h_out, w_out = info.out_shape
            acc.append(conv_rows(layer, h_out) * w_out * (c_out + 1))
        elif isinstance(layer, WEIGHTED) and not isinstance(layer, Output):
            acc.append(math.prod(info.out_shape))
    time_type = "uint8_t" if net.T <= 255 else "uint16_t"
    times = tuple(max(n, 1) for n in _time_buffers(net))
    return {"acc_len": max(acc), "times_len": times, "time_type": time_type,
            "bytes": 4 * max(acc) + SIZEOF[time_type] * sum(times)}


def vector_bytes(net: Network) -> int:
    """Flash of one golden vector in `<name>_vectors.h` (a `struct <name>_vector`: input bytes
    and the uint16_t class padded to 4 bytes, then 32-bit scores, input spikes, spike counts,
    SOPs and checksums)."""
    spiking, blocks = max(1, len(net.spiking_layers)), max(1, len(trace_layout(net)))
    return (-(-(net.n_inputs + 2) // 4) * 4 + 4 * net.n_outputs + 4 * (2 + spiking)
            + 4 * blocks)


def choose_board(net: Network, memory: Memory, board: str | None, n_vectors: int
                 ) -> tuple[Board, int]:
    """The board (asked for, or the smallest that holds the model) and how many golden vectors
    its flash holds (at most MAX_TARGET_VECTORS and n_vectors, at least 1)."""
    names = (board,) if board else BOARD_PREFERENCE
    if board is not None and board not in BOARDS:
        raise ExportError(f"board {board!r} is not supported; choose one of {sorted(BOARDS)}")
    reasons = []
    for name in names:
        b = BOARDS[name]
        ram = memory.scratch + memory.trace + b.stack
        flash_left = b.flash - memory.const - CODE_RESERVE
        fits = min(n_vectors, MAX_TARGET_VECTORS, max(flash_left, 0) // vector_bytes(net))
        if ram <= b.ram and fits >= min(1, n_vectors):
            return b, fits
        reasons.append(f"{name} has {b.flash // 1024} KiB flash and {b.ram // 1024} KiB RAM, "
                       f"the model needs {(memory.const + CODE_RESERVE) // 1024 + 1} KiB flash "
                       f"(with one test vector) and {ram // 1024 + 1} KiB RAM")
    raise ExportError("model too large for the MCU target: " + "; ".join(reasons))


def build(net: Network, vectors: Vectors, name: str, *, board: str | None = None) -> dict:
    """The view-model of all MCU templates for `net` emitted as `name` (a checked identifier)."""
    if len(net.spiking_layers) > 255:
        raise ExportError(f"{len(net.spiking_layers)} spiking layers; the runtime counts at most "
                        "255 (TTFS_MAX_LAYERS)")
    layers = [_layer_view(name, layer, info, net.weight_bits)
              for layer, info in zip(net.layers, net.info)]
    inputs = []
    if net.input_coding == "ttfs":
        inputs = [CArray(f"{name}_input_times", "uint16_t", net.input_times,
                         "input layer: spike time of each pixel byte (T = no spike)"),
                  CArray(f"{name}_input_kernel", "uint16_t", net.input_kernel,
                         "input layer: operand of an input spike per time step")]
    plan = scratch_plan(net)
    times0, times1 = plan["times_len"]
    layout = trace_layout(net)
    trace_len = sum(n for _, n in layout)
    all_arrays = [a for lv in layers for a in lv.arrays] + inputs
    memory = Memory(
        weights=sum(a.nbytes for a in all_arrays if a.symbol.endswith("_weight")),
        tables=sum(a.nbytes for a in all_arrays if not a.symbol.endswith("_weight")),
        structs=LAYER_BYTES * len(layers) + 48,
        scratch=plan["bytes"],
        trace=2 * trace_len,
    )
    chosen, n_target = choose_board(net, memory, board, len(vectors))
    trace = _ordered_trace(net, vectors)
    n_spiking = len(net.spiking_layers)
    return {
        "name": name,
        "NAME": name.upper(),
        "hash": net.content_hash,
        "checksum_mul": CHECKSUM_MUL,
        "T": net.T,
        "weights_per_word": weights_per_word(net.weight_bits),
        "uses": {kind: any(layer.kind == kind for layer in net.layers)
                 for kind in ("conv2d", "maxpool2d")},
        "time_type": plan["time_type"],
        "weight_bits": net.weight_bits,
        "kernel_bits": net.kernel_bits,
        "input_coding": net.input_coding,
        "input_shape": "x".join(map(str, net.input_shape)),
        "n_in": net.n_inputs,
        "n_out": net.n_outputs,
        "n_spiking": n_spiking,
        "spiking_names": [layer.name for layer in net.spiking_layers],
        "layers": layers,
        "summary": _summary(net),
        "input_arrays": inputs,
        "acc_len": plan["acc_len"],
        "times_len": (times0, times1),
        "trace": layout,
        "trace_len": trace_len,
        "memory": memory,
        "board": chosen,
        "boards": list(BOARDS.values()),
        "vectors": _vector_view(net, vectors, trace, n_target),
    }


def _ordered_trace(net: Network, vectors: Vectors) -> list[np.ndarray]:
    """The golden spike times as [N, neurons] blocks in trace order."""
    by_name = dict(zip(vectors.trace.layer_names, vectors.trace.times))
    n = len(vectors)
    blocks = []
    for name, size in trace_layout(net):
        times = vectors.trace.input_times if name == "input" else by_name[name]
        blocks.append(np.asarray(times).reshape(n, size))
    return blocks


def _vector_view(net: Network, vectors: Vectors, trace: list[np.ndarray], count: int) -> dict:
    trace_n = [block[:count] for block in trace]
    t = vectors.trace
    one = max(1, len(net.spiking_layers))
    return {
        "count": count,
        "total": len(vectors),
        "inputs": vectors.inputs[:count].reshape(count, -1),
        "classes": t.classes[:count],
        "scores": t.scores[:count],
        "input_spikes": t.input_spikes[:count],
        "spikes": (t.spike_counts[:count] if len(net.spiking_layers)
                   else np.zeros((count, one), np.int32)),
        "sops": t.sops[:count],
        "checksums": (checksums(trace_n) if trace_n else np.zeros((count, 1), np.uint32)),
        "trace_names": [name for name, _ in trace_layout(net)] or ["none"],
        "trace_sizes": [size for _, size in trace_layout(net)] or [0],
    }


def _summary(net: Network) -> list[str]:
    """One line per layer: name, kind, shapes (for the generated files' comments and README)."""
    lines = [f"input {'x'.join(map(str, net.input_shape))} ({net.input_coding} coding)"]
    for layer, info in zip(net.layers, net.info):
        detail = ""
        if isinstance(layer, Conv2d):
            k = layer.weight.shape[2]
            detail = f" {k}x{k} stride {layer.stride} padding {layer.padding}"
        elif isinstance(layer, MaxPool2d):
            detail = f" {layer.size}x{layer.size}"
        out = "x".join(map(str, info.out_shape))
        lines.append(f"{layer.name}: {layer.kind}{detail} -> {out}")
    return lines
