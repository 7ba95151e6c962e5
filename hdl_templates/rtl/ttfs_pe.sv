// Spike-time processing element: the membrane potentials of the Slots neurons it owns, in a
// memory with one synchronous read port and one write port (maps to block RAM). Pipeline, per
// accumulated tap: the integrator presents the tap's slot on rd_slot_i one cycle before the
// product (sum over the Ways events of weight * operand, registered here; an absent way has
// operand 0) arrives; then acc_en_i adds the product to
//   base = the sum written in the previous cycle if that was the same slot (forwarding: the
//          memory has not returned it yet), else the memory word if the slot was accumulated
//          since the layer's release (acc_started_i), else the bias (acc_bias_i),
// and writes the sum back. An inference therefore starts without a clearing pass. Outside
// integration rd_slot_i serves the fire scan / readout: mem_o is the slot's memory word one cycle
// after rd_slot_i named it (the integrator applies its started bit and bias).
`default_nettype none

module ttfs_pe #(
  parameter int Slots       = 4,
  parameter int SlotBits    = 2,   // max(1, clog2(Slots))
  parameter int WeightBits  = 8,
  parameter int OperandBits = 8,
  parameter int AccBits     = 24,
  parameter int Ways        = 1    // products summed per cycle (events integrated together)
) (
  input  wire logic                          clk_i,
  input  wire logic [SlotBits-1:0]           rd_slot_i,
  input  wire logic                          acc_en_i,
  input  wire logic [SlotBits-1:0]           acc_slot_i,
  input  wire logic                          acc_started_i,
  input  wire logic signed [AccBits-1:0]     acc_bias_i,
  input  wire logic [Ways*WeightBits-1:0]    weight_i,    // way k at [k*WeightBits +:], signed
  input  wire logic [Ways*OperandBits-1:0]   operand_i,   // way k at [k*OperandBits +:]
  output      logic signed [AccBits-1:0]     mem_o
);

  // Wide enough for the full product; the accumulator bound M guarantees that the product and
  // every partial sum fit in AccBits, so the truncation below loses nothing.
  localparam int MulBits = (AccBits > WeightBits + OperandBits + 1) ? AccBits
                                                                     : WeightBits + OperandBits + 1;

  logic signed [AccBits-1:0] v_mem_q [0:Slots-1];
  logic signed [MulBits-1:0] product;
  logic signed [AccBits-1:0] product_q, mem_q, base, sum, last_sum_q;
  logic [SlotBits-1:0]       last_slot_q;
  logic                      last_en_q;

  always_comb begin
    logic signed [MulBits-1:0] weight_ext, operand_ext;
    product = '0;
    for (int k = 0; k < Ways; k++) begin
      weight_ext  = MulBits'($signed(weight_i[k*WeightBits +: WeightBits]));
      operand_ext = MulBits'({1'b0, operand_i[k*OperandBits +: OperandBits]});
      product     = product + weight_ext * operand_ext;
    end
  end
  assign mem_o = mem_q;

  always_comb begin
    if (last_en_q && (last_slot_q == acc_slot_i)) begin
      base = last_sum_q;
    end else if (acc_started_i) begin
      base = mem_q;
    end else begin
      base = acc_bias_i;
    end
    sum = base + product_q;
  end

  always_ff @(posedge clk_i) begin
    product_q   <= product[AccBits-1:0];
    mem_q       <= v_mem_q[rd_slot_i];
    last_sum_q  <= sum;
    last_slot_q <= acc_slot_i;
    last_en_q   <= acc_en_i;
    if (acc_en_i) begin
      v_mem_q[acc_slot_i] <= sum;
    end
  end

endmodule

`default_nettype wire
