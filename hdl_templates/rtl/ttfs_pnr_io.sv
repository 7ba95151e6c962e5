// Place-and-route shell I/O (timing runs only): feeds the design's Lanes-byte input beats from a
// one-byte port and folds the score bus into one registered parity bit, so that a small FPGA
// package holds the pins while no logic of the design can be optimised away.
`default_nettype none

module ttfs_pnr_io #(
  parameter int Lanes     = 8,
  parameter int LaneBits  = 3,    // max(1, clog2(Lanes))
  parameter int ScoreBits = 32
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_ni,
  input  wire logic                 byte_valid_i,
  output      logic                 byte_ready_o,
  input  wire logic [7:0]           byte_i,
  input  wire logic                 byte_last_i,
  output      logic                 in_valid_o,
  input  wire logic                 in_ready_i,
  output      logic [Lanes*8-1:0]   in_data_o,
  output      logic                 in_last_o,
  input  wire logic [ScoreBits-1:0] scores_i,
  output      logic                 scores_parity_o
);

  logic [Lanes*8-1:0]  data_q;
  logic [LaneBits-1:0] count_q;
  logic                full_q, last_q, parity_q;

  assign byte_ready_o    = !full_q;
  assign in_valid_o      = full_q;
  assign in_data_o       = data_q;
  assign in_last_o       = last_q;
  assign scores_parity_o = parity_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      data_q   <= '0;
      count_q  <= '0;
      full_q   <= 1'b0;
      last_q   <= 1'b0;
      parity_q <= 1'b0;
    end else begin
      parity_q <= ^scores_i;
      if (full_q && in_ready_i) begin
        full_q <= 1'b0;
        data_q <= '0;
      end else if (byte_valid_i && !full_q) begin
        data_q[8*count_q +: 8] <= byte_i;
        last_q                 <= byte_last_i;
        if (byte_last_i || count_q == LaneBits'(Lanes - 1)) begin
          full_q  <= 1'b1;
          count_q <= '0;
        end else begin
          count_q <= count_q + 1'b1;
        end
      end
    end
  end

endmodule

`default_nettype wire
