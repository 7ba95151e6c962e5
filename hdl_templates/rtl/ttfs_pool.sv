// Max pooling on spike times (window Size x Size, stride Size, a partial border dropped): the
// output time of a window is the earliest spike time in it, NO_SPIKE when it saw none. Input
// events (flat index over Channels x InHeight x InWidth, code = spike time) arrive in any order,
// up to Ways (1 or 2) per handshake, one handshake per cycle. Entries are organised like a
// layer's membranes: lane l of group g is channel g * Lanes + l, slot g * Positions +
// (oy * OutWidth + ox); one memory word per slot holds every lane's entry (seen bit, earliest
// time), so the events of one handshake must be for one slot and different lanes, as a scan's
// are (one scan slot: distinct channels of one position, and the pool has its producer's lanes).
// Pipeline per handshake: decode -> registered (slot, per-lane update) and memory read ->
// read-modify-write: every updated lane keeps min(entry, t), the word of the previous cycle
// forwarded when it was the same slot, a slot not written since the release reads as empty
// (started bits, no clearing pass). After the end marker (DrainCycles = 3 later), ttfs_scan
// reads a word per slot and emits every window that saw a spike, and the marker; its handshake
// clears the started bits for the next inference.
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
  parameter int Ways       = 1,    // events per input handshake (1 or 2)
  /* verilator lint_off UNUSEDPARAM */  // read by synthesis only (the ram_style attribute)
  parameter     MemStyle   = "auto" // ram_style of the window memory
  /* verilator lint_on UNUSEDPARAM */
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
  localparam int Entry    = TimeBits + 1;  // a lane's entry: {seen, time}

  logic                      accept, release_pool;
  logic [2:0]                last_q;          // end marker taken 1..3 cycles ago
  logic [Ways-1:0]           upd_valid;       // way k updates a window
  logic [SlotBits-1:0]       upd_slot;        // way 0's (both ways name one slot)
  logic [Ways*LaneBits-1:0]  upd_lane;
  logic [Lanes-1:0]          hit, s1_hit_q, s2_hit_q;      // lanes updated by the handshake
  logic [Lanes*TimeBits-1:0] t_lane, s1_t_q, s2_t_q;       // their times
  logic                      s1_q, s2_q, last_en_q;
  logic [SlotBits-1:0]       s1_slot_q, s2_slot_q, last_slot_q, rd_slot, read_slot;
  logic [GroupBits-1:0]      read_group;
  (* ram_style = MemStyle *) logic [Lanes*Entry-1:0] mem [0:Slots-1];
  logic [Lanes*Entry-1:0]    rd_q, base, word, last_word_q;
  logic [Slots-1:0]          started_q;
  logic                      read_started_q;
  logic [Lanes-1:0]          mask;
  logic [Lanes*TimeBits-1:0] code;
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
    if (k == 0) begin : g_slot
      assign upd_slot = SlotBits'(c / DecBits'(Lanes) * DecBits'(Positions)
                                  + y * DecBits'(OutWidth) + x);
    end
    assign upd_lane[k*LaneBits +: LaneBits] = LaneBits'(c % DecBits'(Lanes));
  end

  // Per lane: the way addressed to it (way 1 is Ways - 1, i.e. way 0 when Ways = 1).
  for (genvar l = 0; l < Lanes; l++) begin : g_hit
    logic hit0, hit1;
    assign hit0   = upd_valid[0] && (upd_lane[LaneBits-1:0] == LaneBits'(l));
    assign hit1   = upd_valid[Ways-1] &&
                    (upd_lane[(Ways-1)*LaneBits +: LaneBits] == LaneBits'(l));
    assign hit[l] = hit0 || hit1;
    assign t_lane[l*TimeBits +: TimeBits] =
        hit1 ? evt_code_i[(Ways-1)*TimeBits +: TimeBits] : evt_code_i[TimeBits-1:0];
  end

  // Read-modify-write: base = the word written in the previous cycle if that was the same slot
  // (the memory has not returned it yet), else the memory word if the slot was written since
  // the release, else empty; each updated lane keeps min(entry, t).
  always_comb begin
    logic seen;
    if (last_en_q && (last_slot_q == s2_slot_q)) begin
      base = last_word_q;
    end else if (started_q[s2_slot_q]) begin
      base = rd_q;
    end else begin
      base = '0;
    end
    word = base;
    for (int l = 0; l < Lanes; l++) begin
      seen = base[l*Entry + TimeBits];
      if (s2_hit_q[l] && (!seen || (s2_t_q[l*TimeBits +: TimeBits] <
                                    base[l*Entry +: TimeBits]))) begin
        word[l*Entry +: Entry] = {1'b1, s2_t_q[l*TimeBits +: TimeBits]};
      end
    end
  end

  assign rd_slot = last_q[0] ? read_slot : s1_slot_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      last_q    <= '0;
      s1_q      <= 1'b0;
      s2_q      <= 1'b0;
      last_en_q <= 1'b0;
      started_q <= '0;
    end else if (clear_i || release_pool) begin
      last_q    <= '0;
      s1_q      <= 1'b0;
      s2_q      <= 1'b0;
      last_en_q <= 1'b0;
      started_q <= '0;
    end else begin
      last_q    <= {last_q[1:0], last_q[0] || (accept && evt_last_i)};
      s1_q      <= |upd_valid;
      s2_q      <= s1_q;
      last_en_q <= s2_q;
      if (s2_q) begin
        started_q[s2_slot_q] <= 1'b1;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    s1_slot_q      <= upd_slot;
    s1_hit_q       <= hit;
    s1_t_q         <= t_lane;
    s2_slot_q      <= s1_slot_q;
    s2_hit_q       <= s1_hit_q;
    s2_t_q         <= s1_t_q;
    last_slot_q    <= s2_slot_q;
    last_word_q    <= word;
    rd_q           <= mem[rd_slot];
    read_started_q <= started_q[read_slot];
    if (s2_q) begin
      mem[s2_slot_q] <= word;
    end
  end

  for (genvar l = 0; l < Lanes; l++) begin : g_lane
    assign mask[l] = read_started_q && rd_q[l*Entry + TimeBits];
    assign code[l*TimeBits +: TimeBits] = rd_q[l*Entry +: TimeBits];
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
    .start_i      (last_q[2]),
    .avail_i      (1'b1),
    .more_o       (scan_more),
    .load_o       (scan_load),
    .read_slot_o  (read_slot),
    .read_group_o (read_group),
    .mask_i       (mask),
    .code_i       (code),
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
