// Zero-skipping event arbiter: turns a group of lanes (a mask of lanes holding an event) into
// one event per cycle on a valid/ready stream, lowest lane first; lanes without an event cost
// nothing. The group is finished (group_done_o) in the cycle its last event is accepted, or, for
// a group without events, in a cycle the downstream is ready. Waiting for ready on empty groups
// keeps the cost of every group exact: max(1, events * cycles_per_event_downstream).
`default_nettype none

module ttfs_event_arbiter #(
  parameter int Lanes    = 4,
  parameter int LaneBits = 2   // max(1, clog2(Lanes))
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                clear_i,        // synchronous: forget the group in progress
  input  wire logic                group_valid_i,  // mask_i is presented (held until done)
  input  wire logic [Lanes-1:0]    mask_i,
  output      logic                group_done_o,
  output      logic                evt_valid_o,
  input  wire logic                evt_ready_i,
  output      logic [LaneBits-1:0] evt_lane_o
);

  logic [Lanes-1:0] sent_q, sent_d;   // lanes of the current group already emitted
  logic [Lanes-1:0] pending, lane_onehot;
  int               i;      // lane loop

  assign pending = mask_i & ~sent_q;

  always_comb begin
    evt_lane_o = '0;
    for (i = Lanes - 1; i >= 0; i--) begin
      if (pending[i]) begin
        evt_lane_o = LaneBits'(i);
      end
    end
  end

  assign lane_onehot  = pending & ~(pending - Lanes'(1));  // lowest set bit
  assign evt_valid_o  = group_valid_i && (pending != '0);
  assign group_done_o = group_valid_i && evt_ready_i && ((pending & ~lane_onehot) == '0);

  always_comb begin
    sent_d = sent_q;
    if (group_done_o) begin
      sent_d = '0;
    end else if (evt_valid_o && evt_ready_i) begin
      sent_d = sent_q | lane_onehot;
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
