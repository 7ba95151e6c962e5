// Integration half of a layer engine: NumPe processing elements share the layer's neurons
// (neuron j = slot * NumPe + pe, so PE p owns neurons p, p + NumPe, ...). Each input event
// (index i, code c) is accepted in one cycle and then costs Slots cycles: slot s of every PE
// accumulates weight[s * NumPe + pe][i] * operand(c), where operand(c) is the code itself (pixel
// bytes) or OperandTable[c] (the kernel value of a spike time, or of a ttfs-coded pixel). The
// weights lie in a ROM of InCount * Slots words of NumPe weights (synchronous read). The end
// marker (evt_last_i) finishes integration: done_o stays high, and the membranes can be read
// slot by slot (read_slot_i), until release_i rearms the layer for the next inference.
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

  logic [OperandBits-1:0] operand;
  if (UseOperandTable) begin : g_table
    logic [OperandBits-1:0] operand_rom [0:OperandEntries-1];
    initial begin
      $readmemh(OperandFile, operand_rom);
    end
    assign operand = operand_rom[evt_code_i];
  end else begin : g_code
    assign operand = evt_code_i;
  end

  logic                        done_q, done_d;
  logic                        issue_q, issue_d;      // slots 1.. of the held event to issue
  logic [SlotBits-1:0]         issue_slot_q, issue_slot_d;
  logic [AddrBits-1:0]         base_q, base_d, addr;
  logic                        mac_q, mac_d;          // weight_q is valid for mac_slot_q
  logic [SlotBits-1:0]         mac_slot_q, mac_slot_d, pe_slot;
  logic [OperandBits-1:0]      operand_q, operand_d;
  logic [Slots-1:0]            started_q, started_d;
  logic [NumPe*WeightBits-1:0] weight_q;
  logic                        accept;

  assign evt_ready_o = !done_q && !issue_q;
  assign accept      = evt_valid_i && evt_ready_o;
  assign done_o      = done_q;
  assign pe_slot     = done_q ? read_slot_i : mac_slot_q;

  always_comb begin
    done_d       = done_q;
    issue_d      = issue_q;
    issue_slot_d = issue_slot_q;
    base_d       = base_q;
    operand_d    = operand_q;
    started_d    = started_q;
    mac_d        = 1'b0;
    mac_slot_d   = '0;
    addr         = base_q + AddrBits'(issue_slot_q);
    if (mac_q) begin
      started_d[mac_slot_q] = 1'b1;
    end
    if (issue_q) begin
      mac_d      = 1'b1;
      mac_slot_d = issue_slot_q;
      if (issue_slot_q == SlotBits'(Slots - 1)) begin
        issue_d = 1'b0;
      end else begin
        issue_slot_d = issue_slot_q + 1'b1;
      end
    end else if (accept && evt_last_i) begin
      done_d = 1'b1;
    end else if (accept) begin
      addr         = AddrBits'(evt_index_i) * AddrBits'(Slots);
      base_d       = addr;
      operand_d    = operand;
      mac_d        = 1'b1;
      issue_d      = Slots > 1;
      issue_slot_d = SlotBits'(1);
    end
    if (release_i) begin
      done_d    = 1'b0;
      started_d = '0;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      done_q       <= 1'b0;
      issue_q      <= 1'b0;
      issue_slot_q <= '0;
      base_q       <= '0;
      mac_q        <= 1'b0;
      mac_slot_q   <= '0;
      operand_q    <= '0;
      started_q    <= '0;
    end else begin
      done_q       <= done_d;
      issue_q      <= issue_d;
      issue_slot_q <= issue_slot_d;
      base_q       <= base_d;
      mac_q        <= mac_d;
      mac_slot_q   <= mac_slot_d;
      operand_q    <= operand_d;
      started_q    <= started_d;
    end
  end

  // Synchronous ROM read (maps to block RAM).
  always_ff @(posedge clk_i) begin
    weight_q <= weight_rom[addr];
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
      .slot_i    (pe_slot),
      .started_i (started_q[pe_slot]),
      .bias_i    (bias_rom[pe_slot][p*AccBits +: AccBits]),
      .mac_en_i  (mac_q),
      .weight_i  (weight_q[p*WeightBits +: WeightBits]),
      .operand_i (operand_q),
      .v_mem_o   (v_mem_o[p*AccBits +: AccBits])
    );
  end

endmodule

`default_nettype wire
