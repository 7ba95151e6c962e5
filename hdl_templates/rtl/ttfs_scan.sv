// Output scan of a layer: once start_i is high (the layer's data is complete), visits the slots
// s = g * Positions + pos (g = 0..Groups-1, pos = 0..Positions-1) in order, one per cycle at
// best. It names the slot to read one cycle ahead (read_slot_o, read_group_o); mask_i/code_i
// carry, for every lane, whether the neuron of the slot read in the previous cycle emits an
// event and its code (when avail_i; a slow producer holds avail_i low until they are). A loaded
// slot's events leave through ttfs_event_arbiter (registered lanes; Ways events per handshake:
// the lowest and the highest lane left) with index (g * Lanes + lane) * Positions + pos; a slot
// without events costs one cycle. After the last slot the end marker is sent; its handshake
// pulses release_o and rearms the scan.
// MaskReg = 0: mask_i goes straight into the arbiter's encoder when the slot is loaded (for
// producers whose mask comes from flip-flops, e.g. serial fire); the first slot's events leave
// the cycle after it was loaded. MaskReg = 1: the loaded slot is registered first (for
// producers whose mask is combinational, e.g. parallel fire compares) and enters the arbiter
// one cycle later; while the arbiter works on a slot the next one waits in that register.
// ReadReg = 1: read_slot_o/read_group_o come from flip-flops (the slot to load next), not from
// this cycle's load decision, so the consumer's ready does not reach the producer's membrane
// read address (a net to every lane) in the same cycle; a producer then sees the next slot's
// membranes two cycles after load_o (serial fire, which waits T + 1 cycles per slot anyway).
// Cost with a consumer that takes a handshake every C cycles:
// (1 + MaskReg) (fill) + sum over slots of max(1, ceil(events / Ways) * C).
`default_nettype none

module ttfs_scan #(
  parameter int Lanes      = 4,
  parameter int Groups     = 2,
  parameter int Positions  = 1,
  parameter int SlotBits   = 1,   // port width: max(1, clog2(Groups * Positions))
  parameter int GroupBits  = 1,   // port width: max(1, clog2(Groups))
  parameter int CodeBits   = 3,
  parameter int OutIdxBits = 4,
  parameter int Ways       = 1,   // events per handshake (1 or 2)
  parameter bit MaskReg    = 1'b0, // register the loaded slot before the arbiter
  parameter bit ReadReg    = 1'b0, // read_slot_o from flip-flops (see above)
  parameter bit PreEnc     = 1'b0  // the arbiter takes a slot from registers of mask_i: the
                                   // producer holds mask_i a cycle before avail_i (no MaskReg)
) (
  input  wire logic                      clk_i,
  input  wire logic                      rst_ni,
  input  wire logic                      clear_i,
  input  wire logic                      start_i,
  input  wire logic                      avail_i,   // mask_i/code_i are valid (else wait)
  output      logic                      more_o,    // slots remain to be loaded
  output      logic                      load_o,    // the slot on mask_i/code_i is taken
  output      logic [SlotBits-1:0]       read_slot_o,
  output      logic [GroupBits-1:0]      read_group_o,
  input  wire logic [Lanes-1:0]          mask_i,
  input  wire logic [Lanes*CodeBits-1:0] code_i,
  output      logic                      evt_valid_o,
  input  wire logic                      evt_ready_i,
  output      logic                      evt_last_o,
  output      logic [Ways-1:0]           evt_ways_o,
  output      logic [Ways*OutIdxBits-1:0] evt_index_o,
  output      logic [Ways*CodeBits-1:0]  evt_code_o,
  output      logic                      release_o
);

  localparam int LaneBits = (Lanes > 1) ? $clog2(Lanes) : 1;
  localparam int PosBits  = (Positions > 1) ? $clog2(Positions) : 1;
  localparam int Slots    = Groups * Positions;
  localparam int IdxWide  = $clog2(Groups * Lanes * Positions + 1) + 1;   // index arithmetic

  logic                      load, take, group_done, arb_valid, offer_valid;
  logic                      more_q, more_d, end_q, end_d;
  logic [Lanes-1:0]          offer_mask;
  logic [Lanes*CodeBits-1:0] offer_code, code_q;
  logic [OutIdxBits-1:0]     slot_base, offer_base, base_q;   // index of lane 0 of a slot
  logic [SlotBits-1:0]       next_slot_q, next_slot_d;
  logic [GroupBits-1:0]      next_g_q, next_g_d;
  logic [PosBits-1:0]        next_pos_q, next_pos_d;
  logic [Ways*LaneBits-1:0]  lane;
  logic                      arb_free, arb_busy, held;   // held: a loaded slot waits (MaskReg)

  assign slot_base = OutIdxBits'(IdxWide'(next_g_q) * IdxWide'(Lanes * Positions)
                                 + IdxWide'(next_pos_q));

  if (MaskReg) begin : g_reg
    logic                      full_q;
    logic [Lanes-1:0]          mask_q;
    logic [Lanes*CodeBits-1:0] code_a_q;
    logic [OutIdxBits-1:0]     base_a_q;
    assign load        = start_i && avail_i && more_q && (!full_q || take);
    assign offer_valid = full_q;
    assign offer_mask  = mask_q;
    assign offer_code  = code_a_q;
    assign offer_base  = base_a_q;
    assign held        = full_q;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        full_q <= 1'b0;
      end else if (clear_i) begin
        full_q <= 1'b0;
      end else if (load) begin
        full_q <= 1'b1;
      end else if (take) begin
        full_q <= 1'b0;
      end
    end
    always_ff @(posedge clk_i) begin
      if (load) begin
        mask_q   <= mask_i;
        code_a_q <= code_i;
        base_a_q <= slot_base;
      end
    end
  end else begin : g_direct
    assign load        = take;
    assign offer_valid = start_i && avail_i && more_q;
    assign offer_mask  = mask_i;
    assign offer_code  = code_i;
    assign offer_base  = slot_base;
    assign held        = 1'b0;
  end

  ttfs_event_arbiter #(
    .Lanes    (Lanes),
    .LaneBits (LaneBits),
    .Ways     (Ways),
    .PreEnc   (PreEnc)
  ) u_arbiter (
    .clk_i,
    .rst_ni,
    .clear_i,
    .group_valid_i (offer_valid),
    .mask_i        (offer_mask),
    .group_take_o  (take),
    .free_o        (arb_free),
    .busy_o        (arb_busy),
    .group_done_o  (group_done),
    .evt_valid_o   (arb_valid),
    .evt_ready_i,
    .evt_ways_o,
    .evt_lane_o    (lane)
  );

  assign more_o       = more_q;
  assign load_o       = load;
  assign evt_valid_o  = arb_valid || end_q;
  assign evt_last_o   = end_q;
  for (genvar k = 0; k < Ways; k++) begin : g_way
    logic [LaneBits-1:0] l;
    assign l = lane[k*LaneBits +: LaneBits];
    assign evt_index_o[k*OutIdxBits +: OutIdxBits] =
        base_q + OutIdxBits'(IdxWide'(l) * IdxWide'(Positions));
    assign evt_code_o[k*CodeBits +: CodeBits] = code_q[l*CodeBits +: CodeBits];
  end
  assign release_o    = end_q && evt_ready_i;
  assign read_slot_o  = ReadReg ? next_slot_q : next_slot_d;
  assign read_group_o = ReadReg ? next_g_q : next_g_d;

  always_comb begin
    more_d      = more_q;
    end_d       = end_q || (group_done && !more_q && !held);
    next_slot_d = next_slot_q;
    next_g_d    = next_g_q;
    next_pos_d  = next_pos_q;
    if (load) begin
      if (next_slot_q == SlotBits'(Slots - 1)) begin
        next_slot_d = '0;
        next_g_d    = '0;
        next_pos_d  = '0;
        more_d      = 1'b0;
      end else begin
        next_slot_d = next_slot_q + 1'b1;
        if (next_pos_q == PosBits'(Positions - 1)) begin
          next_pos_d = '0;
          next_g_d   = next_g_q + 1'b1;
        end else begin
          next_pos_d = next_pos_q + 1'b1;
        end
      end
    end
    if (release_o) begin
      end_d  = 1'b0;
      more_d = 1'b1;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      more_q      <= 1'b1;
      end_q       <= 1'b0;
      next_slot_q <= '0;
      next_g_q    <= '0;
      next_pos_q  <= '0;
    end else if (clear_i) begin
      more_q      <= 1'b1;
      end_q       <= 1'b0;
      next_slot_q <= '0;
      next_g_q    <= '0;
      next_pos_q  <= '0;
    end else begin
      more_q      <= more_d;
      end_q       <= end_d;
      next_slot_q <= next_slot_d;
      next_g_q    <= next_g_d;
      next_pos_q  <= next_pos_d;
    end
  end

  // The payload of the slot in the arbiter: codes of its lanes and the index of its lane 0.
  always_ff @(posedge clk_i) begin
    if (take) begin
      code_q <= offer_code;
      base_q <= offer_base;
    end
  end

  logic unused_busy;
  assign unused_busy = arb_busy ^ arb_free;

endmodule

`default_nettype wire
