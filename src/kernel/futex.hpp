// Futexes: threads waiting for a 32-bit word to change. Keyed by address for now; the memory
// issue keys them by (memory object, offset) so that shared memory works across universes.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "object.hpp"

namespace helsim::kernel {

class Thread;

class FutexTable {
public:
	// kHelErrFutexRace if *pointer != expected, kHelErrTimeout at the deadline (absolute,
	// helGetClock time; kNoDeadline = never), kHelErrFault for a bad pointer.
	HelError wait(Thread &self, int *pointer, int expected, std::uint64_t deadline);
	// Wakes up to `count` waiters of `pointer`; returns how many.
	unsigned wake(const int *pointer, unsigned count);

private:
	struct Waiter {
		const int *key;
		Thread *thread;
		Waiter *prev = nullptr;
		Waiter *next = nullptr;
		bool woken = false;
	};
	struct Bucket {
		std::mutex mutex;
		Waiter *head = nullptr;
		Waiter *tail = nullptr;
		void unlink(Waiter &w);
	};
	Bucket &bucket_for(const int *pointer);

	std::array<Bucket, 64> buckets_;
};

} // namespace helsim::kernel
