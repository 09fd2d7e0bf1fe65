// Tests of the native host operations (sim/host.hpp: HostOperations, sim/host_operations.cpp),
// the table through which alone the kernel reaches the host OS, and of replacing it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>

#include "sim/host.hpp"

namespace {

namespace sim = helsim::sim;

constexpr std::size_t kPage = sim::kPageSize;

bool readable(const void *p) {
	char c;
	return sim::safe_copy(&c, p, 1) == 0;
}

bool writable(void *p) {
	char c = 1;
	return sim::safe_copy(p, &c, 1) == 0;
}

TEST(HostOperations, TheNativeTableIsInUseAndComplete) {
	const sim::HostOperations &ops = sim::host_operations();
	EXPECT_EQ(&ops, &sim::native_host_operations());
	EXPECT_TRUE(ops.reserve && ops.allocate && ops.reset && ops.release && ops.wait_word &&
			ops.wake_word && ops.yield_cpu && ops.register_window && ops.unregister_window);
}

TEST(HostOperations, ReserveGivesInaccessibleAddressSpace) {
	const sim::HostOperations &ops = sim::host_operations();
	void *p = ops.reserve(4 * kPage);
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % kPage, 0u);
	EXPECT_FALSE(readable(p));
	EXPECT_FALSE(readable(static_cast<char *>(p) + 3 * kPage));
	ops.release(p, 4 * kPage);
}

TEST(HostOperations, AllocateGivesZeroedReadWriteMemory) {
	const sim::HostOperations &ops = sim::host_operations();
	auto *p = static_cast<unsigned char *>(ops.allocate(2 * kPage));
	ASSERT_NE(p, nullptr);
	EXPECT_EQ(p[0], 0);
	EXPECT_EQ(p[2 * kPage - 1], 0);
	p[kPage] = 42;
	EXPECT_EQ(p[kPage], 42);
	ops.release(p, 2 * kPage);
}

TEST(HostOperations, ResetPutsTheReservationBackOverMappedFrames) {
	const sim::HostOperations &ops = sim::host_operations();
	sim::PhysicalMemory memory{16 * kPage};
	auto frame = memory.allocate(kPage);
	ASSERT_TRUE(frame);
	auto *p = static_cast<char *>(ops.reserve(2 * kPage));
	ASSERT_NE(p, nullptr);
	ASSERT_TRUE(memory.map(p + kPage, *frame, kPage, {.write = true}));
	EXPECT_TRUE(writable(p + kPage));
	EXPECT_FALSE(readable(p)) << "only the mapped page became accessible";
	ASSERT_TRUE(ops.reset(p + kPage, kPage));
	EXPECT_FALSE(readable(p + kPage));
	ops.release(p, 2 * kPage);
}

TEST(HostOperations, WaitWordReturnsAtOnceWhenTheWordDiffers) {
	std::atomic<std::uint32_t> word{1};
	sim::host_operations().wait_word(word, 0); // must not block
	SUCCEED();
}

TEST(HostOperations, WakeWordWakesEveryWaiter) {
	std::atomic<std::uint32_t> word{0};
	std::atomic<int> woken{0};
	auto waiter = [&] {
		while (word.load(std::memory_order_acquire) == 0)
			sim::host_operations().wait_word(word, 0);
		woken.fetch_add(1);
	};
	std::thread a{waiter}, b{waiter};
	word.store(1, std::memory_order_release);
	sim::host_operations().wake_word(word);
	a.join();
	b.join();
	EXPECT_EQ(woken.load(), 2);
}

TEST(HostOperations, ReplacingTheTableReturnsThePreviousOneAndIsUsedUntilPutBack) {
	static std::atomic<int> yields{0};
	sim::HostOperations counting = sim::native_host_operations();
	counting.yield_cpu = [] { yields.fetch_add(1); };
	const sim::HostOperations &previous = sim::replace_host_operations(counting);
	EXPECT_EQ(&previous, &sim::native_host_operations());
	sim::host_operations().yield_cpu();
	EXPECT_EQ(yields.load(), 1);
	EXPECT_EQ(&sim::replace_host_operations(previous), &counting);
	sim::host_operations().yield_cpu();
	EXPECT_EQ(yields.load(), 1) << "the native table is back";
}

} // namespace
