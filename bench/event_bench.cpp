// Event benchmarks: how long from helsimRaiseBitsetEvent to the awaiting thread's completion,
// on one CPU and across CPUs, next to a host baseline (an eventfd written and read).
// The cross-thread host baseline is BM_Host_EventfdPingPong in ipc_bench.cpp (same binary).
//
// Ping-pong: two fibers and two bitset events; A raises "ab" and awaits "ba", B awaits "ab" and
// raises "ba". One iteration is one round trip: two raise-to-completion hand-offs. Each side
// awaits with the last sequence it saw, so a raise that comes first is never lost. The
// benchmark loop runs in fiber A; wall-clock time (UseRealTime), as in ipc_bench.cpp.
#include <benchmark/benchmark.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <stdexcept>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "bench_support.hpp"

namespace {

using helsim::bench::await;
using helsim::bench::check;
using helsim::bench::pin;

constexpr std::int64_t kWarmup = 64;

void ping_pong(benchmark::State &state, unsigned cpus, int a_cpu, int b_cpu) {
	helsim::MachineConfig config;
	config.cpus = cpus;
	helsim::Machine machine{config};
	HelHandle ab, ba;
	{
		auto host = machine.attach();
		check(helCreateBitsetEvent(&ab), "helCreateBitsetEvent");
		check(helCreateBitsetEvent(&ba), "helCreateBitsetEvent");
	}
	const std::int64_t rounds = kWarmup + static_cast<std::int64_t>(state.max_iterations);
	machine.spawn("b",
			[&](std::span<const HelHandle> h) {
				if (b_cpu >= 0)
					pin(b_cpu);
				helsim::Dispatcher d;
				std::uint64_t seen = 1;
				for (std::int64_t i = 0; i < rounds; ++i) {
					seen = await(d, h[0], seen);
					check(helsimRaiseBitsetEvent(h[1], 1), "raise");
				}
			},
			{ab, ba});
	machine.spawn("a",
			[&](std::span<const HelHandle> h) {
				if (a_cpu >= 0)
					pin(a_cpu);
				helsim::Dispatcher d;
				std::uint64_t seen = 1;
				auto round = [&] {
					check(helsimRaiseBitsetEvent(h[0], 1), "raise");
					seen = await(d, h[1], seen);
				};
				for (std::int64_t i = 0; i < kWarmup; ++i)
					round();
				for (auto _ : state)
					round();
			},
			{ab, ba});
	{
		auto host = machine.attach();
		check(helCloseDescriptor(kHelThisUniverse, ab), "close");
		check(helCloseDescriptor(kHelThisUniverse, ba), "close");
	}
	auto report = machine.run();
	if (report.stuck || report.operations_pending())
		state.SkipWithError("the machine got stuck");
	state.SetItemsProcessed(state.iterations()); // round trips per second
}

// Both fibers on the one CPU: every hand-off is a simulated context switch on one host thread.
void BM_Event_PingPong_SameCpu(benchmark::State &state) { ping_pong(state, 1, -1, -1); }
BENCHMARK(BM_Event_PingPong_SameCpu)->UseRealTime();

// A on CPU 1, B on CPU 0: every raise wakes a fiber on the other host thread.
void BM_Event_PingPong_CrossCpu(benchmark::State &state) { ping_pong(state, 2, 1, 0); }
BENCHMARK(BM_Event_PingPong_CrossCpu)->UseRealTime();

// One fiber: submit an await, raise, reap the completion. The kernel's own path, no switch.
void BM_Event_RaiseAwait_SameThread(benchmark::State &state) {
	helsim::Machine machine;
	machine.spawn("a", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		HelHandle event;
		check(helCreateBitsetEvent(&event), "helCreateBitsetEvent");
		std::uint64_t seen = 1;
		for (auto _ : state) {
			d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{event, seen, 0});
			d.flush();
			check(helsimRaiseBitsetEvent(event, 1), "raise");
			auto element = d.wait();
			seen = element->as<HelEventResult>().sequence;
		}
		check(helCloseDescriptor(kHelThisUniverse, event), "close");
	});
	machine.run();
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Event_RaiseAwait_SameThread)->UseRealTime();

// A raise nobody awaits: the fast path (a lookup, the lock, no allocation).
void BM_Event_RaiseNoWaiter(benchmark::State &state) {
	helsim::Machine machine;
	auto host = machine.attach();
	HelHandle event;
	check(helCreateBitsetEvent(&event), "helCreateBitsetEvent");
	for (auto _ : state)
		check(helsimRaiseBitsetEvent(event, 1), "raise");
	check(helCloseDescriptor(kHelThisUniverse, event), "close");
}
BENCHMARK(BM_Event_RaiseNoWaiter);

// Host baseline for the same-thread case: write an eventfd, read it back.
void BM_Host_Eventfd_SameThread(benchmark::State &state) {
	int fd = eventfd(0, 0);
	if (fd < 0) {
		state.SkipWithError("eventfd failed");
		return;
	}
	bool ok = true;
	for (auto _ : state) {
		std::uint64_t value = 1;
		ok = ok && write(fd, &value, sizeof(value)) == sizeof(value) &&
				read(fd, &value, sizeof(value)) == sizeof(value);
	}
	close(fd);
	if (!ok)
		state.SkipWithError("read or write failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Host_Eventfd_SameThread)->UseRealTime();

} // namespace
