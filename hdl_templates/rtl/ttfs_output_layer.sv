// Output layer engine: a ttfs_integrator (NumPe PEs, dense) whose membranes are the scores. After
// the end marker of its input it reads slot s = 0..Slots-1 (one cycle each) into the score registers,
// then scans the scores j = 0..Neurons-1 (one compare per cycle) for the argmax (strictly greater
// replaces, so the lowest index wins ties), then offers the result as one AXI4-Stream beat with
// tlast: 32-bit word 0 = class, word j + 1 = score j sign-extended. done_o pulses when it is taken.
`default_nettype none

module ttfs_output_layer #(
  parameter int Neurons         = 5,
  parameter int NumPe           = 5,
  parameter int Slots           = 1,
  parameter int SlotBits        = 1,    // max(1, clog2(Slots))
  parameter int ClassBits       = 3,    // max(1, clog2(Neurons))
  parameter int InCount         = 8,
  parameter int IdxBits         = 3,
  parameter int CodeBits        = 3,
  parameter bit UseOperandTable = 1'b1,
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = "",
  parameter int Ways            = 1,    // events per input handshake (1 or 2)
  parameter int DspPe           = 1 << 20,  // lanes from DspPe on multiply in logic
  parameter     MemStyle        = "auto"    // ram_style of the membranes (ttfs_pe)
) (
  input  wire logic                       clk_i,
  input  wire logic                       rst_ni,
  input  wire logic                       clear_i,
  input  wire logic                       evt_valid_i,
  output      logic                       evt_ready_o,
  input  wire logic                       evt_last_i,
  input  wire logic [Ways-1:0]            evt_ways_i,
  input  wire logic [Ways*IdxBits-1:0]    evt_index_i,
  input  wire logic [Ways*CodeBits-1:0]   evt_code_i,
  output      logic [(Neurons+1)*32-1:0]  m_axis_tdata,   // {score[N-1], .., score[0], class}
  output      logic                       m_axis_tvalid,
  input  wire logic                       m_axis_tready,
  output      logic                       m_axis_tlast,
  output      logic                       done_o
);

  logic                      integrated, reading, valid_q, valid_d, scan_q, scan_d;
  logic [NumPe*AccBits-1:0]  v_mem;
  logic [SlotBits-1:0]       slot_q, slot_d;
  logic [ClassBits-1:0]      index_q, index_d;     // score compared by the scan
  logic signed [AccBits-1:0] score, best_q, best_d;
  logic [ClassBits-1:0]      class_q, class_d;
  logic [Neurons*AccBits-1:0] scores;

  ttfs_integrator #(
    .NumPe           (NumPe),
    .Groups          (Slots),
    .Positions       (1),
    .SlotBits        (SlotBits),
    .GroupBits       (SlotBits),
    .Conv            (1'b0),
    .InCount         (InCount),
    .IdxBits         (IdxBits),
    .CodeBits        (CodeBits),
    .UseOperandTable (UseOperandTable),
    .OperandEntries  (OperandEntries),
    .OperandBits     (OperandBits),
    .WeightBits      (WeightBits),
    .AccBits         (AccBits),
    .OperandFile     (OperandFile),
    .WeightFile      (WeightFile),
    .BiasFile        (BiasFile),
    .Ways            (Ways),
    .DspPe           (DspPe),
    .MemStyle        (MemStyle)
  ) u_integrator (
    .clk_i,
    .rst_ni,
    .clear_i,
    .evt_valid_i,
    .evt_ready_o,
    .evt_last_i,
    .evt_ways_i,
    .evt_index_i,
    .evt_code_i,
    .done_o       (integrated),
    .release_i    (done_o),
    .read_slot_i  (slot_d),   // v_mem holds slot_q's membranes in the next cycle
    .read_group_i (slot_d),
    .v_mem_o      (v_mem)
  );

  assign reading     = integrated && !scan_q && !valid_q;
  assign done_o        = valid_q && m_axis_tready;
  assign m_axis_tvalid = valid_q;
  assign m_axis_tlast  = 1'b1;
  assign m_axis_tdata[31:0] = 32'(class_q);
  assign score         = scores[index_q*AccBits +: AccBits];   // index_q < Neurons

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
    assign scores[j*AccBits +: AccBits]       = score_q;
    assign m_axis_tdata[(j+1)*32 +: 32]       = 32'(score_q);   // sign-extends (signed)
  end

  always_comb begin
    best_d  = best_q;
    class_d = class_q;
    slot_d  = slot_q;
    scan_d  = scan_q;
    index_d = index_q;
    valid_d = valid_q && !done_o;
    if (reading) begin
      if (slot_q == SlotBits'(Slots - 1)) begin
        slot_d = '0;
        scan_d = 1'b1;
      end else begin
        slot_d = slot_q + 1'b1;
      end
    end
    if (scan_q) begin
      if ((index_q == '0) || (score > best_q)) begin
        best_d  = score;
        class_d = index_q;
      end
      if (index_q == ClassBits'(Neurons - 1)) begin
        index_d = '0;
        scan_d  = 1'b0;
        valid_d = 1'b1;
      end else begin
        index_d = index_q + 1'b1;
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      slot_q  <= '0;
      scan_q  <= 1'b0;
      index_q <= '0;
      valid_q <= 1'b0;
      best_q  <= '0;
      class_q <= '0;
    end else if (clear_i) begin
      slot_q  <= '0;
      scan_q  <= 1'b0;
      index_q <= '0;
      valid_q <= 1'b0;
    end else begin
      slot_q  <= slot_d;
      scan_q  <= scan_d;
      index_q <= index_d;
      valid_q <= valid_d;
      best_q  <= best_d;
      class_q <= class_d;
    end
  end

endmodule

`default_nettype wire
