// Tests of helFutexWait / helFutexWake (src/kernel/threads/futex.cpp).
#include <gtest/gtest.h>

#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

helsim::MachineConfig cpus(unsigned n) {
	helsim::MachineConfig config;
	config.cpus = n;
	return config;
}

int load(const int &word) { return __atomic_load_n(&word, __ATOMIC_SEQ_CST); }
void store(int &word, int value) { __atomic_store_n(&word, value, __ATOMIC_SEQ_CST); }

std::uint64_t clock_now() {
	std::uint64_t now = 0;
	EXPECT_EQ(helGetClock(&now), kHelErrNone);
	return now;
}

std::string hex(const void *address) {
	char text[32];
	std::snprintf(text, sizeof(text), "0x%lx",
			static_cast<unsigned long>(reinterpret_cast<std::uintptr_t>(address)));
	return text;
}

int count_outcome(const helsim::RunReport &report, helsim::ThreadOutcome outcome) {
	int n = 0;
	for (const auto &t : report.threads)
		n += t.outcome == outcome;
	return n;
}

// Waits until `word` holds `value`; counts results other than None / FutexRace.
void await_value(int &word, int value, std::atomic<int> &bad_results) {
	for (int seen; (seen = load(word)) != value;) {
		HelError e = helFutexWait(&word, seen, kHelWaitInfinite);
		if (e != kHelErrNone && e != kHelErrFutexRace)
			bad_results.fetch_add(1);
	}
}

void hand_over(int &word, int value) {
	store(word, value);
	EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
}

} // namespace

// ---------------------------------------------------------------- argument checks

