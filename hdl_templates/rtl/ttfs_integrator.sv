// Integration half of a layer engine: NumPe processing elements share the layer's neurons
// (neuron j = slot * NumPe + pe, so PE p owns neurons p, p + NumPe, ...). An input event
// (index i, code c) is registered when accepted and then issues Slots cycles, one per slot s,
// through a four-stage pipeline: issue (weight ROM address), ROM read + operand, product,
// accumulate into slot s of every PE: v_mem[s * NumPe + pe] += weight[s * NumPe + pe][i] *
// operand(c), where operand(c) is the code itself (pixel bytes) or OperandTable[c] (the kernel
// value of a spike time, or of a ttfs-coded pixel). The next event is accepted while the last
// slot issues, so an event costs Slots cycles. The weights lie in a ROM of Slots * InCount words
// of NumPe weights, word s * InCount + i (synchronous read), so the address is the event index
// plus InCount per slot. The end marker (evt_last_i) finishes integration: it passes through
// the three stages like a last slot would, and one more for the registered membrane read, so
// done_o rises exactly four cycles after the marker was taken, whatever came before it. Then
// done_o stays high and v_mem_o holds the membranes of the slot that read_slot_i named in the
// previous cycle, until release_i rearms the layer for the next inference.
`default_nettype none

module ttfs_integrator #(
  parameter int NumPe           = 4,
  parameter int Slots           = 3,
  parameter int SlotBits        = 2,    // max(1, clog2(Slots))
  parameter int InCount         = 16,   // input positions (weight columns)
  parameter int IdxBits         = 4,    // width of the input index
  parameter int AddrBits        = 6,    // max(1, clog2(InCount * Slots))
  parameter int CodeBits        = 8,
  parameter bit UseOperandTable = 1'b0, // else operand = code (pixel bytes)
  parameter int OperandEntries  = 8,
  parameter int OperandBits     = 8,
  parameter int WeightBits      = 8,
  parameter int AccBits         = 24,
  parameter     OperandFile     = "",
  parameter     WeightFile      = "",
  parameter     BiasFile        = ""
) (
  input  wire logic                       clk_i,
  input  wire logic                       rst_ni,
  input  wire logic                       evt_valid_i,
  output      logic                       evt_ready_o,
  input  wire logic                       evt_last_i,
  input  wire logic [IdxBits-1:0]         evt_index_i,
  input  wire logic [CodeBits-1:0]        evt_code_i,
  output      logic                       done_o,
  input  wire logic                       release_i,
  input  wire logic [SlotBits-1:0]        read_slot_i,
  output      logic [NumPe*AccBits-1:0]   v_mem_o
);

  logic [NumPe*WeightBits-1:0] weight_rom [0:InCount*Slots-1];
  logic [NumPe*AccBits-1:0]    bias_rom   [0:Slots-1];

  initial begin
    $readmemh(WeightFile, weight_rom);
    $readmemh(BiasFile, bias_rom);
  end

  logic [CodeBits-1:0]    code_q;
  logic [OperandBits-1:0] operand;
  if (UseOperandTable) begin : g_table
    logic [OperandBits-1:0] operand_rom [0:OperandEntries-1];
    initial begin
      $readmemh(OperandFile, operand_rom);
    end
    assign operand = operand_rom[code_q];
  end else begin : g_code
    assign operand = code_q;
  end

  logic                        issue_q, issue_d;      // slot issue_slot_q of the held event
  logic [SlotBits-1:0]         issue_slot_q, issue_slot_d;
  logic [AddrBits-1:0]         addr_q, addr_d;
  logic [3:0]                  last_q, last_d;        // end marker taken 1..4 cycles ago
  logic                        mac_q;                 // weight_q, operand_q hold mac_slot_q
  logic [SlotBits-1:0]         mac_slot_q;
  logic                        acc_q;                 // the PE products hold acc_slot_q
  logic [SlotBits-1:0]         acc_slot_q;
  logic [Slots-1:0]            started_q, started_d;
  logic [OperandBits-1:0]      operand_q;
  logic [NumPe*WeightBits-1:0] weight_q;
  logic [NumPe*AccBits-1:0]    v_mem;
  logic                        issue_end, accept;

  assign issue_end   = issue_q && (issue_slot_q == SlotBits'(Slots - 1));
  assign evt_ready_o = !last_q[0] && (!issue_q || issue_end);
  assign accept      = evt_valid_i && evt_ready_o;
  assign done_o      = last_q[3];

  always_comb begin
    issue_d      = issue_q && !issue_end;
    issue_slot_d = issue_slot_q + 1'b1;
    addr_d       = addr_q + AddrBits'(InCount);
    last_d       = {last_q[2:0], last_q[0]};
    started_d    = started_q;
    if (acc_q) begin
      started_d[acc_slot_q] = 1'b1;
    end
    if (accept && evt_last_i) begin
      last_d[0] = 1'b1;
    end else if (accept) begin
      issue_d      = 1'b1;
      issue_slot_d = '0;
      addr_d       = AddrBits'(evt_index_i);
    end
    if (release_i) begin
      last_d    = '0;
      started_d = '0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      issue_q      <= 1'b0;
      issue_slot_q <= '0;
      addr_q       <= '0;
      code_q       <= '0;
      last_q       <= '0;
      mac_q        <= 1'b0;
      mac_slot_q   <= '0;
      acc_q        <= 1'b0;
      acc_slot_q   <= '0;
      started_q    <= '0;
    end else begin
      issue_q      <= issue_d;
      issue_slot_q <= issue_slot_d;
      addr_q       <= addr_d;
      last_q       <= last_d;
      mac_q        <= issue_q;
      mac_slot_q   <= issue_slot_q;
      acc_q        <= mac_q;
      acc_slot_q   <= mac_slot_q;
      started_q    <= started_d;
      if (accept && !evt_last_i) begin
        code_q <= evt_code_i;
      end
    end
  end

  // Synchronous ROM read (maps to block RAM), with the operand of the same slot; registered
  // membrane read for the fire scan and the readout.
  always_ff @(posedge clk_i) begin
    weight_q  <= weight_rom[addr_q];
    operand_q <= operand;
    v_mem_o   <= v_mem;
  end

  for (genvar p = 0; p < NumPe; p++) begin : g_pe
    ttfs_pe #(
      .Slots       (Slots),
      .SlotBits    (SlotBits),
      .WeightBits  (WeightBits),
      .OperandBits (OperandBits),
      .AccBits     (AccBits)
    ) u_pe (
      .clk_i,
      .acc_slot_i     (acc_slot_q),
      .acc_started_i  (started_q[acc_slot_q]),
      .acc_bias_i     (bias_rom[acc_slot_q][p*AccBits +: AccBits]),
      .read_slot_i,
      .read_started_i (started_q[read_slot_i]),
      .read_bias_i    (bias_rom[read_slot_i][p*AccBits +: AccBits]),
      .weight_i       (weight_q[p*WeightBits +: WeightBits]),
      .operand_i      (operand_q),
      .acc_en_i       (acc_q),
      .v_mem_o        (v_mem[p*AccBits +: AccBits])
    );
  end

endmodule

`default_nettype wire
