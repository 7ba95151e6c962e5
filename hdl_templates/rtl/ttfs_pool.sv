// Max pooling on spike times (window Size x Size, stride Size, a partial border dropped): the
// output time of a window is the earliest spike time in it, NO_SPIKE when it saw none. Input
// events (flat index over Channels x InHeight x InWidth, code = spike time) arrive in any order,
// up to Ways (1 or 2) per handshake, one handshake per cycle: each event is decoded to (channel,
// window) and registered, then the window's entry keeps min(entry, t). The events of one
// handshake must be for different lanes (channel mod Lanes), as a scan's are (one slot: distinct
// channels of one position, and the pool has its producer's lanes). Entries are organised like a layer's membranes: lane l of
// group g is channel g * Lanes + l, slot g * Positions + (oy * OutWidth + ox). After the end
// marker (DrainCycles = 2 later), ttfs_scan emits every window that saw a spike, and the
// marker; its handshake clears the entries for the next inference.
`default_nettype none

module ttfs_pool #(
  parameter int Lanes      = 4,
  parameter int Groups     = 1,
  parameter int Positions  = 4,    // OutHeight * OutWidth
  parameter int SlotBits   = 2,    // port width: max(1, clog2(Groups * Positions))
  parameter int GroupBits  = 1,    // port width: max(1, clog2(Groups))
  parameter int InHeight   = 4,
  parameter int InWidth    = 4,
  parameter int Size       = 2,
  parameter int OutHeight  = 2,
  parameter int OutWidth   = 2,
  parameter int TimeBits   = 3,
  parameter int IdxBits    = 6,    // input index width
  parameter int OutIdxBits = 4,    // output index width
  parameter int OutWays    = 1,    // events per output handshake (1 or 2)
  parameter int Ways       = 1     // events per input handshake (1 or 2)
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  input  wire logic                  clear_i,
  input  wire logic                  evt_valid_i,
  output      logic                  evt_ready_o,
  input  wire logic                  evt_last_i,
  input  wire logic [Ways-1:0]       evt_ways_i,      // way k holds an event
  input  wire logic [Ways*IdxBits-1:0] evt_index_i,
  input  wire logic [Ways*TimeBits-1:0] evt_code_i,
  output      logic                  evt_valid_o,
  input  wire logic                  evt_ready_i,
  output      logic                  evt_last_o,
  output      logic [OutWays-1:0]    evt_ways_o,
  output      logic [OutWays*OutIdxBits-1:0] evt_index_o,
  output      logic [OutWays*TimeBits-1:0] evt_code_o
);

  localparam int Slots    = Groups * Positions;
  localparam int LaneBits = (Lanes > 1) ? $clog2(Lanes) : 1;
  localparam int DecBits  = IdxBits + 1;   // holds every input index and the channel size

  logic                      accept, release_pool;
  logic [1:0]                last_q;          // end marker taken 1..2 cycles ago
  // way k's registered event (upd_q[k]: it updates its window)
  logic [Ways-1:0]           upd_q, upd_valid;
  logic [Ways*SlotBits-1:0]  upd_slot_q, upd_slot;
  logic [Ways*LaneBits-1:0]  upd_lane_q, upd_lane;
  logic [Ways*TimeBits-1:0]  upd_t_q;
  logic [SlotBits-1:0]       read_slot;
  logic [GroupBits-1:0]      read_group;
  logic [Lanes-1:0]          mask_q;
  logic [Lanes*TimeBits-1:0] code_q;
  logic                      scan_more, scan_load;

  assign evt_ready_o = !last_q[0];
  assign accept      = evt_valid_i && evt_ready_o;

  // Decode (divisions by constants on DecBits, small fixed logic).
  for (genvar k = 0; k < Ways; k++) begin : g_way
    logic [DecBits-1:0] idx, c, y, x;
    assign idx          = DecBits'(evt_index_i[k*IdxBits +: IdxBits]);
    assign c            = idx / DecBits'(InHeight * InWidth);
    assign y            = idx % DecBits'(InHeight * InWidth) / DecBits'(InWidth) / DecBits'(Size);
    assign x            = idx % DecBits'(InWidth) / DecBits'(Size);
    assign upd_valid[k] = accept && !evt_last_i && evt_ways_i[k] && (y < DecBits'(OutHeight)) &&
                          (x < DecBits'(OutWidth));
    assign upd_slot[k*SlotBits +: SlotBits] =
        SlotBits'(c / DecBits'(Lanes) * DecBits'(Positions) + y * DecBits'(OutWidth) + x);
    assign upd_lane[k*LaneBits +: LaneBits] = LaneBits'(c % DecBits'(Lanes));
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      last_q <= '0;
      upd_q  <= '0;
    end else if (clear_i || release_pool) begin
      last_q <= '0;
      upd_q  <= '0;
    end else begin
      last_q <= {last_q[0], last_q[0] || (accept && evt_last_i)};
      upd_q  <= upd_valid;
    end
  end

  always_ff @(posedge clk_i) begin
    upd_slot_q <= upd_slot;
    upd_lane_q <= upd_lane;
    upd_t_q    <= evt_code_i;
  end

  for (genvar l = 0; l < Lanes; l++) begin : g_lane
    logic [TimeBits-1:0] time_q [0:Slots-1];
    logic [Slots-1:0]    seen_q;
    logic                write, hit0, hit1;
    logic [SlotBits-1:0] slot;
    logic [TimeBits-1:0] t;

    // the way addressed to this lane (at most one; way 1 is Ways - 1, i.e. way 0 when Ways = 1)
    assign hit0  = upd_q[0] && (upd_lane_q[LaneBits-1:0] == LaneBits'(l));
    assign hit1  = upd_q[Ways-1] && (upd_lane_q[(Ways-1)*LaneBits +: LaneBits] == LaneBits'(l));
    assign slot  = hit1 ? upd_slot_q[(Ways-1)*SlotBits +: SlotBits] : upd_slot_q[SlotBits-1:0];
    assign t     = hit1 ? upd_t_q[(Ways-1)*TimeBits +: TimeBits] : upd_t_q[TimeBits-1:0];
    assign write = (hit0 || hit1) && (!seen_q[slot] || (t < time_q[slot]));

    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        seen_q <= '0;
      end else if (clear_i || release_pool) begin
        seen_q <= '0;
      end else if (write) begin
        seen_q[slot] <= 1'b1;
      end
    end

    always_ff @(posedge clk_i) begin
      if (write) begin
        time_q[slot] <= t;
      end
      mask_q[l]                         <= seen_q[read_slot];
      code_q[l*TimeBits +: TimeBits]    <= time_q[read_slot];
    end
  end

  ttfs_scan #(
    .Lanes      (Lanes),
    .Groups     (Groups),
    .Positions  (Positions),
    .SlotBits   (SlotBits),
    .GroupBits  (GroupBits),
    .CodeBits   (TimeBits),
    .OutIdxBits (OutIdxBits),
    .Ways       (OutWays)
  ) u_scan (
    .clk_i,
    .rst_ni,
    .clear_i,
    .start_i      (last_q[1]),
    .avail_i      (1'b1),
    .more_o       (scan_more),
    .load_o       (scan_load),
    .read_slot_o  (read_slot),
    .read_group_o (read_group),
    .mask_i       (mask_q),
    .code_i       (code_q),
    .evt_valid_o,
    .evt_ready_i,
    .evt_last_o,
    .evt_ways_o,
    .evt_index_o,
    .evt_code_o,
    .release_o    (release_pool)
  );

  logic unused_scan;
  assign unused_scan = ^{read_group, scan_more, scan_load};

endmodule

`default_nettype wire
