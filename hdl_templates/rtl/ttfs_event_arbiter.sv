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
`default_nettype none

module ttfs_event_arbiter #(
  parameter int Lanes    = 4,
  parameter int LaneBits = 2,   // max(1, clog2(Lanes))
  parameter int Ways     = 1    // 1 or 2 events per handshake
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
  localparam int Padded  = Blocks * Blk;

  logic                     busy_q, final_q, step;
  logic [Lanes-1:0]         rest_q;
  logic [Ways-1:0]          ways_q;
  logic [Ways*LaneBits-1:0] lane_q;
  // encodings of both sources (0: mask_i of a group being taken, 1: the lanes left), muxed last
  logic [2*Lanes-1:0]         rest_e;    // source s at [s*Lanes +: Lanes], likewise below
  logic [1:0]                 final_e;
  logic [2*Ways-1:0]          ways_e;
  logic [2*Ways*LaneBits-1:0] lane_e;

  assign evt_valid_o  = busy_q && ways_q[0];
  assign evt_ways_o   = ways_q;
  assign evt_lane_o   = lane_q;
  assign busy_o       = busy_q;
  assign group_done_o = busy_q && final_q && evt_ready_i;
  assign free_o       = !busy_q || group_done_o;
  assign group_take_o = group_valid_i && free_o;
  // the held group goes on with its next handshake
  assign step         = busy_q && !final_q && evt_ready_i;

  // Next handshake of a source x: way 0 the lowest set lane, way 1 (Ways = 2) the highest; per
  // block: any, lowest/highest local index, whether it holds two or three lanes; across blocks:
  // the first (last) non-empty block. final: nothing is left after this handshake.
  for (genvar src = 0; src < 2; src++) begin : g_src
    logic [Padded-1:0]         x, lo_hot, hi_hot;
    logic [Blocks-1:0]         any, two, three, lo_first, hi_first;
    logic [Blocks*LaneBits-1:0] lo_lanes, hi_lanes;   // block b's lane if it is first / last
    logic                      ge2, ge3, blocks2, blocks3;
    assign x = Padded'(src == 0 ? mask_i : rest_q);

    for (genvar b = 0; b < Blocks; b++) begin : g_blk
      logic [Blk-1:0]     xb, below, above;   // below[i]: a lane under i is set; above likewise
      logic [BlkBits-1:0] lo, hi;
      assign xb = x[b*Blk +: Blk];
      logic               any_b, two_b, three_b;
      always_comb begin
        logic seen1, seen2, seen3;
        lo    = '0;
        hi    = '0;
        seen1 = 1'b0;
        seen2 = 1'b0;
        seen3 = 1'b0;
        for (int i = 0; i < Blk; i++) begin
          // masked reductions, not the running `seen`: independent trees of log depth
          below[i] = |(xb & Blk'((64'd1 << i) - 64'd1));
          above[i] = |(xb & ~Blk'((64'd2 << i) - 64'd1));
          seen3    = seen3 | (seen2 & xb[i]);
          seen2    = seen2 | (seen1 & xb[i]);
          seen1    = seen1 | xb[i];
          if (xb[i]) begin
            hi = BlkBits'(i);
          end
        end
        any_b   = seen1;
        two_b   = seen2;
        three_b = seen3;
        for (int i = Blk - 1; i >= 0; i--) begin
          if (xb[i]) begin
            lo = BlkBits'(i);
          end
        end
      end
      assign any[b]   = any_b;
      assign two[b]   = two_b;
      assign three[b] = three_b;
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
      final_q <= group_take_o ? final_e[0] : final_e[1];
      ways_q  <= group_take_o ? ways_e[0 +: Ways] : ways_e[Ways +: Ways];
      lane_q  <= group_take_o ? lane_e[0 +: Ways*LaneBits] : lane_e[Ways*LaneBits +: Ways*LaneBits];
    end
  end

endmodule

`default_nettype wire
