// Armed timers of one machine, ordered by deadline. Shared by every host implementation.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "host.hpp"

namespace helsim::sim {

class TimerQueue {
public:
	// Returns true if `timer` is now the earliest deadline (sleepers should re-arm).
	bool arm(Timer &timer);
	// True if removed before firing. If the timer is firing right now, waits until fire()
	// has returned, so the caller may free the timer afterwards.
	bool disarm(Timer &timer);
	// Fires every timer whose deadline is <= now. Returns how many fired.
	int run_expired(std::uint64_t now);

	// Teardown: disarms every timer and calls abandon() on it. Returns how many.
	int abandon_all();

	std::uint64_t next_deadline() const { return next_.load(std::memory_order_acquire); }

private:
	void update_next();

	std::mutex mutex_;
	std::mutex fire_mutex_; // one CPU fires at a time, so `firing_` needs one slot
	std::multimap<std::uint64_t, Timer *> armed_;
	std::atomic<std::uint64_t> next_{kNoDeadline};
	Timer *firing_ = nullptr;
	std::atomic<std::uint64_t> fire_done_{0};
};

} // namespace helsim::sim
