// A test-and-test-and-set lock for short kernel critical sections (an element copy). The
// simulated kernel never blocks while holding one; the host may still preempt the holder,
// so a waiter backs off to the host's yield instead of burning its time slice.
#pragma once

#include <atomic>

#include "sim/host.hpp"

namespace helsim::kernel {

class SpinLock {
public:
	void lock() {
		for (unsigned spins = 0;; ++spins) {
			if (!locked_.exchange(true, std::memory_order_acquire))
				return;
			while (locked_.load(std::memory_order_relaxed)) {
				if (++spins > 128)
					sim::host_operations().yield_cpu();
				else
					__builtin_ia32_pause();
			}
		}
	}
	bool try_lock() { return !locked_.exchange(true, std::memory_order_acquire); }
	void unlock() { locked_.store(false, std::memory_order_release); }
	// seq_cst: for a handshake through a second flag (a store to it, then try_lock_ordered(),
	// on one side; unlock_ordered(), then a load of it, on the other), in which at least one
	// side must see the other's write. IpcQueue::drive uses it.
	bool try_lock_ordered() { return !locked_.exchange(true, std::memory_order_seq_cst); }
	void unlock_ordered() { locked_.store(false, std::memory_order_seq_cst); }

private:
	std::atomic<bool> locked_{false};
};

} // namespace helsim::kernel
