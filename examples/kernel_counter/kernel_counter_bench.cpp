// examples/kernel_counter: the cost of a call on an extension object. One add on a counter
// (an extension syscall that resolves the handle to its object, checks the add right, and
// adds) beside helNop (the syscall entry alone) and a host std::atomic fetch_add (the add
// alone), each from a simulated thread on a one-CPU machine, or the host thread.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>

#include <helsim/benchmark.hpp>
#include <helsim/hel.h>

#include "kernel_counter.hpp"

namespace {

void BM_Ext_KernelCounter_Add(benchmark::State &state) {
	helsim::bench::Simulation simulation{state, {}};
	kernel_counter::install(simulation.machine());
	HelError failed = kHelErrNone;
	bool ran = simulation.run([&](helsim::bench::Loop &loop) {
		HelHandle counter = kHelNullHandle;
		failed |= kernel_counter::create(0, counter);
		std::uint64_t value = 0;
		for (auto _ : loop) {
			failed |= kernel_counter::add(counter, 1, value);
			benchmark::DoNotOptimize(value);
		}
		failed |= helCloseDescriptor(kHelThisUniverse, counter);
	});
	if (ran && failed != kHelErrNone)
		state.SkipWithError("a counter call failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ext_KernelCounter_Add);

void BM_Ext_KernelCounter_Nop(benchmark::State &state) {
	HelError failed = kHelErrNone;
	bool ran = helsim::bench::run_in_simulation(state, [&](helsim::bench::Loop &loop) {
		for (auto _ : loop) {
			HelError e = helNop();
			benchmark::DoNotOptimize(e);
			failed |= e;
		}
	});
	if (ran && failed != kHelErrNone)
		state.SkipWithError("helNop failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ext_KernelCounter_Nop);

// The host baseline: the add itself, on the benchmark's host thread.
void BM_Ext_KernelCounter_HostAtomic(benchmark::State &state) {
	std::atomic<std::uint64_t> counter{0};
	for (auto _ : state) {
		std::uint64_t value = counter.fetch_add(1, std::memory_order_relaxed) + 1;
		benchmark::DoNotOptimize(value);
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ext_KernelCounter_HostAtomic);

} // namespace
