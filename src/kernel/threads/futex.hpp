// Futexes: threads waiting for a 32-bit word to change.
//
// A futex in an address space is keyed by (memory view, offset) of its mapping, as in
// Managarm, so a word in shared memory is one futex for every universe that maps it. Host
// memory outside every space (default mode only) is keyed by its address.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

class Thread;
class MemoryView;

class FutexTable {
public:
	// kHelErrFutexRace if *pointer != expected, kHelErrTimeout at the deadline (absolute,
	// helGetClock time; kNoDeadline = never), kHelErrFault for a bad pointer.
	HelError wait(Thread &self, int *pointer, int expected, std::uint64_t deadline);
	// Wakes up to `count` waiters of the futex at `pointer`; kHelErrFault for a bad pointer.
	HelError wake(Thread &self, const int *pointer, unsigned count);

private:
	struct Key {
		const void *object; // the memory view, or nullptr for host memory
		std::uint64_t offset;
		bool operator==(const Key &) const = default;
	};
	struct Waiter {
		Key key;
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
	// The key of `pointer` in the caller's space; `view` keeps a view key alive.
	static HelError key_of(Thread &self, const int *pointer, Key &key, Ref<MemoryView> &view);
	Bucket &bucket_for(const Key &key);

	std::array<Bucket, 64> buckets_;
};

} // namespace helsim::kernel
