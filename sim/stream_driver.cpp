// hbnn's streaming driver: the main() of a Verilator model, so that no Python runs per clock cycle.
//
// It reads packed input transfers from a file, offers them on i_stream with seeded random gaps, takes o_stream
// transfers with seeded random stalls, records every output payload and the cycle of every handshake, and writes
// them to a file. hbnn.sim.bench (the cocotb bench) implements the same protocol, cycle for cycle, with the same
// generator, so that both engines give identical transcripts for the same seed; hbnn.sim.engines reads both.
//
// Protocol, one loop iteration per clock cycle (cycle 0 is the first after reset):
//   draw two numbers from the generator (always two, whatever the state, so the sequence never depends on the
//   design); raise i_stream.valid with the next transfer unless one is already offered or the first number falls
//   below the gap threshold; raise o_stream.ready unless the second number falls below the stall threshold;
//   settle; the handshakes the coming rising edge completes are those with valid & ready now; clock.
// The run ends when every expected output has arrived, or with a status naming why not (cycle budget spent, or
// no handshake on either stream for `idle_cycles`).
//
// Arguments are key=value pairs (see Options). Files: stimulus = uint32 little-endian words, `in_words` per
// transfer; output = output words (`out_words` per transfer), then uint64 input handshake cycles, then uint64
// output handshake cycles; status = a JSON object. Progress lines "progress <images>" go to stdout.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "verilated.h"
#include "Vdut.h"
#if VM_TRACE_FST
#include "verilated_fst_c.h"
#endif
#if VM_TRACE_SAIF
#include "verilated_saif_c.h"
#endif

namespace {

// Port names: an accelerator's by default (Verilator writes "__" in a port name as "___05F"). The AXI-Stream top
// (hbnn.sim.axi_transport) defines its own with -D, and I_LAST / O_LAST for TLAST: then the last 32-bit word of
// each input transfer in the stimulus is its TLAST, and of each recorded output transfer likewise.
#ifndef I_VALID
#define I_VALID i_stream___05Fvalid
#define I_READY i_stream___05Fready
#define I_PAYLOAD i_stream___05Fpayload
#define O_VALID o_stream___05Fvalid
#define O_READY o_stream___05Fready
#define O_PAYLOAD o_stream___05Fpayload
#endif
#ifndef CLOCK
#define CLOCK clk
#define RESET rst
#define RESET_ACTIVE 1
#endif
#ifdef I_LAST
constexpr size_t IN_FLAG_WORDS = 1;
#else
constexpr size_t IN_FLAG_WORDS = 0;
#endif
#ifdef O_LAST
constexpr size_t OUT_FLAG_WORDS = 1;
#else
constexpr size_t OUT_FLAG_WORDS = 0;
#endif

// splitmix64: small, fast, and easy to reproduce exactly in Python (hbnn.sim.flow_control.SplitMix64).
struct SplitMix64 {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
};

// Verilator holds a port of up to 8/16/32/64 bits in an integer, wider ones in VlWide (32-bit words).
template <typename T>
void load_payload(T& port, const uint32_t* words, size_t count) {
    uint64_t value = words[0];
    if (count > 1) value |= static_cast<uint64_t>(words[1]) << 32;
    port = static_cast<T>(value);
}
template <std::size_t N>
void load_payload(VlWide<N>& port, const uint32_t* words, size_t count) {
    for (std::size_t i = 0; i < N; ++i) port[i] = i < count ? words[i] : 0;
}
template <typename T>
void store_payload(const T& port, uint32_t* words, size_t count) {
    uint64_t value = static_cast<uint64_t>(port);
    words[0] = static_cast<uint32_t>(value);
    if (count > 1) words[1] = static_cast<uint32_t>(value >> 32);
}
template <std::size_t N>
void store_payload(const VlWide<N>& port, uint32_t* words, size_t count) {
    for (std::size_t i = 0; i < count; ++i) words[i] = i < N ? port[i] : 0;
}

[[noreturn]] void fail(const std::string& message) {
    std::fprintf(stderr, "hbnn stream driver: %s\n", message.c_str());
    std::exit(2);
}

struct Options {
    std::map<std::string, std::string> values;
    Options(int argc, char** argv) {
        for (int i = 1; i < argc; ++i) {
            const char* eq = std::strchr(argv[i], '=');
            if (!eq) fail(std::string("argument '") + argv[i] + "' is not key=value");
            values[std::string(argv[i], static_cast<size_t>(eq - argv[i]))] = eq + 1;
        }
    }
    std::string text(const std::string& key, const char* fallback = nullptr) const {
        auto found = values.find(key);
        if (found != values.end()) return found->second;
        if (!fallback) fail("missing argument " + key + "=...");
        return fallback;
    }
    uint64_t number(const std::string& key, const char* fallback = nullptr) const {
        return std::strtoull(text(key, fallback).c_str(), nullptr, 0);
    }
};

std::vector<uint32_t> read_words(const std::string& path, size_t count) {
    std::vector<uint32_t> words(count);
    FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) fail("cannot open " + path);
    size_t got = count ? std::fread(words.data(), sizeof(uint32_t), count, file) : 0;
    std::fclose(file);
    if (got != count) fail(path + " holds fewer words than the transfers need");
    return words;
}

