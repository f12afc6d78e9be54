// The speed ceiling for bench/cosim_speed.py: the same Verilator model with nothing around it but a loop that
// toggles the clock. Both streams are held open (valid and ready high, payload 0), so the design works every cycle.
// Usage: driver cycles=N
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "verilated.h"
#include "Vdut.h"

int main(int argc, char** argv) {
    unsigned long long cycles = 1000000;
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], "cycles=", 7) == 0) cycles = std::strtoull(argv[i] + 7, nullptr, 0);
    auto context = std::make_unique<VerilatedContext>();
    auto top = std::make_unique<Vdut>(context.get(), "hbnn_top");
    top->rst = 1;
    for (int i = 0; i < 2; ++i) {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
    top->rst = 0;
    top->i_stream___05Fvalid = 1;
    top->o_stream___05Fready = 1;
    const auto start = std::chrono::steady_clock::now();
    for (unsigned long long cycle = 0; cycle < cycles; ++cycle) {
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    top->final();
    std::printf("{\"cycles\": %llu, \"seconds\": %.6f}\n", cycles, seconds);
    return 0;
}
