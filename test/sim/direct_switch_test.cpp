// Direct fiber-to-fiber switches in threads mode (sim/threads_host.cpp, ThreadsHost::leave_cpu):
// a fiber that yields or parks while its CPU has another task ready switches straight to it,
// and that task finishes the switch-out (re-queueing, or the park) on its own stack. The
// schedule must stay what the scheduler loop would make: round-robin among equals, priority
// first, every park finished before the task can run again. The names with "Stress" run
// under TSan in CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "../support.hpp"
#include "kernel/core/kernel.hpp"

namespace {

helsim::MachineConfig threads_mode(unsigned cpus) {
	helsim::MachineConfig config;
	config.cpus = cpus;
	config.mode = helsim::Mode::threads;
	return config;
}

constexpr std::uint8_t kCpu0 = 0x01;
constexpr std::uint8_t kCpu1 = 0x02;

void pin(std::uint8_t mask, std::atomic<int> &errors) {
	if (helSetAffinity(kHelThisThread, &mask, 1) != kHelErrNone)
		errors.fetch_add(1, std::memory_order_relaxed);
}

// Fibers of one priority that yield take turns in the order they queued: once every fiber has
// run, each yield switches straight to the next one in the ring. Every yield is a context
// switch, direct or not, as is every fiber's first run.
TEST(DirectSwitch, YieldingFibersTakeTurnsRoundRobin) {
	constexpr int kFibers = 4;
	constexpr int kRounds = 500;
	helsim::Machine machine{threads_mode(1)};
	// One CPU: only one fiber runs at a time.
	int started = 0;
	std::uint64_t yields = 0;
	std::vector<int> order;
	std::atomic<int> errors{0};
	auto yield = [&] {
		++yields;
		if (helYield() != kHelErrNone)
			errors.fetch_add(1, std::memory_order_relaxed);
	};
	for (int f = 0; f < kFibers; ++f)
		machine.spawn("yielder" + std::to_string(f), [&, f](std::span<const HelHandle>) {
			// The fibers reach the CPU one by one: the ring forms once all have run.
			++started;
			while (started < kFibers)
				yield();
			for (int round = 0; round < kRounds; ++round) {
				order.push_back(f);
				yield();
			}
		});
	auto report = machine.run();
	helsim::test::expect_clean(report);
	EXPECT_EQ(errors.load(), 0);
	ASSERT_EQ(order.size(), std::size_t{kFibers * kRounds});
	std::vector<int> first(order.begin(), order.begin() + kFibers);
	std::sort(first.begin(), first.end());
	for (int f = 0; f < kFibers; ++f)
		EXPECT_EQ(first[f], f) << "every fiber takes one turn of each lap";
	for (std::size_t i = kFibers; i < order.size(); ++i)
		ASSERT_EQ(order[i], order[i % kFibers]) << "at step " << i;
	EXPECT_EQ(report.counters.context_switches, yields + kFibers);
}

// A yield while only lower-priority tasks are ready keeps the CPU, and still counts as a
// switch, as the scheduler loop would make it.
TEST(DirectSwitch, YieldKeepsTheCpuOverLowerPriorities) {
	constexpr int kYields = 100;
	helsim::Machine machine{threads_mode(1)};
	std::vector<char> order;
	std::atomic<int> errors{0};
	machine.spawn("high", [&](std::span<const HelHandle>) {
		// Of one priority, the two take turns until "low" has run once.
		while (order.empty())
			helYield();
		if (helSetPriority(kHelThisThread, 1) != kHelErrNone)
			errors.fetch_add(1);
		for (int i = 0; i < kYields; ++i) {
			order.push_back('h');
			if (helYield() != kHelErrNone)
				errors.fetch_add(1);
		}
	});
	machine.spawn("low", [&](std::span<const HelHandle>) {
		order.push_back('l');
		helYield();
		order.push_back('l');
	});
	auto report = machine.run();
	helsim::test::expect_clean(report);
	EXPECT_EQ(errors.load(), 0);
	EXPECT_EQ(std::string(order.begin(), order.end()), "l" + std::string(kYields, 'h') + "l");
}

// Spawns a ring of `fibers` fibers passing a token `rounds` times round through futexes: each
// waits for its turn, calls on_turn(its index), hands the turn to the next and wakes the ring;
// then it calls after().
void spawn_token_ring(
		helsim::Machine &machine, int fibers, int rounds, int &turn, std::atomic<int> &errors,
		std::function<void(int)> on_turn, std::function<void()> after = [] {}) {
	for (int f = 0; f < fibers; ++f)
		machine.spawn("ring" + std::to_string(f),
				[&turn, &errors, f, fibers, rounds, on_turn, after](std::span<const HelHandle>) {
					for (int round = 0; round < rounds; ++round) {
						if (!helsim::test::wait_for(&turn, f))
							errors.fetch_add(1, std::memory_order_relaxed);
						on_turn(f);
						helsim::test::store(&turn, (f + 1) % fibers);
						if (helFutexWake(&turn, fibers) != kHelErrNone)
							errors.fetch_add(1, std::memory_order_relaxed);
					}
					after();
				});
}

// A token goes round a ring of fibers on one CPU through futexes: each one wakes the next and
// parks, so that every park switches straight to the fiber it woke.
TEST(DirectSwitch, ParkRingPassesTheTokenInOrder) {
	constexpr int kFibers = 5;
	constexpr int kRounds = 400;
	helsim::Machine machine{threads_mode(1)};
	int turn = 0;
	std::vector<int> order;
	std::atomic<int> errors{0};
	spawn_token_ring(machine, kFibers, kRounds, turn, errors, [&](int f) { order.push_back(f); });
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(errors.load(), 0);
	ASSERT_EQ(order.size(), std::size_t{kFibers * kRounds});
	for (std::size_t i = 0; i < order.size(); ++i)
		ASSERT_EQ(order[i], static_cast<int>(i % kFibers)) << "at step " << i;
}

// A park that switches directly leaves the machine's activity count to be settled by its CPU
// before that CPU idles (ThreadsHost::settle_parks): once every fiber of a ring has passed
// the token round and then waits for good, most of them having parked straight into the next
// one, the count must still reach zero, so that run() returns and reports them all stuck
// (a park left unsettled hangs the run instead).
TEST(DirectSwitch, ParksThatSwitchDirectlyStillLetAStuckMachineStop) {
	constexpr int kFibers = 4;
	constexpr int kRounds = 50;
	helsim::Machine machine{threads_mode(1)};
	int turn = 0;
	int never = 0;
	std::uint64_t passes = 0;
	std::atomic<int> errors{0};
	spawn_token_ring(
			machine, kFibers, kRounds, turn, errors, [&](int) { ++passes; },
			[&] { helFutexWait(&never, 0, -1); });
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	ASSERT_EQ(report.threads.size(), std::size_t{kFibers}) << report.to_string();
	for (const auto &thread : report.threads)
		EXPECT_EQ(thread.outcome, helsim::ThreadOutcome::blocked) << thread.name;
	EXPECT_EQ(machine.kernel_for_extensions().host().activity(), 0);
	EXPECT_EQ(errors.load(), 0);
	EXPECT_EQ(passes, std::uint64_t{kFibers * kRounds});
}

// Parks on CPU 0 that switch directly race with wake-ups from CPU 1: a ring of fibers pinned to
// CPU 0 passes a token, and every lap the token also visits a fiber on CPU 1, whose wake-up of
// the ring crosses CPUs while the ring's fibers park and switch among themselves. A third
// party on CPU 1 keeps waking every ring fiber spuriously. A wake-up lost, or a fiber resumed
// before its switch-out finished, hangs or crashes the run; the token's path checks the order.
TEST(DirectSwitchStress, ParksRaceWithCrossCpuWakeups) {
	constexpr int kRing = 3;
	constexpr int kLaps = 1500;
	helsim::Machine machine{threads_mode(2)};
	// Token holder: 0 .. kRing - 1 on CPU 0, kRing for the visitor on CPU 1.
	int token = 0;
	std::atomic<int> passes{0};
	std::atomic<int> errors{0};
	std::atomic<bool> done{false};
	auto pass_on = [&](int next) {
		helsim::test::store(&token, next);
		if (helFutexWake(&token, kRing + 1) != kHelErrNone)
			errors.fetch_add(1, std::memory_order_relaxed);
	};
	for (int f = 0; f < kRing; ++f)
		machine.spawn("ring" + std::to_string(f), [&, f](std::span<const HelHandle>) {
			pin(kCpu0, errors);
			for (int lap = 0; lap < kLaps; ++lap) {
				if (!helsim::test::wait_for(&token, f))
					errors.fetch_add(1, std::memory_order_relaxed);
				passes.fetch_add(1, std::memory_order_relaxed);
				pass_on(f + 1 < kRing ? f + 1 : kRing);
			}
		});
	machine.spawn("visitor", [&](std::span<const HelHandle>) {
		pin(kCpu1, errors);
		for (int lap = 0; lap < kLaps; ++lap) {
			if (!helsim::test::wait_for(&token, kRing))
				errors.fetch_add(1, std::memory_order_relaxed);
			int cpu = -1;
			if (helGetCurrentCpu(&cpu) != kHelErrNone || cpu != 1)
				errors.fetch_add(1, std::memory_order_relaxed);
			pass_on(0);
		}
		done.store(true, std::memory_order_release);
	});
	machine.spawn("spurious", [&](std::span<const HelHandle>) {
		pin(kCpu1, errors);
		while (!done.load(std::memory_order_acquire)) {
			if (helFutexWake(&token, kRing + 1) != kHelErrNone)
				errors.fetch_add(1, std::memory_order_relaxed);
			helYield();
		}
	});
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(errors.load(), 0);
	EXPECT_EQ(passes.load(), kRing * kLaps);
}

} // namespace
