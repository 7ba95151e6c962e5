"""Helpers shared by the per-module cocotb benches: clock/reset and sampling conventions.

Handshakes are sampled at the falling edge (everything has settled for the next rising edge);
inputs are driven just after the rising edge.
"""

from __future__ import annotations

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles


async def start(dut, *, reset: bool = True, **inputs) -> None:
    """Start a 10 ns clock on clk_i, drive `inputs`, and pulse rst_ni low for 3 cycles (wait
    3 cycles when the module has no reset)."""
    cocotb.start_soon(Clock(dut.clk_i, 10, unit="ns").start())
    for name, value in inputs.items():
        getattr(dut, name).value = value
    if reset:
        dut.rst_ni.value = 0
    await ClockCycles(dut.clk_i, 3)
    if reset:
        dut.rst_ni.value = 1
