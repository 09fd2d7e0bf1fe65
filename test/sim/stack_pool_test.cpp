// Fiber stacks (sim/stack_pool.cpp): reuse, guards, and what a simulated thread sees when the
// host has no stack to give: many more threads than the host allows mappings, and a clean
// kHelErrNoMemory (or std::bad_alloc from Machine::spawn) when a stack cannot be had.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <new>
#include <string>

#include "sim/sanitizers.hpp"
#include "sim/stack_pool.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

constexpr bool kSanitized = helsim::sim::kAsan || helsim::sim::kTsan;

namespace sim = helsim::sim;

// Larger than any mapping can be on x86-64 (128 TiB of user address space).
constexpr std::size_t kUnmappableStack = std::size_t{1} << 47;

TEST(StackPool, AReleasedStackIsReusedAndSizesArePageMultiples) {
	const std::size_t before = sim::stacks_in_use();
	sim::StackSlot a = sim::allocate_stack(10'000);
	EXPECT_EQ(a.size % 4096, 0u);
	EXPECT_GE(a.size, 10'000u);
	EXPECT_EQ(sim::stacks_in_use(), before + 1);
	static_cast<char *>(a.bottom)[0] = 1; // usable from its bottom to its top
	static_cast<char *>(a.bottom)[a.size - 1] = 1;
	sim::release_stack(a);
	EXPECT_EQ(sim::stacks_in_use(), before);
	sim::StackSlot b = sim::allocate_stack(a.size);
	EXPECT_EQ(b.bottom, a.bottom);
	sim::release_stack(b);
}

TEST(StackPool, TheStackBelowEveryStackIsNotOneByteOfAnother) {
	sim::StackSlot a = sim::allocate_stack(8192);
	sim::StackSlot b = sim::allocate_stack(8192);
	auto lo = reinterpret_cast<std::uintptr_t>(a.bottom < b.bottom ? a.bottom : b.bottom);
	auto hi = reinterpret_cast<std::uintptr_t>(a.bottom < b.bottom ? b.bottom : a.bottom);
	// A guard page (or, unguarded, the upper stack's canary word) separates them.
	EXPECT_GE(hi - lo, std::size_t{8192} + 4096);
	sim::release_stack(a);
	sim::release_stack(b);
}

TEST(StackPoolDeathTest, WritingBelowAGuardedStackFaults) {
	sim::StackSlot slot = sim::allocate_stack(8192);
	if (slot.canary) {
		sim::release_stack(slot);
		GTEST_SKIP() << "this host gave an unguarded stack (no guard regions or mappings left)";
	}
	EXPECT_DEATH(static_cast<volatile char *>(slot.bottom)[-1] = 1, "");
	sim::release_stack(slot);
}

TEST(StackPool, AStackNoMappingCanHoldIsStackExhaustedSayingWhy) {
	try {
		sim::allocate_stack(kUnmappableStack);
		FAIL() << "a 128 TiB stack was mapped";
	} catch (const std::bad_alloc &e) {
		EXPECT_NE(std::string{e.what()}.find("fiber stack"), std::string::npos) << e.what();
	}
}

// ---------------------------------------------------------------- simulated threads

std::atomic<int> g_arrived{0};
int g_all_arrived = 0; // futex word: set by the last thread to arrive
int g_release = 0;     // futex word: set once every thread has arrived

int load(const int &word) { return __atomic_load_n(&word, __ATOMIC_SEQ_CST); }

void wait_for(int &word) {
	while (load(word) == 0) {
		HelError e = helFutexWait(&word, 0, kHelWaitInfinite);
		ASSERT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << e;
	}
}

void wake(int &word) {
	__atomic_store_n(&word, 1, __ATOMIC_SEQ_CST);
	ASSERT_EQ(helFutexWake(&word, ~0u), kHelErrNone);
}

void arrive_and_wait(std::uintptr_t total) {
	if (g_arrived.fetch_add(1) + 1 == static_cast<int>(total))
		wake(g_all_arrived);
	wait_for(g_release);
}

// Linux allows 65,530 mappings per process by default: with one mapping and one guard page
// per stack, threads ended the process with std::bad_alloc at about 32k. Under sanitizers the
// count is smaller: their per-fiber shadow and fake stacks are their own mappings.
TEST(ThreadStacks, AHundredThousandThreadsAreAliveAtOnce) {
	const std::uintptr_t threads = kSanitized ? 2'000 : 100'000;
	g_arrived = 0;
	g_all_arrived = 0;
	g_release = 0;
	helsim::MachineConfig config;
	config.stack_size = std::size_t{16} << 10;
	helsim::Machine machine{config};
	{
		auto attached = machine.attach();
		for (std::uintptr_t i = 0; i < threads; ++i) {
			HelHandle thread;
			ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  reinterpret_cast<void *>(arrive_and_wait),
							  reinterpret_cast<void *>(threads), 0, &thread),
					kHelErrNone)
					<< "thread " << i;
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, thread), kHelErrNone);
		}
		wait_for(g_all_arrived); // every one of them is alive and parked now
		EXPECT_EQ(g_arrived.load(), static_cast<int>(threads));
		wake(g_release);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(ThreadStacks, AStackTheHostCannotGiveIsNoMemoryWithoutAHandle) {
	for (helsim::MachineConfig config :
			{helsim::MachineConfig{}, helsim::testing::deterministic(7)}) {
		config.stack_size = kUnmappableStack;
		helsim::Machine machine{config};
		{
			auto attached = machine.attach();
			// Handles are numbered in order: the failed call must not have taken one.
			HelHandle before, after;
			ASSERT_EQ(helCreateOneshotEvent(&before), kHelErrNone);
			HelHandle thread = kHelNullHandle;
			EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
							  reinterpret_cast<void *>(arrive_and_wait), nullptr, 0, &thread),
					kHelErrNoMemory);
			EXPECT_EQ(thread, kHelNullHandle);
			ASSERT_EQ(helCreateOneshotEvent(&after), kHelErrNone);
			EXPECT_EQ(after, before + 1);
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, before), kHelErrNone);
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, after), kHelErrNone);
		}
		try {
			machine.spawn("never", [](std::span<const HelHandle>) {});
			ADD_FAILURE() << "spawn started a thread without a stack";
		} catch (const std::bad_alloc &e) {
			EXPECT_NE(std::string{e.what()}.find("fiber stack"), std::string::npos) << e.what();
		}
		auto report = machine.run();
		EXPECT_FALSE(report.stuck) << report.to_string();
		EXPECT_TRUE(report.leaks.empty()) << report.to_string();
		EXPECT_TRUE(report.threads.empty()) << report.to_string(); // no fiber thread began
	}
}

} // namespace
