// Swap benchmark: write-back throughput of swappable memory through a swap daemon, in pages
// per second (the "pages/s" counter). docs/benchmarks.md has the command and the figure.
//
// One simulated thread plays both sides, so the figure is the kernel's and the protocol's
// cost without any scheduling between client and daemon. One iteration is one page: a kernel
// write into swappable memory (SQ WriteMemory, which makes the page dirty and queues its
// writeback), the daemon's ManageMemory taking the request, its ReadMemory copying the slot
// out of the backing view, and its helUpdateMemory acknowledging it.
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>

#include "bench_support.hpp"

namespace {

using helsim::bench::check;

constexpr std::size_t kPage = 4096;
constexpr std::size_t kPages = 64;

// Submits one SQ operation and returns its completion.
template <typename T>
helsim::Element call(helsim::Dispatcher &d, std::uint32_t opcode, const T &payload) {
	d.submit(opcode, 1, payload);
	d.flush();
	for (;;)
		if (auto element = d.wait())
			return std::move(*element);
}

void BM_Swap_WritebackThroughput(benchmark::State &state) {
	helsim::bench::run_in_simulation(state, [](helsim::bench::Loop &loop) {
		HelHandle backing, swap, memory;
		check(helCreateSwapSpace(0, &backing, &swap), "helCreateSwapSpace");
		check(helSetSwapBudget(swap, kPages), "helSetSwapBudget");
		check(helAllocateSwappableMemory(swap, kPages * kPage, 0, &memory),
				"helAllocateSwappableMemory");
		helsim::Dispatcher d;
		std::vector<char> page(kPage, 'p'), disk(kPages * kPage);
		std::size_t next = 0;
		for (auto _ : loop) {
			check(call(d, kHelSubmitWriteMemory,
						  HelSqWriteMemory{memory, next * kPage, kPage, page.data()})
							.error(),
					"WriteMemory");
			auto request = call(d, kHelSubmitManageMemory, HelSqManageMemory{backing})
								   .as<HelManageResult>();
			check(request.error, "ManageMemory");
			check(call(d, kHelSubmitReadMemory,
						  HelSqReadMemory{backing, request.offset, request.length,
								  disk.data() + request.offset})
							.error(),
					"ReadMemory");
			check(helUpdateMemory(backing, kHelManageWriteback, request.offset, request.length),
					"helUpdateMemory");
			next = (next + 1) % kPages;
		}
		for (HelHandle h : {memory, swap, backing})
			check(helCloseDescriptor(kHelThisUniverse, h), "helCloseDescriptor");
	});
	state.counters["pages/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
			benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Swap_WritebackThroughput)->UseRealTime();

} // namespace