TEST(FutexArgs, RaceWhenTheValueDiffers) {
	helsim::Machine machine;
	int word = 7;
	{
		// Finite deadlines, so that a wrong answer is a Timeout rather than a hang.
		auto attached = machine.attach();
		EXPECT_EQ(helFutexWait(&word, 6, static_cast<std::int64_t>(clock_now() + 100'000'000)),
				kHelErrFutexRace);
		EXPECT_EQ(helFutexWait(&word, -7, 0), kHelErrFutexRace);
	}
	// The infinite wait from a fiber: were it to block, run() would report the machine stuck.
	HelError infinite = -1;
	machine.spawn("racer", [&](std::span<const HelHandle>) {
		infinite = helFutexWait(&word, 8, kHelWaitInfinite);
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(infinite, kHelErrFutexRace);
	EXPECT_EQ(word, 7);
}

TEST(FutexArgs, DeadlineBelowMinusOneIsIllegal) {
	helsim::Machine machine;
	auto attached = machine.attach();
	int word = 0;
	EXPECT_EQ(helFutexWait(&word, 0, -2), kHelErrIllegalArgs);
	EXPECT_EQ(helFutexWait(&word, 0, INT64_MIN), kHelErrIllegalArgs);
	// Checked before the value: a differing value does not hide the bad deadline.
	EXPECT_EQ(helFutexWait(&word, 1, -2), kHelErrIllegalArgs);
}

TEST(FutexArgs, BadPointersFault) {
	helsim::Machine machine;
	auto attached = machine.attach();
	int *zero_page = reinterpret_cast<int *>(std::uintptr_t{0x100});
	int *non_canonical = reinterpret_cast<int *>(std::uintptr_t{0x8000000000000000u});
	int *past_user_half = reinterpret_cast<int *>(std::uintptr_t{1} << 47);
	for (int *bad : {static_cast<int *>(nullptr), zero_page, non_canonical, past_user_half}) {
		SCOPED_TRACE(hex(bad));
		EXPECT_EQ(helFutexWait(bad, 0, kHelWaitInfinite), kHelErrFault);
		EXPECT_EQ(helFutexWait(bad, 0, 0), kHelErrFault);
		EXPECT_EQ(helFutexWake(bad, 1), kHelErrFault);
		EXPECT_EQ(helFutexWake(bad, UINT_MAX), kHelErrFault);
	}
}

// thor checks the alignment first (GlobalFutexSpace::withFutex), so a misaligned address is
// IllegalArgs whether or not anything is mapped there.
TEST(FutexArgs, MisalignedAddressIsIllegalArgsBeforeAnyLookup) {
	helsim::Machine machine;
	auto attached = machine.attach();
	alignas(8) int words[2] = {0, 0};
	int *mapped = reinterpret_cast<int *>(reinterpret_cast<char *>(&words[0]) + 1);
	int *unmapped = reinterpret_cast<int *>(std::uintptr_t{0x102});
	int *non_canonical = reinterpret_cast<int *>(std::uintptr_t{0x8000000000000001u});
	for (int *bad : {mapped, unmapped, non_canonical}) {
		SCOPED_TRACE(hex(bad));
		EXPECT_EQ(helFutexWait(bad, 0, kHelWaitInfinite), kHelErrIllegalArgs);
		EXPECT_EQ(helFutexWait(bad, 0, 0), kHelErrIllegalArgs);
		EXPECT_EQ(helFutexWake(bad, 1), kHelErrIllegalArgs);
	}
}

TEST(FutexArgs, WakeWithoutWaitersIsFine) {
	helsim::Machine machine;
	auto attached = machine.attach();
	int word = 0;
	EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
	EXPECT_EQ(helFutexWake(&word, UINT_MAX), kHelErrNone);
	EXPECT_EQ(helFutexWake(&word, 0), kHelErrNone);
	EXPECT_EQ(word, 0);
}

// ---------------------------------------------------------------- deadlines

TEST(FutexTimeout, AttachedThreadTimesOutAfterItsDeadline) {
	helsim::Machine machine;
	auto attached = machine.attach();
	int word = 0;
	std::uint64_t deadline = clock_now() + 1'000'000;
	EXPECT_EQ(helFutexWait(&word, 0, static_cast<std::int64_t>(deadline)), kHelErrTimeout);
	EXPECT_GE(clock_now(), deadline);
	// A deadline that has already passed times out at once (the value still matches).
	EXPECT_EQ(helFutexWait(&word, 0, 0), kHelErrTimeout);
}

TEST(FutexTimeout, FiberTimesOutAfterItsDeadline) {
	helsim::Machine machine;
	HelError result = -1, past = -1;
	std::uint64_t deadline = 0, woke_at = 0;
	machine.spawn("sleeper", [&](std::span<const HelHandle>) {
		int word = 0;
		deadline = clock_now() + 1'000'000;
		result = helFutexWait(&word, 0, static_cast<std::int64_t>(deadline));
		woke_at = clock_now();
		past = helFutexWait(&word, 0, 0);
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(result, kHelErrTimeout);
	EXPECT_GE(woke_at, deadline);
	EXPECT_EQ(past, kHelErrTimeout);
}

TEST(FutexTimeout, InfiniteWaitReturnsOnlyWhenWoken) {
	helsim::Machine machine{cpus(2)};
	int word = 0; // never changes: only a wake can end the wait
	std::atomic<int> wakes_issued{0};
	std::atomic<bool> returned{false};
	HelError result = -1;
	int wakes_before_return = -1;
	machine.spawn("waiter", [&](std::span<const HelHandle>) {
		result = helFutexWait(&word, 0, kHelWaitInfinite);
		wakes_before_return = wakes_issued.load();
		returned = true;
	});
	machine.spawn("waker", [&](std::span<const HelHandle>) {
		// Gives up after a second, so that a wake that never arrives fails the test (the
		// waiter stays blocked and run() reports the machine stuck) instead of hanging it.
		const std::uint64_t give_up = clock_now() + 1'000'000'000;
		while (!returned.load() && clock_now() < give_up) {
			wakes_issued.fetch_add(1);
			ASSERT_EQ(helFutexWake(&word, 1), kHelErrNone);
			helYield();
		}
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(result, kHelErrNone);
	EXPECT_GE(wakes_before_return, 1);
}

// ---------------------------------------------------------------- waking

TEST(FutexWake, WakesExactlyTheRequestedNumberOfWaiters) {
	helsim::Machine machine{cpus(2)};
	constexpr int kWaiters = 4;
	int word = 0, other = 0;
	std::atomic<int> woken{0}, bad_results{0};
	for (int i = 0; i < kWaiters; ++i) {
		machine.spawn("waiter" + std::to_string(i), [&](std::span<const HelHandle>) {
			if (helFutexWait(&word, 0, kHelWaitInfinite) != kHelErrNone)
				bad_results.fetch_add(1);
			woken.fetch_add(1);
		});
	}
	// run() returns "stuck" exactly when every waiter sits in the futex.
	auto all_waiting = machine.run();
	ASSERT_TRUE(all_waiting.stuck) << all_waiting.to_string();
	ASSERT_EQ(count_outcome(all_waiting, helsim::ThreadOutcome::blocked), kWaiters);
	ASSERT_EQ(woken.load(), 0);

	{ // A wake on another word wakes none of them.
		auto attached = machine.attach();
		EXPECT_EQ(helFutexWake(&other, UINT_MAX), kHelErrNone);
	}
	auto unchanged = machine.run();
	ASSERT_TRUE(unchanged.stuck);
	EXPECT_EQ(count_outcome(unchanged, helsim::ThreadOutcome::blocked), kWaiters);
	EXPECT_EQ(woken.load(), 0);

	{
		auto attached = machine.attach();
		EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
	}
	auto one_woken = machine.run();
	ASSERT_TRUE(one_woken.stuck) << one_woken.to_string();
	EXPECT_EQ(woken.load(), 1);
	EXPECT_EQ(count_outcome(one_woken, helsim::ThreadOutcome::blocked), kWaiters - 1);
	EXPECT_EQ(count_outcome(one_woken, helsim::ThreadOutcome::returned), 1);

	{
		auto attached = machine.attach();
		EXPECT_EQ(helFutexWake(&word, UINT_MAX), kHelErrNone);
	}
	auto all_woken = machine.run();
	ASSERT_FALSE(all_woken.stuck) << all_woken.to_string();
	EXPECT_EQ(woken.load(), kWaiters);
	EXPECT_EQ(count_outcome(all_woken, helsim::ThreadOutcome::returned), kWaiters);
	EXPECT_EQ(bad_results.load(), 0);
}

TEST(FutexWake, PingPongAcrossTwoCpusLosesNoWakeups) {
	helsim::Machine machine{cpus(2)};
	// 20000 hand-overs. When both CPU host threads really run at once, an idle CPU's short spin
	// catches most hand-overs (~0.05 s); on a busy 2-core host each one costs a host futex
	// wake-up instead (~25 µs, ~0.5 s in all).
	constexpr int kRounds = 10000;
	int turn = 0; // 0: ping's turn, 1: pong's turn
	std::atomic<int> pings{0}, pongs{0}, bad_results{0}, wrong_cpu{0};
	auto player = [&turn, &bad_results, &wrong_cpu](int me, int next, std::atomic<int> *count) {
		return [&turn, &bad_results, &wrong_cpu, me, next, count](std::span<const HelHandle>) {
			std::uint8_t mask = static_cast<std::uint8_t>(1u << me);
			ASSERT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
			int cpu = -1;
			ASSERT_EQ(helGetCurrentCpu(&cpu), kHelErrNone);
			if (cpu != me)
				wrong_cpu.fetch_add(1);
			for (int i = 0; i < kRounds; ++i) {
				await_value(turn, me, bad_results);
				count->fetch_add(1);
				hand_over(turn, next);
			}
		};
	};
	machine.spawn("ping", player(0, 1, &pings));
	machine.spawn("pong", player(1, 0, &pongs));
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << "lost wake-up:\n" << report.to_string();
	EXPECT_EQ(pings.load(), kRounds);
	EXPECT_EQ(pongs.load(), kRounds);
	EXPECT_EQ(bad_results.load(), 0);
	EXPECT_EQ(wrong_cpu.load(), 0);
	EXPECT_EQ(load(turn), 0);
}

TEST(FutexWake, PingPongBetweenFiberAndAttachedThread) {
	helsim::Machine machine{cpus(2)};
	constexpr int kRounds = 5000;
	int turn = 0; // 0: the host thread's turn, 1: the fiber's
	int abort_word = 0;
	std::atomic<int> host_rounds{0}, fiber_rounds{0}, bad_results{0};
	std::atomic<bool> attached_ready{false};

	std::thread host{[&] {
		auto attached = machine.attach();
		attached_ready = true;
		attached_ready.notify_all();
		for (int i = 0; i < kRounds && !load(abort_word); ++i) {
			for (int seen; (seen = load(turn)) != 0 && !load(abort_word);) {
				HelError e = helFutexWait(&turn, seen, kHelWaitInfinite);
				if (e != kHelErrNone && e != kHelErrFutexRace)
					bad_results.fetch_add(1);
			}
			if (load(abort_word))
				break;
			host_rounds.fetch_add(1);
			hand_over(turn, 1);
		}
	}};
	// The host thread counts as running from its attach on; only then may run() judge the
	// machine (a fiber waiting for a thread that has not attached yet would look stuck).
	attached_ready.wait(false);
	machine.spawn("fiber", [&](std::span<const HelHandle>) {
		for (int i = 0; i < kRounds; ++i) {
			await_value(turn, 1, bad_results);
			fiber_rounds.fetch_add(1);
			hand_over(turn, 0);
		}
	});
	auto report = machine.run();
	if (report.stuck) {
		// A lost wake-up: free the host thread so that the test fails instead of hanging.
		auto attached = machine.attach();
		store(abort_word, 1);
		store(turn, 0);
		helFutexWake(&turn, UINT_MAX);
	}
	host.join();
	ASSERT_FALSE(report.stuck) << "lost wake-up:\n" << report.to_string();
	EXPECT_EQ(host_rounds.load(), kRounds);
	EXPECT_EQ(fiber_rounds.load(), kRounds);
	EXPECT_EQ(bad_results.load(), 0);
}

// ---------------------------------------------------------------- deadlock reports

TEST(FutexStuck, ThreadWaitingForeverIsReportedWithItsFutex) {
	helsim::Machine machine;
	int word = 0;
	std::atomic<bool> returned{false};
	machine.spawn("sleeper", [&](std::span<const HelHandle>) {
		helFutexWait(&word, 0, kHelWaitInfinite);
		returned = true;
	});
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	EXPECT_FALSE(returned.load());
	ASSERT_EQ(report.threads.size(), 1u) << report.to_string();
	const auto &sleeper = report.threads[0];
	EXPECT_EQ(sleeper.name, "sleeper");
	EXPECT_EQ(sleeper.outcome, helsim::ThreadOutcome::blocked);
	EXPECT_NE(sleeper.waits_on.find("futex"), std::string::npos) << sleeper.waits_on;
	EXPECT_NE(sleeper.waits_on.find(hex(&word)), std::string::npos)
			<< sleeper.waits_on << " does not name " << hex(&word);
	EXPECT_NE(report.to_string().find("stuck"), std::string::npos);
}

TEST(FutexStuck, TimedWaitIsNotADeadlock) {
	helsim::Machine machine;
	HelError result = -1;
	machine.spawn("napper", [&](std::span<const HelHandle>) {
		int word = 0;
		result = helFutexWait(&word, 0, static_cast<std::int64_t>(clock_now() + 2'000'000));
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(result, kHelErrTimeout);
}
