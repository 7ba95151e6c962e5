// Zero-skipping event arbiter with registered outputs: takes a group (a mask of lanes holding
// an event) and offers up to Ways of its lanes per handshake on a valid/ready stream; lanes
// without an event cost nothing. Way 0 is the lowest lane still pending, way 1 (Ways = 2) the
// highest, so a group of e events takes exactly ceil(e / Ways) handshakes (the order of events
// is free: consumers integrate, and integration does not depend on order).
//
// Timing: the group on mask_i is taken (group_take_o) in a cycle where group_valid_i is high and
// the arbiter is free (free_o: no group held, or the held group's last handshake happens now);
// its first handshake is offered from the next cycle. Every handshake's lanes are encoded one
// cycle ahead into registers (evt_ways_o, evt_lane_o come straight from flip-flops), so the
// priority encoding of a wide mask never shares a path with the consumer. A group without
// events still holds the arbiter for one cycle in which the consumer is ready
// (group_done_o without evt_valid_o), which keeps the cost of every group exact:
// max(1, ceil(events / Ways) * cycles_per_handshake_downstream), back to back.
// The lanes left of the held group are kept with, per block of 16 lanes, a flag (any lane left)
// and their count, so the next handshake's block priority and its test for two and three lanes
// left (the way-1 lane, the last handshake) start at flip-flops. PreEnc = 1: mask_i and its block counts are registered every cycle and a group is
// taken from those registers; the producer then keeps mask_i stable for one cycle before it
// raises group_valid_i (serial fire does), and no path runs from its mask to this arbiter's
// registers through the take decision.
`default_nettype none

module ttfs_event_arbiter #(
  parameter int Lanes    = 4,
  parameter int LaneBits = 2,   // max(1, clog2(Lanes))
  parameter int Ways     = 1,   // 1 or 2 events per handshake
  parameter bit PreEnc   = 1'b0 // take the group from registers of mask_i (see above)
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_ni,
  input  wire logic                     clear_i,        // synchronous: forget the group
  input  wire logic                     group_valid_i,  // mask_i is offered
  input  wire logic [Lanes-1:0]         mask_i,
  output      logic                     group_take_o,   // mask_i is taken at this edge
  output      logic                     free_o,         // a group can be taken now
  output      logic                     busy_o,         // a group is held
  output      logic                     group_done_o,   // the held group finishes now
  output      logic                     evt_valid_o,
  input  wire logic                     evt_ready_i,
  output      logic [Ways-1:0]          evt_ways_o,     // way k holds an event
  output      logic [Ways*LaneBits-1:0] evt_lane_o      // lane of way k at [k*LaneBits +:]
);

  // The encoder works on blocks of Blk lanes (priority within a block, then across blocks), so
  // its depth grows with log(Lanes), not with a Lanes-bit carry chain.
  localparam int Blk     = (Lanes < 16) ? Lanes : 16;
  localparam int Blocks  = (Lanes + Blk - 1) / Blk;
  localparam int BlkBits = (Blk > 1) ? $clog2(Blk) : 1;
  localparam int CntBits = $clog2(Blk + 1);
  localparam int Padded  = Blocks * Blk;

  logic                     busy_q, final_q, step;
  logic [Lanes-1:0]         rest_q;
  logic [Blocks*CntBits-1:0] cnt_q;   // lanes set in rest_q per block (after the group's last
  logic [Blocks-1:0]         any_q;   // handshake: don't care); any lane set per block
  logic [Ways-1:0]          ways_q;
  logic [Ways*LaneBits-1:0] lane_q;
  // both sources (0: the offered group, 1: the lanes left) and their encodings, muxed last
  logic [2*Lanes-1:0]          src_x, rest_e;     // source s at [s*Lanes +: Lanes], likewise
  logic [2*Blocks*CntBits-1:0] src_cnt, cnt_e;
  logic [2*Blocks-1:0]         src_any, any_e;
  logic [1:0]                  final_e;
  logic [2*Ways-1:0]           ways_e;
  logic [2*Ways*LaneBits-1:0]  lane_e;
  logic [Blocks*CntBits-1:0]   mask_cnt;
  logic [Blocks-1:0]           mask_any;

  assign evt_valid_o  = busy_q && ways_q[0];
  assign evt_ways_o   = ways_q;
  assign evt_lane_o   = lane_q;
  assign busy_o       = busy_q;
  assign group_done_o = busy_q && final_q && evt_ready_i;
  assign free_o       = !busy_q || group_done_o;
  assign group_take_o = group_valid_i && free_o;
  // the held group goes on with its next handshake
  assign step         = busy_q && !final_q && evt_ready_i;

  // lanes set per block of mask_i
  always_comb begin
    logic [Padded-1:0] x;
    x = Padded'(mask_i);
    for (int b = 0; b < Blocks; b++) begin
      logic [CntBits-1:0] c;
      c = '0;
      for (int i = 0; i < Blk; i++) begin
        c = c + CntBits'(x[b*Blk + i]);
      end
      mask_cnt[b*CntBits +: CntBits] = c;
      mask_any[b]                    = |x[b*Blk +: Blk];
    end
  end

  if (PreEnc) begin : g_pre
    logic [Lanes-1:0]          mask_q;
    logic [Blocks*CntBits-1:0] mask_cnt_q;
    logic [Blocks-1:0]         mask_any_q;
    always_ff @(posedge clk_i) begin
      mask_q     <= mask_i;
      mask_cnt_q <= mask_cnt;
      mask_any_q <= mask_any;
    end
    assign src_x[0 +: Lanes]            = mask_q;
    assign src_cnt[0 +: Blocks*CntBits] = mask_cnt_q;
    assign src_any[0 +: Blocks]         = mask_any_q;
  end else begin : g_direct
    assign src_x[0 +: Lanes]            = mask_i;
    assign src_cnt[0 +: Blocks*CntBits] = mask_cnt;
    assign src_any[0 +: Blocks]         = mask_any;
  end
  assign src_x[Lanes +: Lanes]                     = rest_q;
  assign src_cnt[Blocks*CntBits +: Blocks*CntBits] = cnt_q;
  assign src_any[Blocks +: Blocks]                 = any_q;

  // Next handshake of a source x: way 0 the lowest set lane, way 1 (Ways = 2) the highest; per
  // block: any, lowest/highest local index; across blocks: the first (last) non-empty block;
  // two or three lanes left from the block counts. final: nothing is left after this handshake.
  for (genvar src = 0; src < 2; src++) begin : g_src
    logic [Padded-1:0]          x, lo_hot, hi_hot;
    logic [Blocks-1:0]          any, two, three, lo_first, hi_first;
    logic [Blocks*LaneBits-1:0] lo_lanes, hi_lanes;   // block b's lane if it is first / last
    logic [Blocks*CntBits-1:0]  cnt;
    logic                       ge2, ge3, blocks2, blocks3;
    assign x   = Padded'(src_x[src*Lanes +: Lanes]);
    assign cnt = src_cnt[src*Blocks*CntBits +: Blocks*CntBits];
    assign any = src_any[src*Blocks +: Blocks];

    for (genvar b = 0; b < Blocks; b++) begin : g_blk
      logic [Blk-1:0]     xb, below, above;   // below[i]: a lane under i is set; above likewise
      logic [BlkBits-1:0] lo, hi;
      assign xb       = x[b*Blk +: Blk];
      assign two[b]   = 32'(cnt[b*CntBits +: CntBits]) >= 32'd2;   // (CntBits may be 1)
      assign three[b] = 32'(cnt[b*CntBits +: CntBits]) >= 32'd3;
      always_comb begin
        lo = '0;
        hi = '0;
        for (int i = 0; i < Blk; i++) begin
          // masked reductions, not a running `seen`: independent trees of log depth
          below[i] = |(xb & Blk'((64'd1 << i) - 64'd1));
          above[i] = |(xb & ~Blk'((64'd2 << i) - 64'd1));
          if (xb[i]) begin
            hi = BlkBits'(i);
          end
        end
        for (int i = Blk - 1; i >= 0; i--) begin
          if (xb[i]) begin
            lo = BlkBits'(i);
          end
        end
      end
      assign lo_hot[b*Blk +: Blk] = xb & ~below & {Blk{lo_first[b]}};
      assign hi_hot[b*Blk +: Blk] = xb & ~above & {Blk{hi_first[b]}};
      assign lo_lanes[b*LaneBits +: LaneBits] = lo_first[b] ? LaneBits'(b * Blk) + LaneBits'(lo) : '0;
      assign hi_lanes[b*LaneBits +: LaneBits] = hi_first[b] ? LaneBits'(b * Blk) + LaneBits'(hi) : '0;
    end

    always_comb begin
      logic seen1, seen2, seen3;
      seen1 = 1'b0;
      seen2 = 1'b0;
      seen3 = 1'b0;
      for (int b = 0; b < Blocks; b++) begin
        lo_first[b] = any[b] & !(|(any & Blocks'((64'd1 << b) - 64'd1)));
        hi_first[b] = any[b] & !(|(any & ~Blocks'((64'd2 << b) - 64'd1)));
        seen3       = seen3 | (seen2 & any[b]);
        seen2       = seen2 | (seen1 & any[b]);
        seen1       = seen1 | any[b];
      end
      blocks2 = seen2;
      blocks3 = seen3;
      ge2 = (two != '0) || blocks2;
      ge3 = (three != '0) || blocks3 || ((two != '0) && blocks2);
    end

    always_comb begin
      logic [LaneBits-1:0] lo_lane, hi_lane;
      lo_lane = '0;
      hi_lane = '0;
      for (int b = 0; b < Blocks; b++) begin
        lo_lane = lo_lane | lo_lanes[b*LaneBits +: LaneBits];
        hi_lane = hi_lane | hi_lanes[b*LaneBits +: LaneBits];
        // the lanes of this handshake leave their blocks' counts and flags (with one lane left
        // the handshake is the last: what remains is not used)
        cnt_e[src*Blocks*CntBits + b*CntBits +: CntBits] =
            cnt[b*CntBits +: CntBits] - CntBits'(lo_first[b])
            - CntBits'(Ways > 1 && hi_first[b]);
        any_e[src*Blocks + b] = any[b] && !(
            (32'(cnt[b*CntBits +: CntBits]) == 32'd1 && (lo_first[b] || (Ways > 1 && hi_first[b])))
            || (Ways > 1 && 32'(cnt[b*CntBits +: CntBits]) == 32'd2 && lo_first[b] && hi_first[b]));
      end
      ways_e[src*Ways +: Ways]                 = '0;
      lane_e[src*Ways*LaneBits +: Ways*LaneBits] = '0;
      ways_e[src*Ways]                         = any != '0;
      lane_e[src*Ways*LaneBits +: LaneBits]    = lo_lane;
      rest_e[src*Lanes +: Lanes]               = Lanes'(x & ~lo_hot);
      final_e[src]                             = !ge2;
      if (Ways > 1) begin
        ways_e[src*Ways + Ways - 1]                                = ge2;
        lane_e[src*Ways*LaneBits + (Ways-1)*LaneBits +: LaneBits] = hi_lane;
        rest_e[src*Lanes +: Lanes]                                 = Lanes'(x & ~lo_hot & ~hi_hot);
        final_e[src]                                               = !ge3;
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;
    end else if (clear_i) begin
      busy_q <= 1'b0;
    end else if (group_take_o) begin
      busy_q <= 1'b1;
    end else if (group_done_o) begin
      busy_q <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (group_take_o || step) begin
      rest_q  <= group_take_o ? rest_e[0 +: Lanes] : rest_e[Lanes +: Lanes];
      cnt_q   <= group_take_o ? cnt_e[0 +: Blocks*CntBits] : cnt_e[Blocks*CntBits +: Blocks*CntBits];
      any_q   <= group_take_o ? any_e[0 +: Blocks] : any_e[Blocks +: Blocks];
      final_q <= group_take_o ? final_e[0] : final_e[1];
      ways_q  <= group_take_o ? ways_e[0 +: Ways] : ways_e[Ways +: Ways];
      lane_q  <= group_take_o ? lane_e[0 +: Ways*LaneBits] : lane_e[Ways*LaneBits +: Ways*LaneBits];
    end
  end

endmodule

`default_nettype wire
