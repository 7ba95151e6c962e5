// Spiking layer engine (dense or conv2d): a ttfs_integrator followed by the fire scan. After the
// end marker of its input, the scan (ttfs_scan) reads slot by slot the membranes of all NumPe
// lanes; the spike time of a membrane v is the first t in [0, T-1] with v >= Theta[t]:
//   parallel fire (FireSerial = 0): t_spike = #{t : v < Theta[t]} with T compares per lane
//     (Theta is non-increasing, so the steps below threshold form a prefix; t_spike = T means
//     no spike), one slot per cycle; the compares are registered in the scan (MaskReg) before
//     the arbiter encodes them (scan fill 2 cycles);
//   serial fire (FireSerial = 1): one compare per lane stepping t = 0..T-1, T + 4 cycles per
//     slot from one slot's load to the next one's offer (the scan names the read slot from
//     flip-flops, ReadReg: the next slot is captured two cycles after the load; after the
//     compares one settle cycle, so the scan's arbiter takes the slot from registers of the
//     final fire mask, PreEnc; overlapped with the previous slot's events): for wide, few-slot
//     layers. Spiking lanes leave as events (neuron index, t_spike); events are in neuron
// order, not in time order: consumers integrate, and integration does not depend on order.
// Padded lanes (channel >= the layer's) have zero weights and bias and Theta >= 1: never spike.
`default_nettype none

module ttfs_layer #(
  parameter int NumPe           = 4,
  parameter int Groups          = 3,
  parameter int Positions       = 1,
  parameter int SlotBits        = 2,
  parameter int GroupBits       = 2,
  parameter bit Conv            = 1'b0,
  parameter int InCount         = 16,
  parameter int InChannels      = 1,
  parameter int InHeight        = 1,
  parameter int InWidth         = 1,
  parameter int Kernel          = 1,
  parameter int Stride          = 1,
  parameter int Padding         = 0,
  parameter int OutHeight       = 1,
  parameter int OutWidth        = 1,
  parameter bit FireSerial      = 1'b0, // 1: one compare per lane and cycle (T + 4 per slot)
  parameter int T               = 8,
  parameter int TimeBits        = 3,    // max(1, clog2(T))
  parameter int OutIdxBits      = 4,    // max(1, clog2(neurons))
  parameter int IdxBits         = 4,
  parameter int CodeBits        = 8,
  parameter bit UseOperandTable = 1'b0,
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = "",
  parameter     ThetaFile       = "",
  parameter int Ways            = 1,    // events per input handshake (dense only: 1 or 2)
  parameter int OutWays         = 1,    // events per output handshake (1 or 2)
  parameter int Taps            = 1,    // conv: kernel columns per cycle (ttfs_integrator)
  parameter int DspPe           = 1 << 20,  // lanes from DspPe on multiply in logic
  parameter     MemStyle        = "auto"    // ram_style of the membranes (ttfs_pe)
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  input  wire logic                  clear_i,
  input  wire logic                  evt_valid_i,
  output      logic                  evt_ready_o,
  input  wire logic                  evt_last_i,
  input  wire logic [Ways-1:0]       evt_ways_i,
  input  wire logic [Ways*IdxBits-1:0] evt_index_i,
  input  wire logic [Ways*CodeBits-1:0] evt_code_i,
  output      logic                  evt_valid_o,
  input  wire logic                  evt_ready_i,
  output      logic                  evt_last_o,
  output      logic [OutWays-1:0]    evt_ways_o,
  output      logic [OutWays*OutIdxBits-1:0] evt_index_o,
  output      logic [OutWays*TimeBits-1:0] evt_code_o
);

  localparam int CountBits = $clog2(T + 1);   // holds 0..T

  logic signed [AccBits-1:0] theta_rom [0:T-1];
  initial begin
    $readmemh(ThetaFile, theta_rom);
  end

  logic                       integrated, release_layer;
  logic [SlotBits-1:0]        read_slot;
  logic [GroupBits-1:0]       read_group;
  logic [NumPe*AccBits-1:0]   v_mem;
  logic [NumPe-1:0]           fires;
  logic [NumPe*TimeBits-1:0]  t_spike;
  logic                       avail, scan_more, scan_load;

  ttfs_integrator #(
    .NumPe           (NumPe),
    .Groups          (Groups),
    .Positions       (Positions),
    .SlotBits        (SlotBits),
    .GroupBits       (GroupBits),
    .Conv            (Conv),
    .InCount         (InCount),
    .InChannels      (InChannels),
    .InHeight        (InHeight),
    .InWidth         (InWidth),
    .Kernel          (Kernel),
    .Stride          (Stride),
    .Padding         (Padding),
    .OutHeight       (OutHeight),
    .OutWidth        (OutWidth),
    .IdxBits         (IdxBits),
    .CodeBits        (CodeBits),
    .UseOperandTable (UseOperandTable),
    .OperandEntries  (OperandEntries),
    .OperandBits     (OperandBits),
    .WeightBits      (WeightBits),
    .AccBits         (AccBits),
    .OperandFile     (OperandFile),
    .WeightFile      (WeightFile),
    .BiasFile        (BiasFile),
    .Ways            (Ways),
    .Taps            (Taps),
    .DspPe           (DspPe),
    .MemStyle        (MemStyle)
  ) u_integrator (
    .clk_i,
    .rst_ni,
    .clear_i,
    .evt_valid_i,
    .evt_ready_o,
    .evt_last_i,
    .evt_ways_i,
    .evt_index_i,
    .evt_code_i,
    .done_o       (integrated),
    .release_i    (release_layer),
    .read_slot_i  (read_slot),
    .read_group_i (read_group),
    .v_mem_o      (v_mem)
  );

  if (!FireSerial) begin : g_parallel
    // Parallel fire: every lane against every threshold, one slot per cycle.
    for (genvar p = 0; p < NumPe; p++) begin : g_lane
      logic [CountBits-1:0] below;
      always_comb begin
        below = '0;
        for (int t = 0; t < T; t++) begin
          below = below + CountBits'($signed(v_mem[p*AccBits +: AccBits]) < theta_rom[t]);
        end
      end
      assign fires[p]                        = below != CountBits'(T);
      assign t_spike[p*TimeBits +: TimeBits] = TimeBits'(below);
    end
    assign avail = 1'b1;
    logic unused_more;
    assign unused_more = scan_more ^ scan_load;
  end else begin : g_serial
    // Serial fire: one compare per lane and cycle against the broadcast Theta[t]. The slot the
    // scan loads next is captured from v_mem (held there since the scan named it), stepped
    // through t = 0..T-1 (the first crossing is the spike time), then offered (avail).
    logic                      run_q, settle_q, avail_q, capture, loaded_q;
    logic [CountBits-1:0]      t_q;
    logic [NumPe*AccBits-1:0]  hold_q;
    logic [NumPe-1:0]          found_q;
    logic [NumPe*TimeBits-1:0] time_q;
    // Per cluster of 16 lanes, kept copies of the broadcast run flag, step and threshold
    // Theta[t] (read one cycle ahead), so each net reaches 16 lanes, not all of them
    localparam int Clusters = (NumPe + 15) / 16;
    logic                         run_d;
    logic [TimeBits-1:0]          t_d;   // low bits of t_q's next value
    logic signed [AccBits-1:0]    theta_d;
    logic [Clusters-1:0]          c_run_q;
    logic [Clusters*TimeBits-1:0] c_t_q;
    logic [Clusters*AccBits-1:0]  c_theta_q;

    // loaded_q: the scan loaded a slot in the previous cycle, so v_mem shows the next slot
    // (read from the registered read slot) only from this cycle on
    assign capture = integrated && scan_more && !run_q && !settle_q && !avail_q && !loaded_q;
    assign avail   = avail_q;
    assign fires   = found_q;
    assign t_spike = time_q;

    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        run_q    <= 1'b0;
        settle_q <= 1'b0;
        avail_q  <= 1'b0;
        loaded_q <= 1'b0;
        t_q      <= '0;
      end else if (clear_i) begin
        run_q    <= 1'b0;
        settle_q <= 1'b0;
        avail_q  <= 1'b0;
        loaded_q <= 1'b0;
        t_q      <= '0;
      end else begin
        loaded_q <= scan_load;
        settle_q <= run_q && (t_q == CountBits'(T - 1));   // fire mask final: offer next cycle
        if (settle_q) begin
          avail_q <= 1'b1;
        end
        if (scan_load) begin
          avail_q <= 1'b0;
        end
        if (capture) begin
          run_q   <= 1'b1;
          t_q     <= '0;
        end else if (run_q) begin
          t_q <= t_q + 1'b1;
          if (t_q == CountBits'(T - 1)) begin
            run_q <= 1'b0;
          end
        end
      end
    end

    // next values of run_q and t_q (as the block above), and the threshold of the next step
    assign run_d   = !clear_i && (capture || (run_q && (t_q != CountBits'(T - 1))));
    assign t_d     = (clear_i || capture) ? '0 : run_q ? TimeBits'(t_q + 1'b1)
                                                      : t_q[TimeBits-1:0];
    assign theta_d = (capture || (t_q == CountBits'(T - 1))) ? theta_rom[0]
                                                              : theta_rom[TimeBits'(t_q + 1'b1)];

    for (genvar c = 0; c < Clusters; c++) begin : g_cluster
      (* keep *) always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          c_run_q[c] <= 1'b0;
        end else begin
          c_run_q[c] <= run_d;
        end
      end
      (* keep *) always_ff @(posedge clk_i) begin
        c_t_q[c*TimeBits +: TimeBits]  <= t_d;
        c_theta_q[c*AccBits +: AccBits] <= theta_d;
      end
    end

    for (genvar p = 0; p < NumPe; p++) begin : g_lane
      localparam int C = p / 16;   // cluster
      always_ff @(posedge clk_i) begin
        // hold_q follows v_mem until a run starts, so it holds the captured slot (its enable is
        // a run flag, not the capture decision: a net to every lane's accumulator bits)
        if (!c_run_q[C]) begin
          hold_q[p*AccBits +: AccBits] <= v_mem[p*AccBits +: AccBits];
        end
        if (capture) begin
          found_q[p]                     <= 1'b0;
          time_q[p*TimeBits +: TimeBits] <= '0;
        end else if (c_run_q[C] && !found_q[p] &&
                     ($signed(hold_q[p*AccBits +: AccBits]) >=
                      $signed(c_theta_q[C*AccBits +: AccBits]))) begin
          found_q[p]                      <= 1'b1;
          time_q[p*TimeBits +: TimeBits] <= c_t_q[C*TimeBits +: TimeBits];
        end
      end
    end
  end

  ttfs_scan #(
    .Lanes      (NumPe),
    .Groups     (Groups),
    .Positions  (Positions),
    .SlotBits   (SlotBits),
    .GroupBits  (GroupBits),
    .CodeBits   (TimeBits),
    .OutIdxBits (OutIdxBits),
    .Ways       (OutWays),
    .MaskReg    (!FireSerial),  // parallel fire: compares registered before the arbiter
    .ReadReg    (FireSerial),   // serial fire: the read slot from flip-flops
    .PreEnc     (FireSerial)    // and the arbiter's take from registers of the fire mask
  ) u_scan (
    .clk_i,
    .rst_ni,
    .clear_i,
    .start_i      (integrated),
    .avail_i      (avail),
    .more_o       (scan_more),
    .load_o       (scan_load),
    .read_slot_o  (read_slot),
    .read_group_o (read_group),
    .mask_i       (fires),
    .code_i       (t_spike),
    .evt_valid_o,
    .evt_ready_i,
    .evt_last_o,
    .evt_ways_o,
    .evt_index_o,
    .evt_code_o,
    .release_o    (release_layer)
  );

endmodule

`default_nettype wire
