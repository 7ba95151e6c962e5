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

  logic                     busy_q, final_q, step;
  logic [Lanes-1:0]         rest_q, src, rest_d;
  logic [Ways-1:0]          ways_q, ways_d;
  logic [Ways*LaneBits-1:0] lane_q, lane_d;

  // Lane index of a one-hot vector: bit b of the index = OR of the lanes with bit b set.
  function automatic logic [LaneBits-1:0] encode(input logic [Lanes-1:0] onehot);
    logic [LaneBits-1:0] lane;
    lane = '0;
    for (int b = 0; b < LaneBits; b++) begin
      for (int i = 0; i < Lanes; i++) begin
        if (((i >> b) & 1) != 0) begin
          lane[b] = lane[b] | onehot[i];
        end
      end
    end
    return lane;
  endfunction

  function automatic logic [Lanes-1:0] reverse(input logic [Lanes-1:0] x);
    logic [Lanes-1:0] r;
    for (int i = 0; i < Lanes; i++) begin
      r[i] = x[Lanes-1-i];
    end
    return r;
  endfunction

  assign evt_valid_o  = busy_q && ways_q[0];
  assign evt_ways_o   = ways_q;
  assign evt_lane_o   = lane_q;
  assign busy_o       = busy_q;
  assign group_done_o = busy_q && final_q && evt_ready_i;
  assign free_o       = !busy_q || group_done_o;
  assign group_take_o = group_valid_i && free_o;
  // the held group goes on with its next handshake
  assign step         = busy_q && !final_q && evt_ready_i;

  // Encode the next handshake from the new group or from the lanes left of the held one:
  // lowest (x & -x, a carry chain) and, for two ways, highest (the same on the reversed mask).
  always_comb begin
    logic [Lanes-1:0] low, high;
    src    = group_take_o ? mask_i : rest_q;
    low    = src & ~(src - Lanes'(1));
    ways_d = '0;
    lane_d = '0;
    ways_d[0]            = src != '0;
    lane_d[LaneBits-1:0] = encode(low);
    rest_d               = src & ~low;
    if (Ways > 1) begin
      high                           = reverse(reverse(src) & ~(reverse(src) - Lanes'(1)));
      ways_d[Ways-1]                 = rest_d != '0;
      lane_d[Ways*LaneBits-1 -: LaneBits] = encode(high);
      rest_d                         = rest_d & ~high;
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
      rest_q  <= rest_d;
      final_q <= rest_d == '0;
      ways_q  <= ways_d;
      lane_q  <= lane_d;
    end
  end

endmodule

`default_nettype wire
