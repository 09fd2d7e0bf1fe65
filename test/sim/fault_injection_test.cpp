// Fault injection (MachineConfig::inject): every kind fires, is survived, and is reproducible
// from the seed in deterministic mode.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <set>
#include <vector>

#include "../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;

helsim::MachineConfig with_no_memory(std::uint32_t ppm, helsim::MachineConfig config = {}) {
	config.inject.no_memory_ppm = ppm;
	config.log_sink = [](const helsim::LogRecord &) {};
	return config;
}

TEST(FaultInjection, EveryFrameAllocationFailingIsNoMemoryEverywhere) {
	helsim::Machine machine{with_no_memory(1'000'000)};
	{
		auto attached = machine.attach();
		HelHandle h;
		EXPECT_EQ(helAllocateMemory(kPage, kHelAllocContinuous, nullptr, &h), kHelErrNoMemory);
		HelQueueParameters params{0, 2, 1024, 0};
		EXPECT_EQ(helCreateQueue(&params, &h), kHelErrNoMemory);
		EXPECT_EQ(helCreateSpace(&h), kHelErrNoMemory);
		// Lazy memory needs no frame until it is touched; the kernel's write then fails.
		HelHandle memory;
		ASSERT_EQ(helAllocateMemory(kPage, 0, nullptr, &memory), kHelErrNone);
		void *p = nullptr;
		ASSERT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kPage,
						  kHelMapProtRead | kHelMapProtWrite, &p),
				kHelErrNone);
		EXPECT_EQ(helDescriptorInfo(memory, static_cast<HelDescriptorInfo *>(p)), kHelErrNoMemory);
	}
	auto report = machine.run();
	EXPECT_GE(report.counters.injected_no_memory, 4u);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// A workload that keeps allocating, mapping and writing memory through the kernel, and
// counts what failed. Everything it submits must still complete.
struct Outcome {
	std::uint64_t trace_hash, injected, pending;
	int failures, successes;
	bool operator==(const Outcome &) const = default;
};

Outcome churn(std::uint64_t seed) {
	helsim::Machine machine{with_no_memory(200'000, helsim::testing::deterministic(seed))};
	std::atomic<int> failures{0}, successes{0};
	for (int t = 0; t < 2; ++t)
		machine.spawn("churn", [&](std::span<const HelHandle>) {
			for (int round = 0; round < 20; ++round) {
				HelHandle memory;
				if (helAllocateMemory(4 * kPage, 0, nullptr, &memory) != kHelErrNone)
					continue;
				void *p = nullptr;
				HelError e = helMapMemory(memory, kHelNullHandle, nullptr, 0, 4 * kPage,
						kHelMapProtRead | kHelMapProtWrite, &p);
				for (std::size_t at = 0; e == kHelErrNone && at < 4 * kPage; at += kPage) {
					HelError w = helDescriptorInfo(memory,
							reinterpret_cast<HelDescriptorInfo *>(static_cast<char *>(p) + at));
					(w == kHelErrNone ? successes : failures)++;
					EXPECT_TRUE(w == kHelErrNone || w == kHelErrNoMemory) << w;
				}
				if (e == kHelErrNone) {
					EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, 4 * kPage), kHelErrNone);
				}
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
				(void)helYield();
			}
		});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	return {report.trace_hash, report.counters.injected_no_memory, report.operations_pending(),
			failures.load(), successes.load()};
}

TEST(FaultInjection, FailedAllocationsUnderSeedsAreSurvivedAndReproducible) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				Outcome first = churn(seed);
				EXPECT_GT(first.injected, 0u);
				EXPECT_GT(first.failures, 0);
				EXPECT_GT(first.successes, 0);
				EXPECT_EQ(first.pending, 0u);
				EXPECT_EQ(churn(seed), first) << "the same seed injects the same faults";
			},
			8);
}

TEST(FaultInjection, SpuriousWakeupsAreSurvivedByCallersThatRecheck) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto config = helsim::testing::deterministic(seed);
				config.inject.spurious_wakeup_ppm = 500'000;
				helsim::Machine machine{config};
				static int word;
				word = 0;
				machine.spawn("waiter",
						[](std::span<const HelHandle>) { EXPECT_TRUE(wait_for(&word, 3)); });
				machine.spawn("setter", [](std::span<const HelHandle>) {
					for (int i = 1; i <= 3; ++i) {
						for (int y = 0; y < 3; ++y)
							(void)helYield();
						store(&word, i);
						EXPECT_EQ(helFutexWake(&word, 1), kHelErrNone);
					}
				});
				auto report = machine.run();
				EXPECT_FALSE(report.stuck) << report.to_string();
				EXPECT_GT(report.counters.injected_wakeups, 0u);
			},
			8);
}

TEST(FaultInjection, DelayedCompletionsAllArriveExactlyOnce) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto config = helsim::testing::deterministic(seed);
				config.inject.delay_completion_ppm = 500'000;
				helsim::Machine machine{config};
				bool overtaken = false;
				for (int t = 0; t < 2; ++t)
					machine.spawn("nops", [&](std::span<const HelHandle>) {
						helsim::Dispatcher dispatcher;
						constexpr std::uintptr_t kCount = 16;
						for (std::uintptr_t c = 1; c <= kCount; ++c)
							dispatcher.submit(kHelSubmitAsyncNop, c, std::span<const std::byte>{});
						dispatcher.flush();
						std::set<std::uintptr_t> seen;
						std::uintptr_t last = 0;
						while (seen.size() < kCount) {
							auto element = dispatcher.wait();
							ASSERT_TRUE(element);
							EXPECT_EQ(element->error(), kHelErrNone);
							EXPECT_TRUE(seen.insert(element->context()).second)
									<< "context " << element->context() << " twice";
							overtaken |= element->context() < last;
							last = element->context();
						}
					});
				auto report = machine.run();
				EXPECT_FALSE(report.stuck) << report.to_string();
				EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
				EXPECT_GT(report.counters.injected_delays, 0u);
				EXPECT_TRUE(overtaken) << "a delayed completion is overtaken by later ones";
			},
			8);
}

} // namespace
