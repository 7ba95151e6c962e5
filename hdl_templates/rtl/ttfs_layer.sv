// Spiking layer engine: a ttfs_integrator (NumPe PEs, weights in ROM) followed by the fire scan.
// After the end marker of its input, the scan visits slot s = 0..Slots-1 and, for each slot,
// time step t = 0..T-1: lane p (neuron s * NumPe + p) spikes at t if v_mem >= Theta[t] and it
// has not spiked at an earlier step (Theta is non-increasing, so this is the first crossing).
// The spiking lanes of a (s, t) group leave one per cycle as events (neuron index, code = t);
// a group without spikes costs one cycle. Then the end marker follows and the layer rearms.
// Padded lanes (index >= Neurons) have zero weights and bias, and Theta >= 1, so never spike.
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

  logic                     integrated, group_done, arb_valid, fire_active;
  logic [NumPe*AccBits-1:0] v_mem;
  logic [NumPe-1:0]         spike, fired_q, fired_d;
  logic [SlotBits-1:0]      slot_q, slot_d;
  logic [TimeBits-1:0]      t_q, t_d;
  logic                     end_q, end_d, release_layer;
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
    .read_slot_i (slot_q),
    .v_mem_o     (v_mem)
  );

  for (genvar p = 0; p < NumPe; p++) begin : g_fire
    assign spike[p] = ($signed(v_mem[p*AccBits +: AccBits]) >= theta_rom[t_q]) && !fired_q[p];
  end

  assign fire_active = integrated && !end_q;

  ttfs_event_arbiter #(
    .Lanes    (NumPe),
    .LaneBits (LaneBits)
  ) u_arbiter (
    .clk_i,
    .rst_ni,
    .group_valid_i (fire_active),
    .mask_i        (spike),
    .group_done_o  (group_done),
    .evt_valid_o   (arb_valid),
    .evt_ready_i,
    .evt_lane_o    (lane)
  );

  assign evt_valid_o   = arb_valid || end_q;
  assign evt_last_o    = end_q;
  assign evt_index_o   = OutIdxBits'(slot_q) * OutIdxBits'(NumPe) + OutIdxBits'(lane);
  assign evt_code_o    = t_q;
  assign release_layer = end_q && evt_ready_i;

  always_comb begin
    slot_d  = slot_q;
    t_d     = t_q;
    fired_d = fired_q;
    end_d   = end_q;
    if (group_done) begin
      if (t_q == TimeBits'(T - 1)) begin
        t_d     = '0;
        fired_d = '0;
        if (slot_q == SlotBits'(Slots - 1)) begin
          slot_d = '0;
          end_d  = 1'b1;
        end else begin
          slot_d = slot_q + 1'b1;
        end
      end else begin
        t_d     = t_q + 1'b1;
        fired_d = fired_q | spike;
      end
    end
    if (release_layer) begin
      end_d = 1'b0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      slot_q  <= '0;
      t_q     <= '0;
      fired_q <= '0;
      end_q   <= 1'b0;
    end else begin
      slot_q  <= slot_d;
      t_q     <= t_d;
      fired_q <= fired_d;
      end_q   <= end_d;
    end
  end

endmodule

`default_nettype wire
