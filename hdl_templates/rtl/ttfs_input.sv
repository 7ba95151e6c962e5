// Input stage: accepts the image as beats of Lanes pixel bytes (valid/ready/last) and emits one
// event (pixel index, byte) per pixel that spikes, i.e. whose byte is >= MinByte (1 under
// `real` coding, where zero pixels are silent; the first byte with a spike time < T under `ttfs`
// coding, whose time table is non-increasing). Silent pixels cost no cycles. After the last beat
// it sends the end marker (evt_last_o), then waits for done_i (the result was taken) before it
// accepts the next image. busy_o is high from the first cycle an image is processed until done_i.
`default_nettype none

module ttfs_input #(
  parameter int Lanes    = 4,
  parameter int LaneBits = 2,    // max(1, clog2(Lanes))
  parameter int Pixels   = 16,   // lanes at or beyond this index (padding) are silent
  parameter int IdxBits  = 4,    // max(1, clog2(Pixels)): the event index
  parameter int BaseBits = 5,    // holds the padded pixel count: the beat base counter
  parameter int MinByte  = 1     // 0..256
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_ni,
  input  wire logic                 in_valid_i,
  output      logic                 in_ready_o,
  input  wire logic [Lanes*8-1:0]   in_data_i,   // lane l = pixel base + l, bits [8l +: 8]
  input  wire logic                 in_last_i,
  output      logic                 evt_valid_o,
  input  wire logic                 evt_ready_i,
  output      logic                 evt_last_o,
  output      logic [IdxBits-1:0]   evt_index_o,
  output      logic [7:0]           evt_code_o,
  input  wire logic                 done_i,
  output      logic                 busy_o
);

  typedef enum logic [1:0] {StInput, StEnd, StWait} state_e;
  state_e state_q, state_d;
  logic [BaseBits-1:0] base_q, base_d;
  logic                busy_q, busy_d;
  logic [Lanes-1:0]    mask;
  logic                group_done, arb_valid;
  logic [LaneBits-1:0] lane;

  for (genvar l = 0; l < Lanes; l++) begin : g_mask
    assign mask[l] = ({1'b0, in_data_i[8*l +: 8]} >= 9'(MinByte))
                     && (base_q + BaseBits'(l) < BaseBits'(Pixels));
  end

  ttfs_event_arbiter #(
    .Lanes    (Lanes),
    .LaneBits (LaneBits)
  ) u_arbiter (
    .clk_i,
    .rst_ni,
    .group_valid_i (in_valid_i && (state_q == StInput)),
    .mask_i        (mask),
    .group_done_o  (group_done),
    .evt_valid_o   (arb_valid),
    .evt_ready_i,
    .evt_lane_o    (lane)
  );

  assign in_ready_o  = group_done;
  assign evt_valid_o = arb_valid || (state_q == StEnd);
  assign evt_last_o  = state_q == StEnd;
  assign evt_index_o = IdxBits'(base_q + BaseBits'(lane));  // < Pixels for every event
  assign evt_code_o  = in_data_i[8*lane +: 8];
  assign busy_o      = busy_q;

  always_comb begin
    state_d = state_q;
    base_d  = base_q;
    busy_d  = busy_q;
    case (state_q)
      StInput: begin
        busy_d = busy_q || in_valid_i;
        if (group_done) begin
          base_d = in_last_i ? '0 : base_q + BaseBits'(Lanes);
          if (in_last_i) begin
            state_d = StEnd;
          end
        end
      end
      StEnd: begin
        if (evt_ready_i) begin
          state_d = StWait;
        end
      end
      StWait: begin
        if (done_i) begin
          state_d = StInput;
          busy_d  = 1'b0;
        end
      end
      default: state_d = StInput;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= StInput;
      base_q  <= '0;
      busy_q  <= 1'b0;
    end else begin
      state_q <= state_d;
      base_q  <= base_d;
      busy_q  <= busy_d;
    end
  end

endmodule

`default_nettype wire
