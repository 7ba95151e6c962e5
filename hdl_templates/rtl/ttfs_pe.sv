// Spike-time processing element: the membrane potentials of the Slots neurons it owns, in a
// memory with one synchronous read port and one write port (maps to block RAM). Pipeline of one
// tap, cycle by cycle (c = the cycle its weight_i/operand_i are presented):
//   c + 1: weight and operand registered here (the operand, shared by all lanes, gets its own
//          copy per PE: the broadcast is a flip-flop-to-flip-flop route, not a multiplier input);
//   c + 2: one product register per way (signed weight x unsigned operand; an absent way has
//          operand 0), so a multiplier sits between two registers: `*` (a DSP block where the
//          synthesis maps it) or, with LutMul, a shift-and-add tree in carry chains:
//          product = sum over operand bits i of (operand[i] ? weight << i : 0), summed pairwise
//          (log2 levels of adders; the kept nodes stop Yosys from merging the tree into one
//          LUT-only multiplier, which costs twice the logic);
//   c + 3: the sum of the ways registered (psum), and the accumulate: psum is added to
//          base = the sum written in the previous cycle if that was the same slot (forwarding:
//               the memory has not returned it yet), else the memory word if the slot was
//               accumulated since the layer's release, else the bias,
//          and the sum is written back. The tap's slot, enable, started bit and bias are
//          presented on tap_*_i in cycle c + 2 (with rd_slot_i naming its slot for the memory
//          read) and registered here, so the accumulate's selects are local flip-flops.
// An inference therefore starts without a clearing pass. Outside integration rd_slot_i serves
// the fire scan / readout: mem_o is the slot's memory word one cycle after rd_slot_i named it
// (the integrator applies its started bit and bias).
`default_nettype none

module ttfs_pe #(
  parameter int Slots       = 4,
  parameter int SlotBits    = 2,   // max(1, clog2(Slots))
  parameter int WeightBits  = 8,
  parameter int OperandBits = 8,
  parameter int AccBits     = 24,
  parameter int Ways        = 1,   // products summed per cycle (events integrated together)
  parameter bit LutMul      = 1'b0, // multipliers as adder trees in logic (see above)
  /* verilator lint_off UNUSEDPARAM */  // read by synthesis only (the ram_style attribute)
  parameter     MemStyle    = "auto" // ram_style of the membranes: "block", "distributed", "auto"
  /* verilator lint_on UNUSEDPARAM */
) (
  input  wire logic                          clk_i,
  input  wire logic [SlotBits-1:0]           rd_slot_i,
  input  wire logic                          tap_en_i,      // cycle c + 2 of the tap
  input  wire logic [SlotBits-1:0]           tap_slot_i,
  input  wire logic                          tap_started_i,
  input  wire logic signed [AccBits-1:0]     tap_bias_i,
  input  wire logic [Ways*WeightBits-1:0]    weight_i,      // cycle c: way k at [k*WeightBits +:]
  input  wire logic [Ways*OperandBits-1:0]   operand_i,     // way k at [k*OperandBits +:]
  output      logic signed [AccBits-1:0]     mem_o
);

  // Signed weight x unsigned operand fits ProdBits; the accumulator bound M guarantees that the
  // sum of the ways and every partial sum fit in AccBits, so the truncation loses nothing.
  localparam int ProdBits = WeightBits + OperandBits + 1;
  localparam int SumBits  = (AccBits > ProdBits + 1) ? AccBits : ProdBits + 1;

  (* ram_style = MemStyle *) logic signed [AccBits-1:0] v_mem_q [0:Slots-1];
  logic [Ways*WeightBits-1:0]   weight_q;
  logic [Ways*OperandBits-1:0]  operand_q;
  logic [Ways*ProdBits-1:0]     prod_q;
  logic signed [SumBits-1:0]    psum;
  logic signed [AccBits-1:0]    psum_q, mem_q, bias_q, base, sum, last_sum_q;
  logic                         en_q, fwd_q, use_mem_q;
  logic [SlotBits-1:0]          slot_q;
  logic                         fwd;   // the next tap's slot is the one accumulated now

  assign fwd = en_q && (slot_q == tap_slot_i);

  logic [Ways*ProdBits-1:0] prod;
  for (genvar k = 0; k < Ways; k++) begin : g_way
    logic signed [ProdBits-1:0] w;
    assign w = ProdBits'($signed(weight_q[k*WeightBits +: WeightBits]));
    if (LutMul) begin : g_tree
      // node n of a binary tree over Leaves (a power of two) operand bits: leaves n >= Leaves
      localparam int Leaves = 1 << $clog2(OperandBits);
      for (genvar n = 1; n < 2 * Leaves; n++) begin : g_node
        (* keep *) logic signed [ProdBits-1:0] s;
        if (n >= Leaves + OperandBits) begin : g_zero
          assign s = '0;
        end else if (n >= Leaves) begin : g_leaf
          assign s = operand_q[k*OperandBits + n - Leaves] ? w <<< (n - Leaves) : '0;
        end else begin : g_add
          assign s = g_node[2*n].s + g_node[2*n + 1].s;
        end
      end
      assign prod[k*ProdBits +: ProdBits] = g_node[1].s;
    end else begin : g_mul
      assign prod[k*ProdBits +: ProdBits] =
          w * ProdBits'($signed({1'b0, operand_q[k*OperandBits +: OperandBits]}));
    end
  end

  // This PE's copies of what all lanes share (the operand; the tap's enable, slot and selects):
  // kept, so that synthesis does not merge them back into one flip-flop of a large fanout.
  (* keep *) always_ff @(posedge clk_i) begin
    operand_q <= operand_i;
    en_q      <= tap_en_i;
    slot_q    <= tap_slot_i;
    fwd_q     <= fwd;
    use_mem_q <= !fwd && tap_started_i;
  end

  always_ff @(posedge clk_i) begin
    weight_q <= weight_i;
    prod_q   <= prod;
  end

  always_comb begin
    psum = '0;
    for (int k = 0; k < Ways; k++) begin
      psum = psum + SumBits'($signed(prod_q[k*ProdBits +: ProdBits]));
    end
  end

  // Accumulate stage: base chosen by flip-flops set one cycle ahead. fwd: the tap now in the
  // accumulate stage writes the slot of the next tap (its sum comes back through last_sum_q).
  always_comb begin
    if (fwd_q) begin
      base = last_sum_q;
    end else if (use_mem_q) begin
      base = mem_q;
    end else begin
      base = bias_q;
    end
    sum = base + psum_q;
  end
  assign mem_o = mem_q;

  always_ff @(posedge clk_i) begin
    psum_q     <= AccBits'(psum);
    bias_q     <= tap_bias_i;
    mem_q      <= v_mem_q[rd_slot_i];
    last_sum_q <= sum;
    if (en_q) begin
      v_mem_q[slot_q] <= sum;
    end
  end

endmodule

`default_nettype wire
