// Tests of the cost model (helsim::CostModel): in deterministic mode every figure advances the
// virtual clock by the configured amount, and RunReport::simulated_time_ns reports it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;

helsim::CostModel zero_costs() {
	helsim::CostModel c;
	c.syscall_ns = 0;
	c.context_switch_ns = 0;
	c.cross_cpu_wake_ns = 0;
	c.copy_ps_per_byte = 0;
	c.page_walk_ns = 0;
	c.page_fault_ns = 0;
	return c;
}

helsim::MachineConfig config(const helsim::CostModel &costs, unsigned cpus = 1,
		std::uint64_t seed = 7) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.mode = helsim::Mode::deterministic;
	c.seed = seed;
	c.costs = costs;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

std::uint64_t total_syscalls(const helsim::RunReport &report) {
	std::uint64_t n = 0;
	for (const auto &[name, count] : report.counters.syscalls)
		n += count;
	return n;
}

helsim::RunReport run(const helsim::CostModel &costs, std::function<void()> body,
		unsigned cpus = 1) {
	helsim::Machine machine{config(costs, cpus)};
	machine.spawn("worker", [&](std::span<const HelHandle>) { body(); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_EQ(t.outcome, helsim::ThreadOutcome::returned) << t.name << ": " << t.message;
	return report;
}

void nops(int n) {
	for (int i = 0; i < n; ++i)
		ASSERT_EQ(helNop(), kHelErrNone);
}

TEST(CostModel, DefaultsAreDocumentedFigures) {
	helsim::CostModel c;
	EXPECT_EQ(c.syscall_ns, 100u);
	EXPECT_EQ(c.context_switch_ns, 200u);
	EXPECT_EQ(c.cross_cpu_wake_ns, 1000u);
	EXPECT_EQ(c.copy_ps_per_byte, 100u);
	EXPECT_EQ(c.page_walk_ns, 30u);
	EXPECT_EQ(c.page_fault_ns, 1000u);
}

TEST(CostModel, EverySyscallIsCharged) {
	auto costs = zero_costs();
	costs.syscall_ns = 7;
	auto report = run(costs, [] { nops(25); });
	EXPECT_EQ(total_syscalls(report), 25u);
	EXPECT_EQ(report.simulated_time_ns, 25u * 7);
}

TEST(CostModel, DoublingTheSyscallCostAddsOneDeltaPerSyscall) {
	// The same workload with the default costs, then with the syscall cost doubled.
	auto body = [] {
		nops(10);
		int word = 0;
		ASSERT_EQ(helFutexWake(&word, 1), kHelErrNone);
		ASSERT_EQ(helYield(), kHelErrNone);
		nops(5);
	};
	helsim::CostModel base;
	helsim::CostModel doubled = base;
	doubled.syscall_ns *= 2;
	auto a = run(base, body);
	auto b = run(doubled, body);
	ASSERT_EQ(total_syscalls(a), total_syscalls(b));
	EXPECT_EQ(total_syscalls(a), 17u);
	EXPECT_EQ(b.simulated_time_ns - a.simulated_time_ns, total_syscalls(a) * base.syscall_ns);
}

TEST(CostModel, ContextSwitchCostIsChargedPerSwitch) {
	auto costs = zero_costs();
	costs.context_switch_ns = 5;
	// One switch in at the start and one after each of the 3 yields.
	auto report = run(costs, [] {
		for (int i = 0; i < 3; ++i)
			ASSERT_EQ(helYield(), kHelErrNone);
	});
	EXPECT_EQ(report.simulated_time_ns, 4u * 5);
	costs.context_switch_ns = 50;
	auto slower = run(costs, [] {
		for (int i = 0; i < 3; ++i)
			ASSERT_EQ(helYield(), kHelErrNone);
	});
	EXPECT_EQ(slower.simulated_time_ns, 4u * 50);
}

TEST(CostModel, CopyCostScalesWithBytes) {
	// helLog copies its message from user memory (here: host memory, the fault-safe path).
	auto costs = zero_costs();
	costs.copy_ps_per_byte = 1000; // 1 ns per byte
	std::vector<char> text(3000, 'x');
	auto log = [&](std::size_t n) {
		return run(costs,
				[&] { ASSERT_EQ(helLog(kHelLogSeverityInfo, text.data(), n), kHelErrNone); });
	};
	EXPECT_EQ(log(100).simulated_time_ns, 100u);
	EXPECT_EQ(log(3000).simulated_time_ns, 3000u);
	// Sub-nanosecond figures accumulate exactly: 250 ps/byte * 3000 bytes = 750 ns.
	costs.copy_ps_per_byte = 250;
	EXPECT_EQ(log(3000).simulated_time_ns, 750u);
}

TEST(CostModel, KernelCopiesOfMappedMemoryPayPerPageWalked) {
	auto costs = zero_costs();
	costs.page_walk_ns = 10;
	costs.copy_ps_per_byte = 1000;
	auto report = run(costs, [] {
		auto *p = static_cast<char *>(map_new_memory(4 * kPage));
		std::memset(p, 'y', 4 * kPage); // faults are free here
		// 3 pages starting mid-page touch 4 pages: 4 walks, 3 pages' worth of bytes.
		ASSERT_EQ(helLog(kHelLogSeverityInfo, p + kPage / 2, 3 * kPage), kHelErrNone);
	});
	EXPECT_EQ(report.simulated_time_ns, 4u * 10 + 3 * kPage);
}

TEST(CostModel, FaultCostCountsFaults) {
	auto costs = zero_costs();
	costs.page_fault_ns = 1000;
	auto touch = [&](std::size_t pages) {
		return run(costs, [pages] {
			auto *p = static_cast<volatile char *>(map_new_memory(pages * kPage));
			for (std::size_t i = 0; i < pages; ++i)
				p[i * kPage] = 1;
		});
	};
	auto two = touch(2);
	auto eight = touch(8);
	EXPECT_GE(two.simulated_time_ns, 2u * 1000);
	EXPECT_EQ(eight.simulated_time_ns - two.simulated_time_ns, 6u * 1000);
}

TEST(CostModel, CrossCpuWakeIsChargedOnlyAcrossCpus) {
	// Two CPUs: the waker and the sleeper alternate over a futex. Only the cross-CPU
	// figure is non-zero, so the time is a multiple of it, and zero if it is zero.
	auto ping_pong = [](const helsim::CostModel &costs) {
		helsim::Machine machine{config(costs, 2, 11)};
		int ball = 0;
		machine.spawn("ping", [&](std::span<const HelHandle>) {
			for (int i = 0; i < 20; ++i) {
				ASSERT_TRUE(wait_for(&ball, 0));
				set_and_wake(&ball, 1);
			}
		});
		machine.spawn("pong", [&](std::span<const HelHandle>) {
			for (int i = 0; i < 20; ++i) {
				ASSERT_TRUE(wait_for(&ball, 1));
				set_and_wake(&ball, 0);
			}
		});
		auto report = machine.run();
		EXPECT_FALSE(report.stuck) << report.to_string();
		return report.simulated_time_ns;
	};
	auto costs = zero_costs();
	EXPECT_EQ(ping_pong(costs), 0u);
	costs.cross_cpu_wake_ns = 1000;
	std::uint64_t t = ping_pong(costs);
	EXPECT_EQ(t % 1000, 0u);
	EXPECT_GT(t, 0u) << "fibers start on different CPUs, so some wakes cross CPUs";
}

TEST(CostModel, VirtualTimeStillJumpsOverIdle) {
	constexpr std::uint64_t kSecond = 1'000'000'000;
	auto report = run(zero_costs(), [] {
		helsim::Dispatcher dispatcher;
		std::uint64_t now = 0;
		ASSERT_EQ(helGetClock(&now), kHelErrNone);
		dispatcher.submit(kHelSubmitAwaitClock, 1, HelSqAwaitClock{now + kSecond, 0});
		ASSERT_TRUE(dispatcher.wait().has_value());
	});
	EXPECT_GE(report.simulated_time_ns, kSecond);
	EXPECT_LT(report.simulated_time_ns, kSecond + kSecond / 1000);
}

TEST(CostModel, ThreadsModeReportsElapsedHostTime) {
	helsim::MachineConfig c;
	c.cpus = 1;
	helsim::Machine machine{c};
	machine.spawn("worker", [](std::span<const HelHandle>) { nops(10); });
	auto report = machine.run();
	EXPECT_GT(report.simulated_time_ns, 0u);
	EXPECT_LT(report.simulated_time_ns, std::uint64_t{60} * 1'000'000'000);
}

} // namespace
