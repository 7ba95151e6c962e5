// Output layer engine: a ttfs_integrator (NumPe PEs) whose membranes are the scores. After the
// end marker of its input it reads slot s = 0..Slots-1 (one cycle each) into the score registers
// and keeps the running argmax (strictly greater replaces, so the lowest index wins ties), then
// offers class and scores on a valid/ready output. done_o pulses when the result is taken.
`default_nettype none

module ttfs_output_layer #(
  parameter int Neurons         = 5,
  parameter int NumPe           = 5,
  parameter int Slots           = 1,
  parameter int SlotBits        = 1,
  parameter int ClassBits       = 3,    // max(1, clog2(Neurons))
  parameter int InCount         = 8,
  parameter int IdxBits         = 3,
  parameter int AddrBits        = 3,
  parameter int CodeBits        = 3,
  parameter bit UseOperandTable = 1'b1,
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = ""
) (
  input  wire logic                       clk_i,
  input  wire logic                       rst_ni,
  input  wire logic                       evt_valid_i,
  output      logic                       evt_ready_o,
  input  wire logic                       evt_last_i,
  input  wire logic [IdxBits-1:0]         evt_index_i,
  input  wire logic [CodeBits-1:0]        evt_code_i,
  output      logic                       out_valid_o,
  input  wire logic                       out_ready_i,
  output      logic [ClassBits-1:0]       class_o,
  output      logic [Neurons*AccBits-1:0] scores_o,
  output      logic                       done_o
);

  // Neuron indices up to Slots * NumPe - 1 < 2 * Neurons.
  localparam int IndexBits = ClassBits + 1;

  logic                      integrated, reading, valid_q, valid_d;
  logic [IndexBits-1:0]      index;
  int                        p;      // lane loop
  logic [NumPe*AccBits-1:0]  v_mem;
  logic [SlotBits-1:0]       slot_q, slot_d;
  logic signed [AccBits-1:0] best_q, best_d;
  logic [ClassBits-1:0]      class_q, class_d;

  ttfs_integrator #(
    .NumPe           (NumPe),
    .Slots           (Slots),
    .SlotBits        (SlotBits),
    .InCount         (InCount),
    .IdxBits         (IdxBits),
    .AddrBits        (AddrBits),
    .CodeBits        (CodeBits),
    .UseOperandTable (UseOperandTable),
    .OperandEntries  (OperandEntries),
    .OperandBits     (OperandBits),
    .WeightBits      (WeightBits),
    .AccBits         (AccBits),
    .OperandFile     (OperandFile),
    .WeightFile      (WeightFile),
    .BiasFile        (BiasFile)
  ) u_integrator (
    .clk_i,
    .rst_ni,
    .evt_valid_i,
    .evt_ready_o,
    .evt_last_i,
    .evt_index_i,
    .evt_code_i,
    .done_o      (integrated),
    .release_i   (done_o),
    .read_slot_i (slot_q),
    .v_mem_o     (v_mem)
  );

  assign reading     = integrated && !valid_q;
  assign done_o      = valid_q && out_ready_i;
  assign out_valid_o = valid_q;
  assign class_o     = class_q;

  // Neuron j = slot * NumPe + lane is stored when its slot is read.
  for (genvar j = 0; j < Neurons; j++) begin : g_score
    logic signed [AccBits-1:0] score_q;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        score_q <= '0;
      end else if (reading && (slot_q == SlotBits'(j / NumPe))) begin
        score_q <= v_mem[(j % NumPe)*AccBits +: AccBits];
      end
    end
    assign scores_o[j*AccBits +: AccBits] = score_q;
  end

  always_comb begin
    best_d  = best_q;
    class_d = class_q;
    slot_d  = slot_q;
    valid_d = valid_q;
    index   = '0;
    p       = 0;
    if (reading) begin
      for (p = 0; p < NumPe; p++) begin
        index = IndexBits'(slot_q) * IndexBits'(NumPe) + IndexBits'(p);
        if ((index < IndexBits'(Neurons))
            && ((slot_q == '0 && p == 0) || $signed(v_mem[p*AccBits +: AccBits]) > best_d)) begin
          best_d  = v_mem[p*AccBits +: AccBits];
          class_d = ClassBits'(index);
        end
      end
      if (slot_q == SlotBits'(Slots - 1)) begin
        slot_d  = '0;
        valid_d = 1'b1;
      end else begin
        slot_d = slot_q + 1'b1;
      end
    end
    if (done_o) begin
      valid_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      slot_q  <= '0;
      valid_q <= 1'b0;
      best_q  <= '0;
      class_q <= '0;
    end else begin
      slot_q  <= slot_d;
      valid_q <= valid_d;
      best_q  <= best_d;
      class_q <= class_d;
    end
  end

endmodule

`default_nettype wire
