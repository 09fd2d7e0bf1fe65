// Fibers that move between simulated CPUs, i.e. switch out on one host thread and resume on
// another (sim/fiber.cpp, sim/threads_host.cpp). Issue 10, item 3: three fibers pinning
// themselves alternately to CPU 0 and CPU 1 crashed under clang (SIGSEGV in jump_fcontext, a
// forced_unwind out of Fiber::switch_in on a CPU thread, "a fiber switched out without a
// reason"): the fiber kept the address of the previous host thread's scheduler context across
// the switch. The names say "Stress" so that CI runs them under TSan as well.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "../support.hpp"

namespace {

helsim::MachineConfig two_cpus() {
	helsim::MachineConfig config;
	config.cpus = 2;
	config.mode = helsim::Mode::threads;
	return config;
}

constexpr std::uint8_t kCpu0 = 0x01;
constexpr std::uint8_t kCpu1 = 0x02;

struct Tally {
	std::atomic<int> errors{0};    // a syscall that did not return kHelErrNone
	std::atomic<int> wrong_cpu{0}; // running on a CPU the affinity does not allow
	std::atomic<int> rounds{0};
};

void check(Tally &tally, HelError e) {
	if (e != kHelErrNone)
		tally.errors.fetch_add(1, std::memory_order_relaxed);
}

// Pins the caller to one CPU, then checks it runs there, before and after a syscall or two.
void hop(Tally &tally, std::uint8_t mask, int expected_cpu) {
	check(tally, helSetAffinity(kHelThisThread, &mask, 1));
	int cpu = -1;
	check(tally, helGetCurrentCpu(&cpu));
	if (cpu != expected_cpu)
		tally.wrong_cpu.fetch_add(1, std::memory_order_relaxed);
	check(tally, helNop());
	check(tally, helYield());
	check(tally, helGetCurrentCpu(&cpu));
	if (cpu != expected_cpu)
		tally.wrong_cpu.fetch_add(1, std::memory_order_relaxed);
}

// The repro of the issue: every round migrates each fiber twice, while the other two fibers
// switch in and out on both CPUs.
TEST(FiberMigrationStress, ThreeFibersAlternateBetweenTwoCpus) {
	constexpr int kFibers = 3;
	constexpr int kRounds = 2000;
	helsim::Machine machine{two_cpus()};
	Tally tally;
	for (int f = 0; f < kFibers; ++f)
		machine.spawn("hopper" + std::to_string(f), [&](std::span<const HelHandle>) {
			for (int round = 0; round < kRounds; ++round) {
				hop(tally, kCpu0, 0);
				hop(tally, kCpu1, 1);
				tally.rounds.fetch_add(1, std::memory_order_relaxed);
			}
		});
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(tally.rounds.load(), kFibers * kRounds);
	EXPECT_EQ(tally.errors.load(), 0);
	EXPECT_EQ(tally.wrong_cpu.load(), 0);
}

// The other way to migrate: a fiber parks on one CPU and, its affinity changed by another
// thread meanwhile, is woken onto the other. Two workers ping-pong through a futex (woken by
// each other, from either CPU) and take a short timed nap on a futex nobody wakes (woken by a
// timer: a park that surely switches out), while a third thread keeps flipping their
// affinities.
struct PingPong {
	int turn = 0;
	int rounds = 0;
	std::atomic<int> done{0};
	std::atomic<int> errors{0};
	std::atomic<int> moved{0}; // waits that ended on another CPU than they began (of 4 a round)
};

int current_cpu() {
	int cpu = -1;
	helGetCurrentCpu(&cpu);
	return cpu;
}

struct Worker {
	PingPong *game;
	int side;
};

void ping_pong_entry(std::uintptr_t argument) {
	auto &worker = *reinterpret_cast<Worker *>(argument);
	PingPong &game = *worker.game;
	for (int round = 0; round < game.rounds; ++round) {
		int before = current_cpu();
		if (!helsim::test::wait_for(&game.turn, worker.side))
			game.errors.fetch_add(1, std::memory_order_relaxed);
		if (current_cpu() != before)
			game.moved.fetch_add(1, std::memory_order_relaxed);
		helsim::test::store(&game.turn, 1 - worker.side);
		if (helFutexWake(&game.turn, 1) != kHelErrNone)
			game.errors.fetch_add(1, std::memory_order_relaxed);

		int never_woken = 0;
		std::uint64_t now = 0;
		if (helGetClock(&now) != kHelErrNone)
			game.errors.fetch_add(1, std::memory_order_relaxed);
		before = current_cpu();
		if (helFutexWait(&never_woken, 0, static_cast<std::int64_t>(now + 10'000)) !=
				kHelErrTimeout)
			game.errors.fetch_add(1, std::memory_order_relaxed);
		if (current_cpu() != before)
			game.moved.fetch_add(1, std::memory_order_relaxed);
	}
	game.done.fetch_add(1, std::memory_order_release);
}

TEST(FiberMigrationStress, ParkedFibersWakeOnTheCpuTheirNewAffinityAllows) {
	helsim::Machine machine{two_cpus()};
	PingPong game;
	game.rounds = 2000;
	Worker workers[2] = {{&game, 0}, {&game, 1}};
	std::atomic<int> mover_errors{0};
	machine.spawn("mover", [&](std::span<const HelHandle>) {
		HelHandle threads[2] = {kHelNullHandle, kHelNullHandle};
		for (int i = 0; i < 2; ++i)
			if (helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						reinterpret_cast<void *>(&ping_pong_entry), &workers[i], 0,
						&threads[i]) != kHelErrNone)
				mover_errors.fetch_add(1);
		// Flip each worker between the CPUs: a worker that is parked (or queued) moves when it
		// is next made runnable.
		for (unsigned flip = 0; game.done.load(std::memory_order_acquire) < 2; ++flip) {
			for (int i = 0; i < 2; ++i) {
				std::uint8_t mask = ((flip + static_cast<unsigned>(i)) & 1) ? kCpu1 : kCpu0;
				if (helSetAffinity(threads[i], &mask, 1) != kHelErrNone)
					mover_errors.fetch_add(1);
			}
			if (helYield() != kHelErrNone)
				mover_errors.fetch_add(1);
		}
		for (HelHandle thread : threads)
			if (helCloseDescriptor(kHelThisUniverse, thread) != kHelErrNone)
				mover_errors.fetch_add(1);
	});
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(game.done.load(), 2);
	EXPECT_EQ(game.errors.load(), 0);
	EXPECT_EQ(mover_errors.load(), 0);
	EXPECT_GT(game.moved.load(), 0) << "no wait ended on another CPU: nothing was tested";
}

} // namespace
