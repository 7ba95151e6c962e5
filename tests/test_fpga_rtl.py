"""Per-module cocotb benches of the hand-written RTL (`tests/hdl/<module>_tb.py`) on Icarus.

Each bench drives one module of `hdl_templates/rtl/` alone against a Python model of its
contract (the module's header comment); the whole generated design is checked in
tests/test_fpga.py.
"""

from __future__ import annotations

from importlib import resources

import pytest

from tests.conftest import need_tool

# module[-variant] -> (parameters, extra modules it instantiates)
BENCHES = {
    "ttfs_event_arbiter": ({"Lanes": 5, "LaneBits": 3, "Ways": 1}, ()),
    "ttfs_event_arbiter-2": ({"Lanes": 6, "LaneBits": 3, "Ways": 2}, ()),
    "ttfs_pe": ({"Slots": 3, "SlotBits": 2, "WeightBits": 6, "OperandBits": 8, "AccBits": 20,
                 "Ways": 1}, ()),
    "ttfs_pe-2": ({"Slots": 4, "SlotBits": 2, "WeightBits": 8, "OperandBits": 8, "AccBits": 22,
                   "Ways": 2}, ()),
    "ttfs_pe-3": ({"Slots": 2, "SlotBits": 1, "WeightBits": 8, "OperandBits": 7, "AccBits": 18,
                   "Ways": 2, "LutMul": 1}, ()),
    "ttfs_scan": ({"Lanes": 3, "Groups": 2, "Positions": 3, "SlotBits": 3, "GroupBits": 1,
                   "CodeBits": 3, "OutIdxBits": 5}, ("ttfs_event_arbiter",)),
    "ttfs_scan-2": ({"Lanes": 5, "Groups": 2, "Positions": 2, "SlotBits": 2, "GroupBits": 1,
                     "CodeBits": 3, "OutIdxBits": 5, "Ways": 2, "MaskReg": 1},
                    ("ttfs_event_arbiter",)),
    "ttfs_event_arbiter-3": ({"Lanes": 37, "LaneBits": 6, "Ways": 2}, ()),
    "ttfs_event_arbiter-4": ({"Lanes": 40, "LaneBits": 6, "Ways": 2, "PreEnc": 1}, ()),
    "ttfs_event_arbiter-5": ({"Lanes": 7, "LaneBits": 3, "Ways": 1, "PreEnc": 1}, ()),
    "ttfs_event_arbiter-6": ({"Lanes": 1, "LaneBits": 1, "Ways": 2, "PreEnc": 1}, ()),
    "ttfs_pool": ({"Lanes": 2, "Groups": 2, "Positions": 4, "SlotBits": 3, "GroupBits": 1,
                   "InHeight": 5, "InWidth": 4, "Size": 2, "OutHeight": 2, "OutWidth": 2,
                   "TimeBits": 3, "IdxBits": 7, "OutIdxBits": 4},
                  ("ttfs_scan", "ttfs_event_arbiter")),
    "ttfs_pool-2": ({"Lanes": 3, "Groups": 2, "Positions": 4, "SlotBits": 3, "GroupBits": 1,
                     "InHeight": 4, "InWidth": 5, "Size": 2, "OutHeight": 2, "OutWidth": 2,
                     "TimeBits": 3, "IdxBits": 7, "OutIdxBits": 5, "Ways": 2, "OutWays": 2},
                    ("ttfs_scan", "ttfs_event_arbiter")),
    "ttfs_input": ({"Lanes": 3, "Pixels": 8, "IdxBits": 3, "MinByte": 1},
                   ("ttfs_event_arbiter",)),
    "ttfs_pnr_io": ({"Lanes": 3, "LaneBits": 2, "ScoreBits": 8}, ()),
}


@pytest.mark.parametrize("module", sorted(BENCHES))
def test_module_bench(tmp_path, module):
    need_tool("iverilog")
    from cocotb_tools.runner import get_runner

    params, deps = BENCHES[module]
    module = module.split("-")[0]      # "<module>-<variant>": another parameter set
    rtl = resources.files("ttfs.hdl_templates").joinpath("rtl")
    sources = [rtl.joinpath(f"{m}.sv") for m in (module, *deps)]
    runner = get_runner("icarus")
    runner.build(sources=sources, hdl_toplevel=module, build_dir=tmp_path, parameters=params,
                 timescale=("1ns", "1ps"), log_file=tmp_path / "build.log")
    runner.test(test_module=f"tests.hdl.{module}_tb", hdl_toplevel=module, build_dir=tmp_path,
                test_dir=tmp_path, log_file=tmp_path / "test.log")
