// The compiled stream harness: a Verilated component with a 32-bit stream in (i__valid, i__payload,
// i__ready) and a 32-bit stream out (o__valid, o__payload, o__ready; Verilator spells "__" as "___05F"),
// clocked by `clk` and reset by `rst`, driven from C++ so that no word crosses into Python one at a time.
// lowbit.sim.harness builds it into a shared library with Verilator and calls it through ctypes, once per
// batch of words.
//
// Flow control is seeded: each cycle the source offers its next word unless the idle pattern says
// otherwise (once offered, a word stays offered until taken, as a stream requires), and the sink is
// ready unless the back-pressure pattern says otherwise. Both patterns come from one xorshift64* state,
// so a seed gives the same cycles on every run.
//
// Built with HARNESS_EDGE_ONLY, for a component whose clock drives nothing but clock edges (Amaranth's
// Verilog), an edge runs only the clocked regions of the model (Verilator's "act" and "nba") where eval
// would also re-run the logic that depends on the inputs ("ico") for inputs it has seen: always on the
// rising edge (the falling edge's eval has just run it), and on the falling edge when no input changed
// since the last eval (the rising edge's regions computed everything from the registers and those
// inputs). The regions' functions are the model's own, declared here; the cycles are those of eval, in
// about half the time per cycle for the binary tile. Not in a build with tracing: the waveform writer
// sees only the signals that eval's phases mark as active.
//
// Built with HARNESS_TRACE_VCD or HARNESS_TRACE_FST (and Verilator's --trace / --trace-fst), a harness
// given a file name writes every signal to it: a 10-unit clock period, the rising edge at 5.

#include <cstdint>
#include <memory>

#include "verilated.h"
#include HARNESS_TOP_HEADER
#if defined(HARNESS_TRACE_FST)
#include "verilated_fst_c.h"
using Trace = VerilatedFstC;
#elif defined(HARNESS_TRACE_VCD)
#include "verilated_vcd_c.h"
using Trace = VerilatedVcdC;
#endif

#ifdef HARNESS_EDGE_ONLY
#define HARNESS_CAT2(a, b) a##b
#define HARNESS_CAT(a, b) HARNESS_CAT2(a, b)
#define HARNESS_ROOT HARNESS_CAT(HARNESS_TOP, ___024root)
class HARNESS_ROOT;
bool HARNESS_CAT(HARNESS_ROOT, ___eval_phase__act)(HARNESS_ROOT*);
bool HARNESS_CAT(HARNESS_ROOT, ___eval_phase__nba)(HARNESS_ROOT*);
#endif

namespace {

struct Harness {
    VerilatedContext context;
    std::unique_ptr<HARNESS_TOP> top;
#ifdef HARNESS_TRACE
    std::unique_ptr<Trace> trace;
#endif
    uint64_t state = 1;
    uint32_t idle_permille = 0, stall_permille = 0;
    uint64_t cycle = 0;
    bool offering = false;
    bool changed = true;  // an input changed since the last eval
};

uint32_t draw(Harness& h) {  // xorshift64*: 0 .. 999
    h.state ^= h.state >> 12;
    h.state ^= h.state << 25;
    h.state ^= h.state >> 27;
    return static_cast<uint32_t>(((h.state * 2685821657736338717ULL) >> 32) % 1000);
}

#ifdef HARNESS_EDGE_ONLY
// eval's loop without its input-combinational phase: the triggers (act), then what they ran (nba), until
// nothing more is triggered.
void clocked(Harness& h) {
    HARNESS_ROOT* root = h.top->rootp;
    do {
        while (HARNESS_CAT(HARNESS_ROOT, ___eval_phase__act)(root)) {
        }
    } while (HARNESS_CAT(HARNESS_ROOT, ___eval_phase__nba)(root));
}
#endif

// The falling edge and the component's ready / valid for the inputs just set.
void settle(Harness& h) {
#ifdef HARNESS_EDGE_ONLY
    if (!h.changed) {
        clocked(h);
    } else {
        h.top->eval();
        h.changed = false;
    }
#else
    h.top->eval();
#endif
#ifdef HARNESS_TRACE
    if (h.trace) h.trace->dump(h.cycle * 10);
#endif
}

// The rising edge; the falling edge is evaluated by the next settle (one eval for both).
void tick(Harness& h) {
    h.top->clk = 1;
#ifdef HARNESS_EDGE_ONLY
    clocked(h);
#else
    h.top->eval();
#endif
#ifdef HARNESS_TRACE
    if (h.trace) h.trace->dump(h.cycle * 10 + 5);
#endif
    h.top->clk = 0;
    ++h.cycle;
}

}  // namespace

