// Input stage: an AXI4-Stream slave for images. Every frame is Beats = ceil(Pixels / Lanes)
// beats of Lanes pixel bytes (lane l of beat b = pixel b * Lanes + l, bits [8l +: 8]; lanes past
// the last pixel are padding and ignored), tlast on the last beat. Each pixel that spikes (byte
// >= MinByte: 1 under `real` coding, where zero pixels are silent; the first byte with a spike
// time < T under `ttfs` coding, whose time table is non-increasing) becomes one event (pixel
// index, byte), Ways of them per handshake (ttfs_event_arbiter); silent pixels cost no cycles,
// a beat without events one. A beat is taken (tready) when the arbiter is free: its bytes are
// registered and its events leave from the next cycle, while the next beat waits on the bus;
// after the last beat's events the end marker follows; the next frame is accepted once done_i
// says the result was taken. Cycles of the input phase (no gaps, consumer taking a handshake
// every C cycles): 1 + sum over beats of max(1, ceil(events / Ways) * C).
// A frame whose tlast does not come exactly on beat Beats-1 is dropped: the beat that shows it
// emits nothing (it is taken once the arbiter holds nothing), frame_error_o and clear_o pulse
// for one cycle (clear_o flushes every engine downstream, so nothing of the frame is
// classified), and a too-long frame's remaining beats are swallowed up to its tlast. busy_o is
// high from the first beat of a frame until its result is taken (or it is dropped).
`default_nettype none

module ttfs_input #(
  parameter int Lanes   = 4,
  parameter int Pixels  = 16,
  parameter int IdxBits = 4,    // max(1, clog2(Pixels)): the event index
  parameter int MinByte = 1,    // 0..256
  parameter int Ways    = 1     // events per handshake (1 or 2)
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_ni,
  input  wire logic [Lanes*8-1:0]   s_axis_tdata,
  input  wire logic                 s_axis_tvalid,
  output      logic                 s_axis_tready,
  input  wire logic                 s_axis_tlast,
  output      logic                 evt_valid_o,
  input  wire logic                 evt_ready_i,
  output      logic                 evt_last_o,
  output      logic [Ways-1:0]      evt_ways_o,
  output      logic [Ways*IdxBits-1:0] evt_index_o,
  output      logic [Ways*8-1:0]    evt_code_o,
  input  wire logic                 done_i,
  output      logic                 busy_o,
  output      logic                 clear_o,
  output      logic                 frame_error_o
);

  localparam int Beats    = (Pixels + Lanes - 1) / Lanes;
  localparam int LaneBits = (Lanes > 1) ? $clog2(Lanes) : 1;
  localparam int BaseBits = $clog2(Beats * Lanes + 1);   // holds the padded pixel count

  typedef enum logic [1:0] {StInput, StEnd, StWait, StDrop} state_e;
  state_e              state_q, state_d;
  logic [BaseBits-1:0] base_q, base_d;   // pixel index of lane 0 of the beat on the bus
  logic [BaseBits-1:0] evt_base_q;       // ... of the beat in the arbiter
  logic [Lanes*8-1:0]  data_q;           // bytes of the beat in the arbiter
  logic                busy_q, busy_d, clear_q, clear_d;
  logic [Lanes-1:0]    mask;
  logic                offered, take, drop, arb_free, arb_busy, arb_valid, final_beat, bad_beat;
  logic                marker, group_done;
  logic [Ways*LaneBits-1:0] lane;

  assign final_beat = base_q == BaseBits'((Beats - 1) * Lanes);
  assign bad_beat   = s_axis_tlast != final_beat;
  assign offered    = s_axis_tvalid && (state_q == StInput) && !clear_q;
  // a bad beat is dropped once the arbiter holds nothing of the frame
  assign drop       = offered && bad_beat && !arb_busy;

  for (genvar l = 0; l < Lanes; l++) begin : g_mask
    assign mask[l] = ({1'b0, s_axis_tdata[8*l +: 8]} >= 9'(MinByte)) && (32'(base_q) + l < Pixels);
  end

  ttfs_event_arbiter #(
    .Lanes    (Lanes),
    .LaneBits (LaneBits),
    .Ways     (Ways)
  ) u_arbiter (
    .clk_i,
    .rst_ni,
    .clear_i       (1'b0),
    .group_valid_i (offered && !bad_beat),
    .mask_i        (mask),
    .group_take_o  (take),
    .free_o        (arb_free),
    .busy_o        (arb_busy),
    .group_done_o  (group_done),
    .evt_valid_o   (arb_valid),
    .evt_ready_i,
    .evt_ways_o,
    .evt_lane_o    (lane)
  );

  // the end marker follows once the arbiter has emitted the last beat's events
  assign marker        = (state_q == StEnd) && !arb_busy;
  assign s_axis_tready = take || drop || (state_q == StDrop);
  assign evt_valid_o   = arb_valid || marker;
  assign evt_last_o    = marker;
  for (genvar k = 0; k < Ways; k++) begin : g_way
    logic [LaneBits-1:0] l;
    assign l                                = lane[k*LaneBits +: LaneBits];
    assign evt_index_o[k*IdxBits +: IdxBits] = IdxBits'(evt_base_q + BaseBits'(l));  // < Pixels
    assign evt_code_o[k*8 +: 8]              = data_q[8*l +: 8];
  end
  assign busy_o        = busy_q;
  assign clear_o       = clear_q;
  assign frame_error_o = clear_q;

  always_comb begin
    state_d = state_q;
    base_d  = base_q;
    busy_d  = busy_q;
    clear_d = 1'b0;
    case (state_q)
      StInput: begin
        busy_d = busy_q || offered;
        if (drop) begin
          base_d  = '0;
          busy_d  = 1'b0;
          clear_d = 1'b1;
          if (!s_axis_tlast) begin
            state_d = StDrop;
          end
        end else if (take) begin
          base_d = base_q + BaseBits'(Lanes);
          if (s_axis_tlast) begin
            base_d  = '0;
            state_d = StEnd;
          end
        end
      end
      StEnd: begin
        if (marker && evt_ready_i) begin
          state_d = StWait;
        end
      end
      StWait: begin
        if (done_i) begin
          state_d = StInput;
          busy_d  = 1'b0;
        end
      end
      StDrop: begin
        if (s_axis_tvalid && s_axis_tlast) begin
          state_d = StInput;
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
      clear_q <= 1'b0;
    end else begin
      state_q <= state_d;
      base_q  <= base_d;
      busy_q  <= busy_d;
      clear_q <= clear_d;
    end
  end

  always_ff @(posedge clk_i) begin
    if (take) begin
      data_q     <= s_axis_tdata;
      evt_base_q <= base_q;
    end
  end

  logic unused_arb;
  assign unused_arb = arb_free ^ group_done;

endmodule

`default_nettype wire