// Waveforms (FST) and switching activity (SAIF), compiled in only when the model was verilated with
// --trace-fst / --trace-saif; a plain build carries neither and this class does nothing.
class Traces {
public:
    Traces(Vdut& top, const Options& options, uint64_t outputs_per_image) {
#if VM_TRACE_FST
        // Waves from time 0 until `wave_images` images have left the design.
        wave_outputs_ = options.number("wave_images") * outputs_per_image;
        waves_ = std::make_unique<VerilatedFstC>();
        top.trace(waves_.get(), 99);
        waves_->open(options.text("waves").c_str());
#endif
#if VM_TRACE_SAIF
        // Switching activity over a window of whole cycles in steady state, [from, to): from the cycle after image
        // `saif_first`-1 left the design to the cycle after image `saif_first`+`saif_images`-1 left it. SAIF time
        // is relative to the window (Verilator's SAIF writer measures its duration from time 0), so DURATION is
        // 10 ns per cycle of the window; the closing dump is the low half of cycle `to`.
        saif_path_ = options.text("saif");
        open_at_ = options.number("saif_first") * outputs_per_image;
        close_at_ = open_at_ + options.number("saif_images") * outputs_per_image;
        activity_ = std::make_unique<VerilatedSaifC>();
        top.trace(activity_.get(), 99);
#endif
        (void)top, (void)options, (void)outputs_per_image;
    }

    // After each half-cycle's eval, at `time` half periods since reset.
    void dump(uint64_t time) {
#if VM_TRACE_FST
        if (waves_) waves_->dump(time * 5);
#endif
#if VM_TRACE_SAIF
        if (window_ == Window::open || window_ == Window::closing) activity_->dump((time - origin_) * 5);
        if (window_ == Window::closing) {
            activity_->close();
            window_ = Window::after;
        }
#endif
        (void)time;
    }

    // After the rising edge that completed output transfer number `outputs`; `cycle` and `time` are the next ones.
    void output_taken(size_t outputs, uint64_t cycle, uint64_t time) {
#if VM_TRACE_FST
        if (waves_ && outputs >= wave_outputs_) {
            waves_->close();
            waves_.reset();
        }
#endif
#if VM_TRACE_SAIF
        if (window_ == Window::before && outputs == open_at_) {
            activity_->open(saif_path_.c_str());
            window_ = Window::open;
            origin_ = time;
            from_ = cycle;
        } else if (window_ == Window::open && outputs == close_at_) {
            window_ = Window::closing;
            to_ = cycle;
        }
#endif
        (void)outputs, (void)cycle, (void)time;
    }

    // True when the activity window ended with the run and still needs its closing dump (one more low half-cycle).
    bool needs_closing_dump() const {
#if VM_TRACE_SAIF
        return window_ == Window::closing;
#else
        return false;
#endif
    }

    void finish() {
#if VM_TRACE_FST
        if (waves_) waves_->close();
#endif
#if VM_TRACE_SAIF
        if (window_ == Window::open) activity_->close();  // incomplete: the window reads [from, 0]
#endif
    }

    // Extra members of the status JSON.
    void write_status(FILE* file) const {
#if VM_TRACE_SAIF
        std::fprintf(file, ", \"activity_cycles\": [%" PRIu64 ", %" PRIu64 "]", from_, to_);
#endif
        (void)file;
    }

private:
#if VM_TRACE_FST
    std::unique_ptr<VerilatedFstC> waves_;
    uint64_t wave_outputs_ = 0;
#endif
#if VM_TRACE_SAIF
    enum class Window { before, open, closing, after };
    std::unique_ptr<VerilatedSaifC> activity_;
    std::string saif_path_;
    uint64_t open_at_ = 0, close_at_ = 0;
    Window window_ = Window::before;
    uint64_t origin_ = 0, from_ = 0, to_ = 0;
#endif
};

// What the run recorded, and how it ended.
struct Transcript {
    std::vector<uint32_t> outputs;
    std::vector<uint64_t> input_cycles, output_cycles;
    const char* status = "done";
    uint64_t cycles = 0;
    int64_t input_blocked_since = -1;  // cycle since which the design refuses an offered input, or -1
    int64_t output_empty_since = -1;   // cycle since which o_stream.valid is low, or -1