extern "C" {

// A new harness, reset for `reset_cycles` cycles. `idle_permille` / `stall_permille`: the share of cycles
// (per thousand) in which the source holds back a word it could offer / the sink is not ready. `trace`:
// the waveform file to write (a harness built with tracing), or null.
void* harness_new(uint64_t seed, uint32_t idle_permille, uint32_t stall_permille, uint32_t reset_cycles,
                  const char* trace) {
    auto* h = new Harness;
#ifdef HARNESS_TRACE
    if (trace) h->context.traceEverOn(true);
#else
    (void)trace;
#endif
    h->top = std::make_unique<HARNESS_TOP>(&h->context, "top");
#ifdef HARNESS_TRACE
    if (trace) {
        h->trace = std::make_unique<Trace>();
        h->top->trace(h->trace.get(), 99);
        h->trace->open(trace);
    }
#endif
    h->state = seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
    if (h->state == 0) h->state = 1;
    h->idle_permille = idle_permille;
    h->stall_permille = stall_permille;
    h->top->clk = 0;
    h->top->rst = 1;
    h->top->i___05Fvalid = 0;
    h->top->o___05Fready = 0;
    for (uint32_t k = 0; k < reset_cycles; ++k) {
        settle(*h);
        tick(*h);
    }
    h->top->rst = 0;
    h->changed = true;
    h->cycle = 0;
    return h;
}

void harness_free(void* handle) {
    auto* h = static_cast<Harness*>(handle);
#ifdef HARNESS_TRACE
    if (h->trace) h->trace->close();
#endif
    h->top->final();
    delete h;
}

uint64_t harness_cycle(void* handle) { return static_cast<Harness*>(handle)->cycle; }

// Run the clock: offer words from `in` (n_in of them; *taken counts those the component took), collect
// the component's words into `out` (room for out_cap; *got counts them), until *got reaches `want` (or,
// with `until_taken`, until every word of `in` was taken). Returns 0 then; 1 when `quiet` cycles passed
// in which no word moved either way; 2 when `limit` cycles ran (the call's cycles).
int harness_pump(void* handle, const uint32_t* in, uint64_t n_in, uint64_t* taken, uint32_t* out, uint64_t out_cap,
                 uint64_t want, uint64_t* got, uint64_t quiet, uint64_t limit, int until_taken) {
    Harness& h = *static_cast<Harness*>(handle);
    HARNESS_TOP& top = *h.top;
    uint64_t silent = 0, ran = 0;
    *taken = 0;
    *got = 0;
    while (until_taken ? *taken < n_in : *got < want) {
        if (silent >= quiet) return 1;
        if (ran >= limit) return 2;
        if (*taken == n_in)
            h.offering = false;
        else if (!h.offering)
            h.offering = draw(h) >= h.idle_permille;
        const bool ready = (*got < out_cap) && draw(h) >= h.stall_permille;
        if (top.i___05Fvalid != h.offering || top.o___05Fready != ready ||
            (h.offering && top.i___05Fpayload != in[*taken])) {
            top.i___05Fvalid = h.offering;
            if (h.offering) top.i___05Fpayload = in[*taken];
            top.o___05Fready = ready;
            h.changed = true;
        }
        settle(h);
        const bool took = h.offering && top.i___05Fready;
        const bool gave = top.o___05Fvalid && top.o___05Fready;
        if (gave) out[(*got)++] = top.o___05Fpayload;
        tick(h);
        ++ran;
        if (took) {
            ++*taken;
            h.offering = false;
        }
        silent = (gave || took) ? 0 : silent + 1;
    }
    return 0;
}

// Hold `rst` high for `cycles` clock cycles, nothing offered and the sink not ready (a reset in the middle
// of a command: what the component had taken is lost), then release it; the cycle count goes on.
void harness_reset(void* handle, uint32_t cycles) {
    Harness& h = *static_cast<Harness*>(handle);
    h.offering = false;
    h.top->i___05Fvalid = 0;
    h.top->o___05Fready = 0;
    h.top->rst = 1;
    h.changed = true;
    for (uint32_t k = 0; k < cycles; ++k) {
        settle(h);
        tick(h);
    }
    h.top->rst = 0;
    h.changed = true;
}

#ifdef HARNESS_MAC_BEATS
uint32_t harness_mac_beats(void* handle) { return static_cast<Harness*>(handle)->top->mac_beats; }
#endif
}
