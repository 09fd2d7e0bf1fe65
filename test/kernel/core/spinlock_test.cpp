// SpinLock (src/kernel/core/spinlock.hpp): a waiter that keeps finding the lock taken backs
// off through the host table's yield_cpu, not a host call of its own.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "../fake_host.hpp"
#include "kernel/core/spinlock.hpp"

namespace {

std::atomic<int> yields{0};

void counting_yield() {
	yields.fetch_add(1, std::memory_order_relaxed);
	helsim::sim::native_host_operations().yield_cpu();
}

TEST(SpinLockUnit, AContendedWaiterYieldsThroughTheHostTable) {
	helsim::sim::HostOperations counting = helsim::sim::native_host_operations();
	counting.yield_cpu = counting_yield;
	helsim::test::ScopedHostOperations scoped{counting};
	yields = 0;

	helsim::kernel::SpinLock lock;
	lock.lock();
	std::atomic<bool> acquired{false};
	std::thread waiter{[&] {
		lock.lock();
		acquired = true;
		lock.unlock();
	}};
	// Held until the waiter has backed off at least once (or long enough to tell it never will).
	auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds{10};
	while (yields.load(std::memory_order_relaxed) == 0 &&
			std::chrono::steady_clock::now() < give_up)
		std::this_thread::yield();
	EXPECT_GT(yields.load(), 0) << "the waiter spun without backing off through the table";
	EXPECT_FALSE(acquired.load());
	lock.unlock();
	waiter.join();
	EXPECT_TRUE(acquired.load());
}

TEST(SpinLockUnit, AnUncontendedLockNeverYields) {
	helsim::sim::HostOperations counting = helsim::sim::native_host_operations();
	counting.yield_cpu = counting_yield;
	helsim::test::ScopedHostOperations scoped{counting};
	yields = 0;

	helsim::kernel::SpinLock lock;
	for (int i = 0; i < 1000; ++i) {
		lock.lock();
		lock.unlock();
	}
	EXPECT_TRUE(lock.try_lock());
	EXPECT_FALSE(lock.try_lock());
	lock.unlock();
	EXPECT_EQ(yields.load(), 0);
}

} // namespace
