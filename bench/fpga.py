"""FPGA target benchmark: the mnist5k MLP (784-256-10) as event-driven Verilog.

For NumPe in a sweep: cycles per inference (the exporter's cycle model, exact against the cocotb
bench in tests/test_fpga.py) on the mnist5k test images, the cycles of a dense (not event-driven)
schedule of the same engines, accuracy of the integer model, and (with --synth) Yosys resources
and nextpnr fmax. Uses the trained run runs/ablation/mlp-sr-tr-tkbn (run `ttfs-train` first;
there is no random-weight fallback yet).

    .venv/bin/python bench/fpga.py [--pe 1 8 32 256] [--images 500] [--synth]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from codegen.targets import ExportContext, fpga
from sdk import golden, vectors

RUN = Path("runs/ablation/mlp-sr-tr-tkbn")


def load_model():
    from sdk.data import load_dataset
    from sdk.floatnet import load_float_network
    from sdk.quantize import quantize

    data = load_dataset("mnist5k")
    net = quantize(load_float_network(RUN), name="mnist5k_mlp")
    return net, data.test_images, data.test_labels, f"trained run {RUN}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pe", type=int, nargs="+", default=[1, 8, 32, 256])
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--lanes", type=int, default=8)
    ap.add_argument("--synth", action="store_true")
    args = ap.parse_args()
    net, images, labels, source = load_model()
    trace = golden.run(net, images)
    acc = float(np.mean(trace.classes == labels))
    vec = vectors.make(net, images[:args.images])
    print(f"model: {source}; integer golden accuracy {acc * 100:.2f} % on {len(labels)} test "
          f"images; cycles over the first {len(vec)}; lanes = {args.lanes}")
    print("| NumPe | cycles mean | cycles max | dense cycles | gain | LUT | FF | RAM | fmax MHz "
          "| latency us |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for pe in args.pe:
        p = fpga.plan(net, "mnist5k_mlp", {"num_pe": pe, "lanes": args.lanes})
        cycles = fpga.predict_cycles(p, vec)
        dense = fpga.dense_cycles(p)
        lut = ff = ram = fmax = "-"
        if args.synth:
            with tempfile.TemporaryDirectory() as tmp:
                fpga.emit(ExportContext(net=net, vectors=vec, out=Path(tmp), name="mnist5k_mlp",
                                        options={"num_pe": pe, "lanes": args.lanes}))
                rep = fpga.synthesize(Path(tmp), timeout=1800)
                gen = rep["generic"]          # the 784x256 ROM does not fit an UP5K
                lut, ff, ram = gen["lut"], gen["ff"], f"{gen['rom_bits']} ROM bits"
                fmax = rep.get("fmax_mhz", "no fit")
        latency = (f"{cycles.mean() / fmax:.2f}" if isinstance(fmax, float) else "-")
        print(f"| {pe} | {cycles.mean():.1f} | {cycles.max()} | {dense} | "
              f"{dense / cycles.mean():.2f}x | {lut} | {ff} | {ram} | {fmax} | {latency} |",
              flush=True)


if __name__ == "__main__":
    main()
