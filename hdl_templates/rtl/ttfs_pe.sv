// Spike-time processing element: holds the membrane potentials v_mem of the Slots neurons it
// owns. Two pipeline stages: the product weight * operand is registered every cycle, and
// acc_en_i adds the registered product into the membrane of acc_slot_i. A slot that has not been
// accumulated since the layer was released (started = 0) reads as its bias, so an inference
// starts without an initialisation pass and an all-silent input leaves v_mem = bias.
// v_mem_o is the membrane of read_slot_i (a second read port, for the fire/readout logic).
`default_nettype none

module ttfs_pe #(
  parameter int Slots       = 4,
  parameter int SlotBits    = 2,   // max(1, clog2(Slots))
  parameter int WeightBits  = 8,
  parameter int OperandBits = 8,
  parameter int AccBits     = 24
) (
  input  wire logic                          clk_i,
  input  wire logic [SlotBits-1:0]           acc_slot_i,
  input  wire logic                          acc_started_i,
  input  wire logic signed [AccBits-1:0]     acc_bias_i,
  input  wire logic [SlotBits-1:0]           read_slot_i,
  input  wire logic                          read_started_i,
  input  wire logic signed [AccBits-1:0]     read_bias_i,
  input  wire logic signed [WeightBits-1:0]  weight_i,
  input  wire logic [OperandBits-1:0]        operand_i,
  input  wire logic                          acc_en_i,
  output      logic signed [AccBits-1:0]     v_mem_o
);

  // Wide enough for the full product; the accumulator bound M guarantees that the product and
  // every partial sum fit in AccBits, so the truncation below loses nothing.
  localparam int MulBits     = (AccBits > WeightBits + OperandBits + 1) ? AccBits
                                                                            : WeightBits + OperandBits + 1;

  logic signed [AccBits-1:0] v_mem_q [0:Slots-1];
  logic signed [MulBits-1:0] weight_ext, operand_ext, product;
  logic signed [AccBits-1:0] product_q, v_mem_acc;

  assign weight_ext  = {{(MulBits - WeightBits){weight_i[WeightBits-1]}}, weight_i};
  assign operand_ext = {{(MulBits - OperandBits){1'b0}}, operand_i};
  assign product     = weight_ext * operand_ext;
  assign v_mem_acc   = acc_started_i ? v_mem_q[acc_slot_i] : acc_bias_i;
  assign v_mem_o     = read_started_i ? v_mem_q[read_slot_i] : read_bias_i;

  always_ff @(posedge clk_i) begin
    product_q <= product[AccBits-1:0];
    if (acc_en_i) begin
      v_mem_q[acc_slot_i] <= v_mem_acc + product_q;
    end
  end

endmodule

`default_nettype wire