    void write(const Options& options, size_t out_words, const Traces& traces) const {
        FILE* file = std::fopen(options.text("output").c_str(), "wb");
        if (!file) fail("cannot write " + options.text("output"));
        std::fwrite(outputs.data(), sizeof(uint32_t), output_cycles.size() * out_words, file);
        std::fwrite(input_cycles.data(), sizeof(uint64_t), input_cycles.size(), file);
        std::fwrite(output_cycles.data(), sizeof(uint64_t), output_cycles.size(), file);
        std::fclose(file);
        file = std::fopen(options.text("status").c_str(), "w");
        if (!file) fail("cannot write " + options.text("status"));
        std::fprintf(file,
                     "{\"status\": \"%s\", \"cycles\": %" PRIu64 ", \"inputs\": %zu, \"outputs\": %zu, "
                     "\"input_blocked_since\": %" PRId64 ", \"output_empty_since\": %" PRId64,
                     status, cycles, input_cycles.size(), output_cycles.size(), input_blocked_since,
                     output_empty_since);
        traces.write_status(file);
        std::fprintf(file, "}\n");
        std::fclose(file);
    }
};

}  // namespace

int main(int argc, char** argv) {
    const Options options(argc, argv);
    const size_t transfers = options.number("transfers");
    const size_t in_words = options.number("in_words");
    const size_t out_words = options.number("out_words");
    const size_t expected_outputs = options.number("outputs");
    const uint64_t outputs_per_image = options.number("outputs_per_image");
    const uint64_t gap_threshold = options.number("gap_threshold");
    const uint64_t stall_threshold = options.number("stall_threshold");
    const uint64_t max_cycles = options.number("max_cycles");
    const uint64_t idle_cycles = options.number("idle_cycles");
    const uint64_t progress_every = options.number("progress_every", "0");
    const std::vector<uint32_t> stimulus = read_words(options.text("stimulus"), transfers * in_words);
    SplitMix64 rng{options.number("seed")};

    auto context = std::make_unique<VerilatedContext>();
    context->traceEverOn(true);
    auto top = std::make_unique<Vdut>(context.get(), "hbnn_top");
    Traces traces(*top, options, outputs_per_image);
    uint64_t time = 0;  // in half clock periods of 5 ns (the cocotb bench's 10 ns clock)
    auto half_cycle = [&](uint8_t clock) {
        top->CLOCK = clock;
        top->eval();
        traces.dump(time++);
    };

    // Reset: two rising edges with rst high, as the cocotb bench does.
    top->RESET = RESET_ACTIVE;
    top->I_VALID = 0;
    top->O_READY = 0;
    for (int i = 0; i < 2; ++i) {
        half_cycle(0);
        half_cycle(1);
    }
    top->RESET = !RESET_ACTIVE;

    Transcript run;
    run.outputs.resize(expected_outputs * out_words);
    run.input_cycles.reserve(transfers);
    run.output_cycles.reserve(expected_outputs);
    size_t next_input = 0;
    bool offering = false;
    uint64_t cycle = 0, last_handshake = 0;
    while (run.output_cycles.size() < expected_outputs) {
        if (cycle >= max_cycles) { run.status = "cycle_budget"; break; }
        if (cycle - last_handshake >= idle_cycles) { run.status = "idle"; break; }
        const uint64_t input_draw = rng.next();
        const uint64_t output_draw = rng.next();
        if (!offering && next_input < transfers && input_draw >= gap_threshold) {
            load_payload(top->I_PAYLOAD, &stimulus[next_input * in_words], in_words - IN_FLAG_WORDS);
#ifdef I_LAST
            top->I_LAST = stimulus[next_input * in_words + in_words - 1] & 1;
#endif
            offering = true;
        }
        const bool consumer_ready = output_draw >= stall_threshold;
        top->I_VALID = offering;
        top->O_READY = consumer_ready;
        half_cycle(0);  // settle: valid/ready of this cycle are now visible
        const bool input_fires = offering && top->I_READY;
        const bool output_fires = consumer_ready && top->O_VALID;
        if (offering && !top->I_READY && run.input_blocked_since < 0) run.input_blocked_since = cycle;
        if (top->O_VALID) run.output_empty_since = -1;
        else if (run.output_empty_since < 0) run.output_empty_since = cycle;
        if (input_fires) {
            run.input_cycles.push_back(cycle);
            ++next_input;
            offering = false;
            run.input_blocked_since = -1;
            last_handshake = cycle;
        }
        if (output_fires) {
            uint32_t* recorded = &run.outputs[run.output_cycles.size() * out_words];
            store_payload(top->O_PAYLOAD, recorded, out_words - OUT_FLAG_WORDS);
#ifdef O_LAST
            recorded[out_words - 1] = top->O_LAST;
#endif
            run.output_cycles.push_back(cycle);
            last_handshake = cycle;
        }
        half_cycle(1);
        ++cycle;
        if (output_fires) traces.output_taken(run.output_cycles.size(), cycle, time);
        if (progress_every && cycle % progress_every == 0) {
            std::printf("progress %zu\n", run.output_cycles.size() / outputs_per_image);
            std::fflush(stdout);
        }
    }
    run.cycles = cycle;
    if (traces.needs_closing_dump()) half_cycle(0);
    traces.finish();
    top->final();
    run.write(options, out_words, traces);
    return 0;
}
