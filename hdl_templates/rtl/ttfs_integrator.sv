// Integration half of a layer engine (dense, conv2d or output). NumPe processing elements hold
// the membranes: lane p of group g is output channel (or neuron) c = g * NumPe + p, and each PE
// keeps one membrane per (group, position) slot, slot = g * Positions + position (dense layers
// have one position). An accepted input event (index i, code) is held while it issues Iters
// cycles, one (group, tap row) pair per cycle:
//   dense: Iters = Groups, tap = the event itself: weight word g * InCount + i, slot g;
//   conv:  the event at (c, y, x) reaches the output rows oy = oyh - a with kernel row
//          dy = dy0 + a * Stride (oyh = (y + Padding) / Stride, dy0 = (y + Padding) % Stride,
//          a = 0..Reach-1, Reach = ceil(Kernel / Stride)), likewise the columns ox = oxh - b
//          with dx = dx0 + b * Stride; taps outside the kernel or the output are issued but not
//          accumulated, so the cost never depends on the position.
//          Taps = 1: one column b per cycle, Iters = Groups * Reach * Reach; weight word
//            ((g * InChannels + c) * Kernel + dy) * Kernel + dx, one membrane bank.
//          Taps = Reach (column-parallel): all Reach columns of a kernel row per cycle,
//            Iters = Groups * Reach. The membranes of each PE are split into Taps banks by
//            output column, bank k = ox mod Taps at bank slot
//            (g * OutHeight + oy) * BankWidth + ox / Taps (BankWidth = ceil(OutWidth / Taps)),
//            so the Reach columns of one row land in different banks (one multiplier each).
//            With r = oxh mod Taps, bank k takes column b = (r - k) mod Taps, at bank column
//            oxh / Taps - (k > r). The weight word
//            ((((g * InChannels + c) * Kernel + dy) * Stride + dx0) * Taps + r) holds, for
//            bank k and lane p, the weight of kernel column dx0 + ((r - k) mod Taps) * Stride
//            (0 past the kernel): the ROM is stored pre-rotated, no crossbar.
// Every lane adds weight * operand(code) to its membrane of the slot, where operand(code) is the
// code itself (pixel bytes) or OperandTable[code] (kernel value of a spike time). Pipeline, one
// register stage each: issue (counters) -> s1 address register (one per ROM chunk) -> s2 ROM
// read (block RAM, no output register) -> s3 registered ROM output (a flip-flop stage of its
// own, placeable next to the block RAM) -> s4 weight and operand registers in the PE -> s5
// product register per way -> s6 sum of the ways and accumulate (ttfs_pe). The next event is accepted while the last tap of
// the current one issues, so an event costs exactly Iters cycles. The end marker (evt_last_i)
// passes the pipeline and one more cycle for the membrane read (membranes live in one
// synchronous-read memory per PE and bank, block RAM for large layers): done_o rises
// DrainCycles = 8 cycles after the marker was taken, then stays high while v_mem_o holds the
// membranes of (read_slot_i, read_group_i) named in the previous cycle, until release_i rearms
// the layer. read_slot_i steps by one or returns to 0 (the scan's order; with Taps > 1 the bank
// and bank slot of the flat slot follow it by counting). A slot not accumulated since the
// release reads as its bias (no clearing pass).
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
  parameter int Ways            = 1,    // events integrated together (dense only: 1 or 2)
  parameter int Taps            = 1,    // conv: kernel columns per cycle, 1 or ceil(K / Stride)
  parameter int DspPe           = 1 << 20,  // lanes p >= DspPe multiply in logic (ttfs_pe LutMul)
  parameter     MemStyle        = "auto"    // ram_style of every membrane bank (ttfs_pe)
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
  localparam int Steps     = Reach / Taps;               // column steps per kernel row
  localparam int BankWidth = (OutWidth + Taps - 1) / Taps;
  localparam int BankSlots = (Taps > 1) ? Groups * OutHeight * BankWidth : Slots;
  localparam int BankBits  = (BankSlots > 1) ? $clog2(BankSlots) : 1;
  localparam int TapBits   = (Taps > 1) ? $clog2(Taps) : 1;
  localparam int Words     = !Conv ? Groups * InCount
                           : (Taps > 1) ? Groups * InChannels * Kernel * Stride * Taps
                                        : Groups * InChannels * Kernel * Kernel;
  localparam int WordBits  = Taps * NumPe * WeightBits;  // bank k, lane p at (k*NumPe+p)*WB
  localparam int AddrBits  = (Words > 1) ? $clog2(Words) : 1;
  localparam int ReachBits = (Reach > 1) ? $clog2(Reach) : 1;
  localparam int Depth     = 7;   // marker taken -> done: 6 pipeline stages + membrane read
  // Narrow arithmetic (divisions by constants stay small): DecBits holds an input index and
  // the channel size, CoordBits a padded coordinate and every tap offset, Wide an address.
  localparam int DecBits   = $clog2(InCount + 1) + 1;
  localparam int CoordBits = $clog2((InHeight > InWidth ? InHeight : InWidth) + Padding
                                    + Kernel + Stride + Taps + 1) + 1;
  localparam int Wide      = $clog2((Words > Slots ? Words : Slots) + 1) + 1;

  // The weight ROM is read in chunks of 16 lanes' weights (the word's bits
  // [c * ChunkBits +: ChunkBits]), each through its own address register per way: one address
  // register driving every block RAM of a wide ROM is a net across the whole chip (measured:
  // 16.5 ns of routing at 64 lanes x 2 ways). Every chunk is a memory loaded from the whole
  // WeightFile of which only its bits are read, so synthesis keeps just those columns.
  localparam int ClusterLanes = 16;   // lanes per ROM chunk and per cluster of kept copies
  localparam int ChunkBits = ClusterLanes * WeightBits;
  localparam int Chunks    = (WordBits + ChunkBits - 1) / ChunkBits;

  logic [NumPe*AccBits-1:0] bias_rom   [0:Groups-1];

  initial begin
    $readmemh(BiasFile, bias_rom);
  end

  // ---------------------------------------------------------------- issue: held event, counters
  logic                 issue_q, issue_d, last_tap, last_tap_d, accept;
  logic [GroupBits-1:0] g_q, g_d;
  logic [ReachBits-1:0] a_q, a_d, b_q, b_d;
  logic [Ways*CodeBits-1:0] code_q;
  logic [Ways-1:0]      ways_q;
  // held event: dense: idx (the input index); conv: c, oyh, dy0, oxh, dx0 and, with Taps > 1,
  // oxq = oxh / Taps, oxr = oxh % Taps (see above)
  logic [Ways*IdxBits-1:0] idx_q, idx_d;
  logic [IdxBits-1:0]   c_q, c_d;
  logic [CoordBits-1:0] oyh_q, oyh_d, dy0_q, dy0_d, oxh_q, oxh_d, dx0_q, dx0_d;
  logic [CoordBits-1:0] oxq_q, oxq_d, oxr_q, oxr_d;
  logic [Depth:0]       last_q, last_d;   // end marker taken 1..Depth+1 cycles ago
  logic [Taps*BankSlots-1:0] started_q, started_d;   // bank k's slot s at k * BankSlots + s
  logic [Taps-1:0]      tap_valid;
  logic [Ways*AddrBits-1:0] tap_addr;
  logic [Taps*BankBits-1:0] tap_slot;
  // pipeline: s1 address, s2 ROM output, s3 registered ROM output, s4-s6 in the PEs (weight
  // and operand, product per way, accumulate); per bank a valid bit and a bank slot
  logic [Taps-1:0]             s1_q, s2_q, s3_q, s4_q, s5_q, s6_q;
  logic [Taps*BankBits-1:0]    s1_slot_q, s2_slot_q, s3_slot_q, s4_slot_q, s5_slot_q, s6_slot_q;
  logic [GroupBits-1:0]        s1_grp_q, s2_grp_q, s3_grp_q;   // s4, s5: per cluster (below)
  logic [Ways*CodeBits-1:0]    s1_code_q;
  logic [Ways-1:0]             s1_ways_q;
  logic [Ways*OperandBits-1:0] operand, s2_operand_q;
  logic [Ways*WordBits-1:0]    rom_q, weight_q;   // way k at [k*WordBits +:]

  // last_tap = issue_q && the counters at their last tap, kept in a flip-flop (computed from
  // the counters' next values) so that evt_ready_o, the root of the producers' handshake
  // logic, is one gate from flip-flops
  assign last_tap_d  = issue_d && (g_d == GroupBits'(Groups - 1)) &&
                       (a_d == ReachBits'(Reach - 1)) && (b_d == ReachBits'(Steps - 1));
  assign evt_ready_o = !last_q[0] && (!issue_q || last_tap);
  assign accept      = evt_valid_i && evt_ready_o;
  assign done_o      = last_q[Depth];

  // Decode of the accepted index (divisions by constants: small fixed logic).
  always_comb begin
    logic [DecBits-1:0]   idx, rem;
    logic [CoordBits-1:0] y, x, ox;
    idx   = DecBits'(evt_index_i[IdxBits-1:0]);
    rem   = idx % DecBits'(InHeight * InWidth);
    y     = CoordBits'(rem / DecBits'(InWidth)) + CoordBits'(Padding);
    x     = CoordBits'(rem % DecBits'(InWidth)) + CoordBits'(Padding);
    ox    = x / CoordBits'(Stride);
    idx_d = idx_q;
    c_d   = c_q;
    oyh_d = oyh_q;
    dy0_d = dy0_q;
    oxh_d = oxh_q;
    dx0_d = dx0_q;
    oxq_d = oxq_q;
    oxr_d = oxr_q;
    if (accept && !evt_last_i) begin
      idx_d = evt_index_i;
      c_d   = IdxBits'(idx / DecBits'(InHeight * InWidth));
      oyh_d = y / CoordBits'(Stride);
      dy0_d = y % CoordBits'(Stride);
      oxh_d = ox;
      dx0_d = x % CoordBits'(Stride);
      oxq_d = ox / CoordBits'(Taps);
      oxr_d = ox % CoordBits'(Taps);
    end
  end

  always_comb begin
    issue_d   = issue_q && !last_tap;
    g_d       = g_q;
    a_d       = a_q;
    b_d       = b_q;
    last_d    = {last_q[Depth-1:0], last_q[0]};
    started_d = started_q;
    for (int k = 0; k < Taps; k++) begin
      if (s6_q[k]) begin
        started_d[k*BankSlots + 32'(s6_slot_q[k*BankBits +: BankBits])] = 1'b1;
      end
    end
    if (issue_q) begin
      if (b_q != ReachBits'(Steps - 1)) begin
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

  // ---------------------------------------------------------------- tap row -> address, slots

  always_comb begin
    logic [CoordBits-1:0] dy, dx, a, b, col;
    logic                 row_ok;
    a         = CoordBits'(a_q);
    dy        = dy0_q + a * CoordBits'(Stride);
    row_ok    = issue_q && (dy < CoordBits'(Kernel)) && (a <= oyh_q) &&
                (oyh_q - a < CoordBits'(OutHeight));
    tap_addr  = '0;
    tap_valid = '0;
    tap_slot  = '0;
    if (Conv) begin
      for (int k = 0; k < Taps; k++) begin
        if (Taps == 1) begin
          b   = CoordBits'(b_q);
          col = oxh_q - b;
        end else begin
          b   = (oxr_q >= CoordBits'(k)) ? oxr_q - CoordBits'(k)
                                         : oxr_q + CoordBits'(Taps - k);
          col = oxq_q - CoordBits'(CoordBits'(k) > oxr_q);
        end
        dx           = dx0_q + b * CoordBits'(Stride);
        tap_valid[k] = row_ok && (dx < CoordBits'(Kernel)) && (b <= oxh_q) &&
                       (oxh_q - b < CoordBits'(OutWidth));
        tap_slot[k*BankBits +: BankBits] =
            BankBits'((Wide'(g_q) * Wide'(OutHeight) + Wide'(oyh_q - a)) * Wide'(BankWidth)
                      + Wide'(col));
      end
      if (Taps == 1) begin
        dx = dx0_q + CoordBits'(b_q) * CoordBits'(Stride);
        tap_addr[AddrBits-1:0] = AddrBits'(((Wide'(g_q) * Wide'(InChannels) + Wide'(c_q))
                                             * Wide'(Kernel) + Wide'(dy)) * Wide'(Kernel)
                                            + Wide'(dx));
      end else begin
        tap_addr[AddrBits-1:0] = AddrBits'((((Wide'(g_q) * Wide'(InChannels) + Wide'(c_q))
                                              * Wide'(Kernel) + Wide'(dy)) * Wide'(Stride)
                                             + Wide'(dx0_q)) * Wide'(Taps) + Wide'(oxr_q));
      end
    end else begin
      tap_valid[0] = issue_q;
      for (int k = 0; k < Ways; k++) begin
        tap_addr[k*AddrBits +: AddrBits] = AddrBits'(Wide'(g_q) * Wide'(InCount)
                                                     + Wide'(idx_q[k*IdxBits +: IdxBits]));
      end
      tap_slot[BankBits-1:0] = BankBits'(g_q);
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
      last_tap  <= 1'b0;
      g_q       <= '0;
      a_q       <= '0;
      b_q       <= '0;
      code_q    <= '0;
      ways_q    <= '0;
      last_q    <= '0;
      started_q <= '0;
      s1_q      <= '0;
      s2_q      <= '0;
      s3_q      <= '0;
      s4_q      <= '0;
      s5_q      <= '0;
      s6_q      <= '0;
      idx_q     <= '0;
      c_q       <= '0;
      oyh_q     <= '0;
      dy0_q     <= '0;
      oxh_q     <= '0;
      dx0_q     <= '0;
      oxq_q     <= '0;
      oxr_q     <= '0;
    end else if (clear_i) begin
      issue_q   <= 1'b0;
      last_tap  <= 1'b0;
      last_q    <= '0;
      started_q <= '0;
      s1_q      <= '0;
      s2_q      <= '0;
      s3_q      <= '0;
      s4_q      <= '0;
      s5_q      <= '0;
      s6_q      <= '0;
    end else begin
      issue_q   <= issue_d;
      last_tap  <= last_tap_d;
      g_q       <= g_d;
      a_q       <= a_d;
      b_q       <= b_d;
      last_q    <= last_d;
      started_q <= started_d;
      s1_q      <= tap_valid;
      s2_q      <= s1_q;
      s3_q      <= s2_q;
      s4_q      <= s3_q;
      s5_q      <= s4_q;
      s6_q      <= s5_q;
      idx_q     <= idx_d;
      c_q       <= c_d;
      oyh_q     <= oyh_d;
      dy0_q     <= dy0_d;
      oxh_q     <= oxh_d;
      dx0_q     <= dx0_d;
      oxq_q     <= oxq_d;
      oxr_q     <= oxr_d;
      if (accept && !evt_last_i) begin
        code_q <= evt_code_i;
        ways_q <= evt_ways_i;
      end
    end
  end

  // Data path registers without reset: the ROM read (block RAM), its output register, the
  // membrane read for the fire scan / readout.
  always_ff @(posedge clk_i) begin
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
    s4_slot_q    <= s3_slot_q;
    s5_slot_q    <= s4_slot_q;
    s6_slot_q    <= s5_slot_q;
  end

  // One ROM read port per way and chunk (a dual-port block RAM for two ways).
  for (genvar c = 0; c < Chunks; c++) begin : g_rom
    localparam int Lo    = c * ChunkBits;
    localparam int Width = (WordBits - Lo < ChunkBits) ? WordBits - Lo : ChunkBits;
    logic [WordBits-1:0] weight_rom [0:Words-1];
    initial begin
      $readmemh(WeightFile, weight_rom);
    end
    for (genvar k = 0; k < Ways; k++) begin : g_way
      logic [AddrBits-1:0] addr_q;
      // kept: one address register per chunk, not merged back into one of a large fanout
      (* keep *) always_ff @(posedge clk_i) begin
        addr_q <= tap_addr[k*AddrBits +: AddrBits];
      end
      always_ff @(posedge clk_i) begin
        rom_q[k*WordBits + Lo +: Width] <= weight_rom[addr_q][Lo +: Width];
      end
    end
  end

  // Membrane reads: the tap in stage s5 while integrating, the scan/readout slot once the end
  // marker has drained (one cycle before done_o, so the first slot is ready with it). The flat
  // read slot names bank rd_bank, bank slot rd_bank_slot.
  logic [BankBits-1:0]  rd_bank_slot;
  logic [TapBits-1:0]   rd_bank, read_bank_q;
  logic                 reading, read_started;

  assign reading = last_q[Depth-1];

  if (Taps == 1) begin : g_flat
    assign rd_bank_slot = BankBits'(read_slot_i);
    assign rd_bank      = '0;
  end else begin : g_banked
    // Follows read_slot_i (steps of one, or back to 0): column ox, its bank ox % Taps, bank
    // column ox / Taps, and the bank slot of column 0 of the row, (g * OutHeight + oy) *
    // BankWidth.
    logic [SlotBits-1:0]  slot_q;
    logic [CoordBits-1:0] ox_q, ox_d, col_q, col_d;
    logic [TapBits-1:0]   bank_q, bank_d;
    logic [BankBits-1:0]  row_q, row_d;

    always_comb begin
      ox_d   = ox_q;
      col_d  = col_q;
      bank_d = bank_q;
      row_d  = row_q;
      if (read_slot_i == '0) begin
        ox_d   = '0;
        col_d  = '0;
        bank_d = '0;
        row_d  = '0;
      end else if (read_slot_i != slot_q) begin
        if (ox_q == CoordBits'(OutWidth - 1)) begin
          ox_d   = '0;
          col_d  = '0;
          bank_d = '0;
          row_d  = row_q + BankBits'(BankWidth);
        end else begin
          ox_d = ox_q + 1'b1;
          if (bank_q == TapBits'(Taps - 1)) begin
            bank_d = '0;
            col_d  = col_q + 1'b1;
          end else begin
            bank_d = bank_q + 1'b1;
          end
        end
      end
    end

    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        slot_q <= '0;
        ox_q   <= '0;
        col_q  <= '0;
        bank_q <= '0;
        row_q  <= '0;
      end else begin
        slot_q <= read_slot_i;
        ox_q   <= ox_d;
        col_q  <= col_d;
        bank_q <= bank_d;
        row_q  <= row_d;
      end
    end

    assign rd_bank_slot = row_d + BankBits'(col_d);
    assign rd_bank      = bank_d;
  end

  assign read_started = started_q[32'(rd_bank) * BankSlots + 32'(rd_bank_slot)];
  always_ff @(posedge clk_i) begin
    read_bank_q <= rd_bank;
  end

  // Per cluster of 16 lanes, kept copies of what every lane takes: the operand (stage s3), the
  // taps' valid bits, bank slots and groups (s4, s5), the read slot's started bit and group
  // (the v_mem_o selects). Each net then reaches 16 lanes, not all of them (measured: the one
  // operand register of 128 lanes x 2 ways was a net of 20 ns of routing).
  localparam int Clusters = (NumPe + ClusterLanes - 1) / ClusterLanes;
  localparam int OpBits   = Ways * OperandBits;
  localparam int SlotW    = Taps * BankBits;
  logic [Clusters*OpBits-1:0]    c_operand_q;
  logic [Clusters*Taps-1:0]      c_s4_q, c_s5_q;
  logic [Clusters*SlotW-1:0]     c_s4_slot_q, c_s5_slot_q;
  logic [Clusters*GroupBits-1:0] c_s4_grp_q, c_s5_grp_q, c_read_grp_q;
  logic [Clusters-1:0]           c_read_started_q;

  for (genvar c = 0; c < Clusters; c++) begin : g_cluster
    (* keep *) always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        c_s4_q[c*Taps +: Taps] <= '0;
        c_s5_q[c*Taps +: Taps] <= '0;
      end else if (clear_i) begin
        c_s4_q[c*Taps +: Taps] <= '0;
        c_s5_q[c*Taps +: Taps] <= '0;
      end else begin
        c_s4_q[c*Taps +: Taps] <= s3_q;
        c_s5_q[c*Taps +: Taps] <= c_s4_q[c*Taps +: Taps];
      end
    end
    (* keep *) always_ff @(posedge clk_i) begin
      c_operand_q[c*OpBits +: OpBits]          <= s2_operand_q;
      c_s4_slot_q[c*SlotW +: SlotW]            <= s3_slot_q;
      c_s5_slot_q[c*SlotW +: SlotW]            <= c_s4_slot_q[c*SlotW +: SlotW];
      c_s4_grp_q[c*GroupBits +: GroupBits]     <= s3_grp_q;
      c_s5_grp_q[c*GroupBits +: GroupBits]     <= c_s4_grp_q[c*GroupBits +: GroupBits];
      c_read_started_q[c]                      <= read_started;
      c_read_grp_q[c*GroupBits +: GroupBits]   <= read_group_i;
    end
  end

  for (genvar p = 0; p < NumPe; p++) begin : g_pe
    localparam int C = p / ClusterLanes;   // cluster
    logic [Taps*AccBits-1:0] mem;   // bank k at [k*AccBits +:]
    logic [GroupBits-1:0]    grp, read_grp;
    assign grp      = c_s5_grp_q[C*GroupBits +: GroupBits];
    assign read_grp = c_read_grp_q[C*GroupBits +: GroupBits];

    for (genvar k = 0; k < Taps; k++) begin : g_bank
      logic [Ways*WeightBits-1:0] weights;
      logic signed [AccBits-1:0]  bank_mem;
      for (genvar w = 0; w < Ways; w++) begin : g_way
        assign weights[w*WeightBits +: WeightBits] =
            weight_q[w*WordBits + (k*NumPe + p)*WeightBits +: WeightBits];
      end

      logic [BankBits-1:0] slot;
      assign slot = c_s5_slot_q[C*SlotW + k*BankBits +: BankBits];

      ttfs_pe #(
        .Slots       (BankSlots),
        .SlotBits    (BankBits),
        .WeightBits  (WeightBits),
        .OperandBits (OperandBits),
        .AccBits     (AccBits),
        .Ways        (Ways),
        .LutMul      (p >= DspPe),
        .MemStyle    (MemStyle)
      ) u_pe (
        .clk_i,
        .rd_slot_i     (reading ? rd_bank_slot : slot),
        .tap_en_i      (c_s5_q[C*Taps + k]),
        .tap_slot_i    (slot),
        .tap_started_i (started_q[k*BankSlots + 32'(slot)]),
        .tap_bias_i    (bias_rom[grp][p*AccBits +: AccBits]),
        .weight_i      (weights),
        .operand_i     (c_operand_q[C*OpBits +: OpBits]),
        .mem_o         (bank_mem)
      );
      assign mem[k*AccBits +: AccBits] = bank_mem;
    end

    assign v_mem_o[p*AccBits +: AccBits] =
        c_read_started_q[C] ? mem[32'(read_bank_q)*AccBits +: AccBits]
                            : bias_rom[read_grp][p*AccBits +: AccBits];
  end

endmodule

`default_nettype wire
