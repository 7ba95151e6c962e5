// Integration half of a layer engine (dense, conv2d or output). NumPe processing elements hold
// the membranes: lane p of group g is output channel (or neuron) c = g * NumPe + p, and each PE
// keeps one membrane per (group, position) slot, slot = g * Positions + position (dense layers
// have one position). An accepted input event (index i, code) is held while it issues Iters
// cycles, one (group, tap) pair per cycle:
//   dense: Iters = Groups, tap = the event itself: weight word g * InCount + i, slot g;
//   conv:  the event at (c, y, x) reaches the output rows oy = oyh - a with kernel row
//          dy = dy0 + a * Stride (oyh = (y + Padding) / Stride, dy0 = (y + Padding) % Stride,
//          a = 0..Reach-1, Reach = ceil(Kernel / Stride)), likewise for columns; taps outside
//          the kernel or the output are issued but not accumulated, so Iters = Groups * Reach^2
//          whatever the position. Weight word ((g * InChannels + c) * Kernel + dy) * Kernel + dx.
// Every lane adds weight * operand(code) to its membrane of the slot, where operand(code) is the
// code itself (pixel bytes) or OperandTable[code] (kernel value of a spike time). Pipeline:
// issue (counters) -> address register -> ROM read (block RAM) -> registered ROM output ->
// product register (in the PE) -> accumulate. The next event is accepted while the last tap of
// the current one issues, so an event costs exactly Iters cycles. The end marker (evt_last_i)
// passes the pipeline and one more cycle for the membrane read (membranes live in one
// synchronous-read memory per PE, block RAM for large layers): done_o rises DrainCycles = 6
// cycles after the marker was taken, then stays high while v_mem_o holds the membranes of
// (read_slot_i, read_group_i) named in the previous cycle, until release_i rearms the layer. A
// slot not accumulated since the release reads as its bias (no clearing pass).
// clear_i (synchronous) drops everything in flight, as after reset.
`default_nettype none

module ttfs_integrator #(
  parameter int NumPe           = 4,
  parameter int Groups          = 3,
  parameter int Positions       = 1,
  parameter int SlotBits        = 2,    // port width: max(1, clog2(Groups * Positions))
  parameter int GroupBits       = 2,    // port width: max(1, clog2(Groups))
  parameter bit Conv            = 1'b0,
  parameter int InCount         = 16,   // inputs (flat index range)
  parameter int InChannels      = 1,    // conv geometry (ignored by dense layers)
  parameter int InHeight        = 1,
  parameter int InWidth         = 1,
  parameter int Kernel          = 1,
  parameter int Stride          = 1,
  parameter int Padding         = 0,
  parameter int OutHeight       = 1,
  parameter int OutWidth        = 1,
  parameter int IdxBits         = 4,    // width of the input index
  parameter int CodeBits        = 8,
  parameter bit UseOperandTable = 1'b0, // else operand = code (pixel bytes)
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = "",
  parameter int Ways            = 1     // events integrated together (dense only: 1 or 2)
) (
  input  wire logic                       clk_i,
  input  wire logic                       rst_ni,
  input  wire logic                       clear_i,
  input  wire logic                       evt_valid_i,
  output      logic                       evt_ready_o,
  input  wire logic                       evt_last_i,
  input  wire logic [Ways-1:0]            evt_ways_i,     // way k holds an event
  input  wire logic [Ways*IdxBits-1:0]    evt_index_i,
  input  wire logic [Ways*CodeBits-1:0]   evt_code_i,
  output      logic                       done_o,
  input  wire logic                       release_i,
  input  wire logic [SlotBits-1:0]        read_slot_i,
  input  wire logic [GroupBits-1:0]       read_group_i,
  output      logic [NumPe*AccBits-1:0]   v_mem_o
);

  localparam int Slots     = Groups * Positions;
  localparam int Reach     = Conv ? (Kernel + Stride - 1) / Stride : 1;
  localparam int Words     = Conv ? Groups * InChannels * Kernel * Kernel : Groups * InCount;
  localparam int AddrBits  = (Words > 1) ? $clog2(Words) : 1;
  localparam int ReachBits = (Reach > 1) ? $clog2(Reach) : 1;
  localparam int Depth     = 5;   // marker taken -> done: 4 pipeline stages + membrane read
  // Narrow arithmetic (divisions by constants stay small): DecBits holds an input index and
  // the channel size, CoordBits a padded coordinate and every tap offset, Wide an address.
  localparam int DecBits   = $clog2(InCount + 1) + 1;
  localparam int CoordBits = $clog2((InHeight > InWidth ? InHeight : InWidth) + Padding
                                    + Kernel + Stride + 1) + 1;
  localparam int Wide      = $clog2((Words > Slots ? Words : Slots) + 1) + 1;

  logic [NumPe*WeightBits-1:0] weight_rom [0:Words-1];
  logic [NumPe*AccBits-1:0]    bias_rom   [0:Groups-1];

  initial begin
    $readmemh(WeightFile, weight_rom);
    $readmemh(BiasFile, bias_rom);
  end

  // ---------------------------------------------------------------- issue: held event, counters
  logic                 issue_q, issue_d, last_tap, accept;
  logic [GroupBits-1:0] g_q, g_d;
  logic [ReachBits-1:0] a_q, a_d, b_q, b_d;
  logic [Ways*CodeBits-1:0] code_q;
  logic [Ways-1:0]      ways_q;
  // held event: dense: idx (the input index); conv: c, oyh, dy0, oxh, dx0 (see above)
  logic [Ways*IdxBits-1:0] idx_q, idx_d;
  logic [IdxBits-1:0]   c_q, c_d;
  logic [CoordBits-1:0] oyh_q, oyh_d, dy0_q, dy0_d, oxh_q, oxh_d, dx0_q, dx0_d;
  logic [Depth:0]       last_q, last_d;   // end marker taken 1..Depth+1 cycles ago
  logic [Slots-1:0]     started_q, started_d;
  logic                 tap_valid;
  logic [Ways*AddrBits-1:0] tap_addr;
  logic [SlotBits-1:0]  tap_slot;
  // pipeline: s1 address, s2 ROM output, s3 registered ROM output, s4 product
  logic                        s1_q, s2_q, s3_q, s4_q;             // stage holds a tap
  logic [SlotBits-1:0]         s1_slot_q, s2_slot_q, s3_slot_q, s4_slot_q;
  logic [GroupBits-1:0]        s1_grp_q, s2_grp_q, s3_grp_q, s4_grp_q;
  logic [Ways*AddrBits-1:0]    addr_q;
  logic [Ways*CodeBits-1:0]    s1_code_q;
  logic [Ways-1:0]             s1_ways_q;
  logic [Ways*OperandBits-1:0] operand, s2_operand_q, s3_operand_q;
  logic [Ways*NumPe*WeightBits-1:0] rom_q, weight_q;   // way k at [k*NumPe*WeightBits +:]

  assign last_tap    = issue_q && (g_q == GroupBits'(Groups - 1)) &&
                       (a_q == ReachBits'(Reach - 1)) && (b_q == ReachBits'(Reach - 1));
  assign evt_ready_o = !last_q[0] && (!issue_q || last_tap);
  assign accept      = evt_valid_i && evt_ready_o;
  assign done_o      = last_q[Depth];

  // Decode of the accepted index (divisions by constants: small fixed logic).
  always_comb begin
    logic [DecBits-1:0]   idx, rem;
    logic [CoordBits-1:0] y, x;
    idx   = DecBits'(evt_index_i[IdxBits-1:0]);
    rem   = idx % DecBits'(InHeight * InWidth);
    y     = CoordBits'(rem / DecBits'(InWidth)) + CoordBits'(Padding);
    x     = CoordBits'(rem % DecBits'(InWidth)) + CoordBits'(Padding);
    idx_d = idx_q;
    c_d   = c_q;
    oyh_d = oyh_q;
    dy0_d = dy0_q;
    oxh_d = oxh_q;
    dx0_d = dx0_q;
    if (accept && !evt_last_i) begin
      idx_d = evt_index_i;
      c_d   = IdxBits'(idx / DecBits'(InHeight * InWidth));
      oyh_d = y / CoordBits'(Stride);
      dy0_d = y % CoordBits'(Stride);
      oxh_d = x / CoordBits'(Stride);
      dx0_d = x % CoordBits'(Stride);
    end
  end

  always_comb begin
    issue_d   = issue_q && !last_tap;
    g_d       = g_q;
    a_d       = a_q;
    b_d       = b_q;
    last_d    = {last_q[Depth-1:0], last_q[0]};
    started_d = started_q;
    if (s4_q) begin
      started_d[s4_slot_q] = 1'b1;
    end
    if (issue_q) begin
      if (b_q != ReachBits'(Reach - 1)) begin
        b_d = b_q + 1'b1;
      end else begin
        b_d = '0;
        if (a_q != ReachBits'(Reach - 1)) begin
          a_d = a_q + 1'b1;
        end else begin
          a_d = '0;
          g_d = (g_q == GroupBits'(Groups - 1)) ? '0 : g_q + 1'b1;
        end
      end
    end
    if (accept && evt_last_i) begin
      last_d[0] = 1'b1;
    end else if (accept) begin
      issue_d = 1'b1;
      g_d     = '0;
      a_d     = '0;
      b_d     = '0;
    end
    if (release_i) begin
      last_d    = '0;
      started_d = '0;
    end
  end

  // ---------------------------------------------------------------- tap -> address, slot

  always_comb begin
    logic [CoordBits-1:0] dy, dx, a, b;
    a  = CoordBits'(a_q);
    b  = CoordBits'(b_q);
    dy = dy0_q + a * CoordBits'(Stride);
    dx = dx0_q + b * CoordBits'(Stride);
    tap_addr = '0;
    if (Conv) begin
      tap_valid = issue_q && (dy < CoordBits'(Kernel)) && (dx < CoordBits'(Kernel)) &&
                  (a <= oyh_q) && (oyh_q - a < CoordBits'(OutHeight)) &&
                  (b <= oxh_q) && (oxh_q - b < CoordBits'(OutWidth));
      tap_addr[AddrBits-1:0] = AddrBits'(((Wide'(g_q) * Wide'(InChannels) + Wide'(c_q))
                                           * Wide'(Kernel) + Wide'(dy)) * Wide'(Kernel) + Wide'(dx));
      tap_slot  = SlotBits'(Wide'(g_q) * Wide'(Positions) + Wide'(oyh_q - a) * Wide'(OutWidth)
                            + Wide'(oxh_q - b));
    end else begin
      tap_valid = issue_q;
      for (int k = 0; k < Ways; k++) begin
        tap_addr[k*AddrBits +: AddrBits] = AddrBits'(Wide'(g_q) * Wide'(InCount)
                                                     + Wide'(idx_q[k*IdxBits +: IdxBits]));
      end
      tap_slot  = SlotBits'(g_q);
    end
  end

  // ---------------------------------------------------------------- pipeline

  // Operand of every way (0 for an absent way, so it adds nothing).
  if (UseOperandTable) begin : g_table
    logic [OperandBits-1:0] operand_rom [0:OperandEntries-1];
    initial begin
      $readmemh(OperandFile, operand_rom);
    end
    for (genvar k = 0; k < Ways; k++) begin : g_way
      assign operand[k*OperandBits +: OperandBits] =
          s1_ways_q[k] ? operand_rom[s1_code_q[k*CodeBits +: CodeBits]] : '0;
    end
  end else begin : g_code
    for (genvar k = 0; k < Ways; k++) begin : g_way
      assign operand[k*OperandBits +: OperandBits] =
          s1_ways_q[k] ? OperandBits'(s1_code_q[k*CodeBits +: CodeBits]) : '0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      issue_q   <= 1'b0;
      g_q       <= '0;
      a_q       <= '0;
      b_q       <= '0;
      code_q    <= '0;
      ways_q    <= '0;
      last_q    <= '0;
      started_q <= '0;
      s1_q      <= 1'b0;
      s2_q      <= 1'b0;
      s3_q      <= 1'b0;
      s4_q      <= 1'b0;
      idx_q     <= '0;
      c_q       <= '0;
      oyh_q     <= '0;
      dy0_q     <= '0;
      oxh_q     <= '0;
      dx0_q     <= '0;
    end else if (clear_i) begin
      issue_q   <= 1'b0;
      last_q    <= '0;
      started_q <= '0;
      s1_q      <= 1'b0;
      s2_q      <= 1'b0;
      s3_q      <= 1'b0;
      s4_q      <= 1'b0;
    end else begin
      issue_q   <= issue_d;
      g_q       <= g_d;
      a_q       <= a_d;
      b_q       <= b_d;
      last_q    <= last_d;
      started_q <= started_d;
      s1_q      <= tap_valid;
      s2_q      <= s1_q;
      s3_q      <= s2_q;
      s4_q      <= s3_q;
      idx_q     <= idx_d;
      c_q       <= c_d;
      oyh_q     <= oyh_d;
      dy0_q     <= dy0_d;
      oxh_q     <= oxh_d;
      dx0_q     <= dx0_d;
      if (accept && !evt_last_i) begin
        code_q <= evt_code_i;
        ways_q <= evt_ways_i;
      end
    end
  end

  // Data path registers without reset: the ROM read (block RAM), its output register, the
  // membrane read for the fire scan / readout.
  always_ff @(posedge clk_i) begin
    addr_q       <= tap_addr;
    s1_slot_q    <= tap_slot;
    s1_grp_q     <= g_q;
    s1_code_q    <= code_q;
    s1_ways_q    <= ways_q;
    s2_slot_q    <= s1_slot_q;
    s2_grp_q     <= s1_grp_q;
    s2_operand_q <= operand;
    weight_q     <= rom_q;
    s3_slot_q    <= s2_slot_q;
    s3_grp_q     <= s2_grp_q;
    s3_operand_q <= s2_operand_q;
    s4_slot_q    <= s3_slot_q;
    s4_grp_q     <= s3_grp_q;
  end

  // One ROM read port per way (a dual-port block RAM for two ways).
  for (genvar k = 0; k < Ways; k++) begin : g_rom
    always_ff @(posedge clk_i) begin
      rom_q[k*NumPe*WeightBits +: NumPe*WeightBits] <= weight_rom[addr_q[k*AddrBits +: AddrBits]];
    end
  end

  // Membrane reads: the tap in stage s3 while integrating, the scan/readout slot once the end
  // marker has drained (one cycle before done_o, so the first slot is ready with it).
  logic [SlotBits-1:0]  rd_slot;
  logic                 read_started_q;
  logic [GroupBits-1:0] read_grp_q;

  assign rd_slot = last_q[Depth-1] ? read_slot_i : s3_slot_q;

  always_ff @(posedge clk_i) begin
    read_started_q <= started_q[read_slot_i];
    read_grp_q     <= read_group_i;
  end

  for (genvar p = 0; p < NumPe; p++) begin : g_pe
    logic signed [AccBits-1:0]    mem;
    logic [Ways*WeightBits-1:0]   weights;
    for (genvar k = 0; k < Ways; k++) begin : g_way
      assign weights[k*WeightBits +: WeightBits] =
          weight_q[(k*NumPe + p)*WeightBits +: WeightBits];
    end

    ttfs_pe #(
      .Slots       (Slots),
      .SlotBits    (SlotBits),
      .WeightBits  (WeightBits),
      .OperandBits (OperandBits),
      .AccBits     (AccBits),
      .Ways        (Ways)
    ) u_pe (
      .clk_i,
      .rd_slot_i     (rd_slot),
      .acc_en_i      (s4_q),
      .acc_slot_i    (s4_slot_q),
      .acc_started_i (started_q[s4_slot_q]),
      .acc_bias_i    (bias_rom[s4_grp_q][p*AccBits +: AccBits]),
      .weight_i      (weights),
      .operand_i     (s3_operand_q),
      .mem_o         (mem)
    );

    assign v_mem_o[p*AccBits +: AccBits] = read_started_q ? mem
                                                          : bias_rom[read_grp_q][p*AccBits +: AccBits];
  end

endmodule

`default_nettype wire
