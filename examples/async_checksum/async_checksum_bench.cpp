// The asynchronous checksum syscall of examples/async_checksum: what one call costs the host,
// from submission to its completion reaped, beside the same Adler-32 computed on the host.
//
// Deterministic mode, so that the engine's latency is virtual time (sim_ns/iter) and the
// wall-clock figure is the simulator's own work: the syscall, the kernel's copy of the buffer,
// the checksum, the timer and the completion.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>

#include "async_checksum.hpp"

namespace {

std::vector<std::byte> bytes_of(std::size_t n) {
	std::vector<std::byte> bytes(n);
	for (std::size_t i = 0; i < n; ++i)
		bytes[i] = static_cast<std::byte>(i * 131 + 7);
	return bytes;
}

void BM_Ext_AsyncChecksum(benchmark::State &state) {
	const auto size = static_cast<std::size_t>(state.range(0));
	helsim::bench::Simulation simulation{state, {.mode = helsim::Mode::deterministic}};
	async_checksum::install(simulation.machine());
	bool wrong = false;
	bool ran = simulation.run([&](helsim::bench::Loop &loop) {
		auto bytes = bytes_of(size);
		const std::uint32_t expected = async_checksum::adler32(bytes);
		helsim::Dispatcher dispatcher;
		for (auto _ : loop) {
			HelError e = async_checksum::helsim_checksum(dispatcher.queue(), 1, bytes.data(),
					bytes.size(), 0);
			auto element = dispatcher.wait();
			wrong |= e != kHelErrNone || !element ||
					element->as<async_checksum::ChecksumResult>().checksum != expected;
		}
	});
	if (ran && wrong)
		state.SkipWithError("helsimChecksum failed or computed a wrong checksum");
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_Ext_AsyncChecksum)->Arg(64)->Arg(4096)->Arg(65536);

// The host baseline: the same function on the same bytes, no simulator.
void BM_Ext_AsyncChecksum_HostBaseline(benchmark::State &state) {
	const auto size = static_cast<std::size_t>(state.range(0));
	auto bytes = bytes_of(size);
	for (auto _ : state) {
		benchmark::DoNotOptimize(bytes.data());
		std::uint32_t sum = async_checksum::adler32(bytes);
		benchmark::DoNotOptimize(sum);
	}
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * size));
}
BENCHMARK(BM_Ext_AsyncChecksum_HostBaseline)->Arg(64)->Arg(4096)->Arg(65536);

} // namespace
