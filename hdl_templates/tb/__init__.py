"""Hand-written cocotb testbench and runner, copied into every FPGA export (OUT/tb/)."""
