// Spiking layer engine: a ttfs_integrator (NumPe PEs, weights in ROM) followed by the fire scan.
// After the end marker of its input, the scan visits slot s = 0..Slots-1 and, for each slot,
// time step t = 0..T-1: lane p (neuron s * NumPe + p) spikes at t if v_mem >= Theta[t] and not
// v_mem >= Theta[t-1] (Theta is non-increasing, so this is the first crossing). The scan is
// pipelined: the integrator reads the membranes of the next group's slot (next_slot_d) into a
// register, and the compare of the next group (s, t) is registered into spike_q while the current
// group's spiking lanes leave one per cycle as events (neuron index, code = t) through the
// arbiter; a group without spikes costs one cycle, filling the pipeline one more. Then the end
// marker follows and the layer rearms. Padded lanes (index >= Neurons) have zero weights and
// bias, and Theta >= 1, so never spike.
`default_nettype none

module ttfs_layer #(
  parameter int NumPe           = 4,
  parameter int Slots           = 3,
  parameter int SlotBits        = 2,
  parameter int LaneBits        = 2,    // max(1, clog2(NumPe))
  parameter int T               = 8,
  parameter int TimeBits        = 3,    // max(1, clog2(T))
  parameter int OutIdxBits      = 4,    // max(1, clog2(Neurons))
  parameter int InCount         = 16,
  parameter int IdxBits         = 4,
  parameter int AddrBits        = 6,
  parameter int CodeBits        = 8,
  parameter bit UseOperandTable = 1'b0,
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = "",
  parameter     ThetaFile       = ""
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  input  wire logic                  evt_valid_i,
  output      logic                  evt_ready_o,
  input  wire logic                  evt_last_i,
  input  wire logic [IdxBits-1:0]    evt_index_i,
  input  wire logic [CodeBits-1:0]   evt_code_i,
  output      logic                  evt_valid_o,
  input  wire logic                  evt_ready_i,
  output      logic                  evt_last_o,
  output      logic [OutIdxBits-1:0] evt_index_o,
  output      logic [TimeBits-1:0]   evt_code_o
);

  logic signed [AccBits-1:0] theta_rom [0:T-1];
  initial begin
    $readmemh(ThetaFile, theta_rom);
  end

  logic                     integrated, group_done, arb_valid, load, release_layer;
  logic [NumPe*AccBits-1:0] v_mem;
  logic [NumPe-1:0]         reached;                 // v_mem >= Theta[next_t_q] (next group)
  logic [NumPe-1:0]         reached_q, reached_d;    // ... of the last loaded group
  logic [NumPe-1:0]         spike_q, spike_d;        // spiking lanes of the current group
  logic                     full_q, full_d;          // spike_q holds group (slot_q, t_q)
  logic [SlotBits-1:0]      slot_q, slot_d, next_slot_q, next_slot_d;
  logic [TimeBits-1:0]      t_q, t_d, next_t_q, next_t_d;
  logic                     more_q, more_d;          // (next_slot_q, next_t_q) is still to load
  logic                     end_q, end_d;
  logic [LaneBits-1:0]      lane;

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
    .release_i   (release_layer),
    .read_slot_i (next_slot_d),
    .v_mem_o     (v_mem)
  );

  for (genvar p = 0; p < NumPe; p++) begin : g_fire
    assign reached[p] = $signed(v_mem[p*AccBits +: AccBits]) >= theta_rom[next_t_q];
  end

  ttfs_event_arbiter #(
    .Lanes    (NumPe),
    .LaneBits (LaneBits)
  ) u_arbiter (
    .clk_i,
    .rst_ni,
    .group_valid_i (full_q),
    .mask_i        (spike_q),
    .group_done_o  (group_done),
    .evt_valid_o   (arb_valid),
    .evt_ready_i,
    .evt_lane_o    (lane)
  );

  assign load          = integrated && more_q && (!full_q || group_done);
  assign evt_valid_o   = arb_valid || end_q;
  assign evt_last_o    = end_q;
  assign evt_index_o   = OutIdxBits'(slot_q) * OutIdxBits'(NumPe) + OutIdxBits'(lane);
  assign evt_code_o    = t_q;
  assign release_layer = end_q && evt_ready_i;

  always_comb begin
    full_d      = full_q && !group_done;
    spike_d     = spike_q;
    reached_d   = reached_q;
    slot_d      = slot_q;
    t_d         = t_q;
    next_slot_d = next_slot_q;
    next_t_d    = next_t_q;
    more_d      = more_q;
    end_d       = end_q || (group_done && !more_q);
    if (load) begin
      full_d    = 1'b1;
      spike_d   = reached & ~reached_q;
      reached_d = reached;
      slot_d    = next_slot_q;
      t_d       = next_t_q;
      next_t_d  = next_t_q + 1'b1;
      if (next_t_q == TimeBits'(T - 1)) begin
        reached_d = '0;
        next_t_d  = '0;
        if (next_slot_q == SlotBits'(Slots - 1)) begin
          next_slot_d = '0;
          more_d      = 1'b0;
        end else begin
          next_slot_d = next_slot_q + 1'b1;
        end
      end
    end
    if (release_layer) begin
      end_d  = 1'b0;
      more_d = 1'b1;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      full_q      <= 1'b0;
      spike_q     <= '0;
      reached_q   <= '0;
      slot_q      <= '0;
      t_q         <= '0;
      next_slot_q <= '0;
      next_t_q    <= '0;
      more_q      <= 1'b1;
      end_q       <= 1'b0;
    end else begin
      full_q      <= full_d;
      spike_q     <= spike_d;
      reached_q   <= reached_d;
      slot_q      <= slot_d;
      t_q         <= t_d;
      next_slot_q <= next_slot_d;
      next_t_q    <= next_t_d;
      more_q      <= more_d;
      end_q       <= end_d;
    end
  end

endmodule

`default_nettype wire
