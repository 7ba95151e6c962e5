// Zero-skipping event arbiter: turns a group of lanes (a mask of lanes holding an event) into
// up to Ways events per cycle on a valid/ready stream, lowest lanes first (way 0 the lowest);
// lanes without an event cost nothing. The group is finished (group_done_o) in the cycle its
// last events are accepted, or, for a group without events, in a cycle the downstream is ready.
// Waiting for ready on empty groups keeps the cost of every group exact:
// max(1, ceil(events / Ways) * cycles_per_handshake_downstream).
`default_nettype none

module ttfs_event_arbiter #(
  parameter int Lanes    = 4,
  parameter int LaneBits = 2,   // max(1, clog2(Lanes))
  parameter int Ways     = 1    // 1 or 2 events per handshake
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_ni,
  input  wire logic                     clear_i,        // synchronous: forget the group
  input  wire logic                     group_valid_i,  // mask_i is presented (held until done)
  input  wire logic [Lanes-1:0]         mask_i,
  output      logic                     group_done_o,
  output      logic                     evt_valid_o,
  input  wire logic                     evt_ready_i,
  output      logic [Ways-1:0]          evt_ways_o,     // way k holds an event
  output      logic [Ways*LaneBits-1:0] evt_lane_o      // lane of way k at [k*LaneBits +:]
);

  logic [Lanes-1:0] sent_q, sent_d;   // lanes of the current group already emitted
  logic [Lanes-1:0] pending, taken;

  assign pending = mask_i & ~sent_q;

  // Way k takes the lowest lane still pending after ways 0..k-1: a one-hot (x & -x, a carry
  // chain) encoded to binary by OR trees (bit b of the lane = OR of the lanes with bit b set).
  always_comb begin
    logic [Lanes-1:0] left, onehot;
    left       = pending;
    taken      = '0;
    evt_ways_o = '0;
    evt_lane_o = '0;
    for (int k = 0; k < Ways; k++) begin
      onehot        = left & ~(left - Lanes'(1));
      evt_ways_o[k] = left != '0;
      for (int b = 0; b < LaneBits; b++) begin
        for (int i = 0; i < Lanes; i++) begin
          if (((i >> b) & 1) != 0) begin
            evt_lane_o[k*LaneBits + b] = evt_lane_o[k*LaneBits + b] | onehot[i];
          end
        end
      end
      taken = taken | onehot;
      left  = left & ~onehot;
    end
  end

  assign evt_valid_o  = group_valid_i && (pending != '0);
  assign group_done_o = group_valid_i && evt_ready_i && ((pending & ~taken) == '0);

  always_comb begin
    sent_d = sent_q;
    if (group_done_o) begin
      sent_d = '0;
    end else if (evt_valid_o && evt_ready_i) begin
      sent_d = sent_q | taken;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sent_q <= '0;
    end else if (clear_i) begin
      sent_q <= '0;
    end else begin
      sent_q <= sent_d;
    end
  end

endmodule

`default_nettype wire
