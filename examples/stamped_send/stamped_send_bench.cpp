// The kernel-stamped send of examples/stamped_send beside the built-in sendFromBuffer: one
// iteration is a round trip, a message of the argument's size from one lane to the other and
// one back, each a send and a receive into a buffer, both lanes on one simulated thread (no
// context switch: what the action itself costs). The host baseline is what the stamps do
// without a simulator: a copy and two clock readings each way.
//
// Deterministic mode, so that the wall-clock figure is the simulator's own work and
// sim_ns/iter the virtual time the cost model charges.
#include <benchmark/benchmark.h>

#include <time.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>

#include "stamped_send.hpp"

namespace {

namespace ipc = helsim::ipc;

// Sends `length` bytes on `from` and receives them on `to`; false on any error.
bool one_way(helsim::Dispatcher &dispatcher, HelHandle from, HelHandle to, const std::byte *bytes,
		std::size_t length, std::vector<std::byte> &room, bool stamped) {
	if (stamped)
		ipc::submit(dispatcher, from, 1, stamped_send::send_stamped(bytes, length));
	else
		ipc::submit(dispatcher, from, 1, ipc::send_buffer(bytes, length));
	ipc::submit(dispatcher, to, 2, ipc::recv_buffer(room.data(), room.size()));
	bool ok = true;
	for (int completions = 0; completions < 2; ++completions) {
		std::optional<helsim::Element> element = dispatcher.wait();
		ok &= element && element->error() == kHelErrNone;
	}
	return ok;
}

void round_trip(benchmark::State &state, bool stamped) {
	const auto size = static_cast<std::size_t>(state.range(0));
	helsim::bench::Simulation simulation{state, {.mode = helsim::Mode::deterministic}};
	stamped_send::install(simulation.machine());
	bool wrong = false;
	bool ran = simulation.run([&](helsim::bench::Loop &loop) {
		HelHandle a, b;
		if (helCreateStream(&a, &b, 0) != kHelErrNone) {
			wrong = true;
			return;
		}
		helsim::Dispatcher dispatcher;
		std::vector<std::byte> bytes(size, std::byte{0x5a});
		std::vector<std::byte> room(size + sizeof(stamped_send::StampHeader));
		for (auto _ : loop) {
			wrong |= !one_way(dispatcher, a, b, bytes.data(), size, room, stamped);
			wrong |= !one_way(dispatcher, b, a, bytes.data(), size, room, stamped);
		}
		helCloseDescriptor(kHelThisUniverse, a);
		helCloseDescriptor(kHelThisUniverse, b);
	});
	if (ran && wrong)
		state.SkipWithError("a send or a receive failed");
	state.SetItemsProcessed(state.iterations()); // round trips per second
}

void BM_Ext_StampedSend_RoundTrip(benchmark::State &state) { round_trip(state, true); }
BENCHMARK(BM_Ext_StampedSend_RoundTrip)->Arg(64)->Arg(4096);

// The built-in send of the same size, in the same machine set-up.
void BM_Ext_StampedSend_RoundTrip_SendFromBuffer(benchmark::State &state) {
	round_trip(state, false);
}
BENCHMARK(BM_Ext_StampedSend_RoundTrip_SendFromBuffer)->Arg(64)->Arg(4096);

// The host baseline: each way, a header of two clock readings and a copy of the bytes.
void BM_Ext_StampedSend_HostBaseline(benchmark::State &state) {
	const auto size = static_cast<std::size_t>(state.range(0));
	std::vector<std::byte> bytes(size, std::byte{0x5a});
	std::vector<std::byte> room(size + sizeof(stamped_send::StampHeader));
	auto stamp = [] {
		timespec ts{};
		clock_gettime(CLOCK_MONOTONIC, &ts);
		return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
				static_cast<std::uint64_t>(ts.tv_nsec);
	};
	for (auto _ : state) {
		for (int way = 0; way < 2; ++way) {
			stamped_send::StampHeader header{stamp(), 0};
			std::memcpy(room.data() + sizeof(header), bytes.data(), size);
			header.paired_ns = stamp();
			std::memcpy(room.data(), &header, sizeof(header));
			benchmark::DoNotOptimize(room.data());
			benchmark::ClobberMemory();
		}
	}
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Ext_StampedSend_HostBaseline)->Arg(64)->Arg(4096);

} // namespace
