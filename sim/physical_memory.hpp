// Simulated physical memory: one memfd-backed host region. A frame's host address in the
// kernel's direct map is base() + physical address; user mappings map the same memfd pages
// at the virtual address the simulated space chose, which is also the host address.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>

#include "split_mix.hpp"

namespace helsim::sim {

inline constexpr std::size_t kPageSize = 4096;

// FaultInjection::fail_at for one fault point: counts the passes simulated tasks make and fails
// the k-th. Passes made on no task (the machine's set-up, the host's own calls) are not
// counted, so a deterministic run counts the same every time.
class FailAt {
public:
	// k from 1; 0 fails nothing. Set before the machine runs.
	void arm(std::uint64_t k) { k_ = k; }
	// Counts a pass; true if it is the one to fail.
	bool pass();
	std::uint64_t passes() const { return passes_.load(std::memory_order_relaxed); }
	bool fired() const { return k_ && passes() >= k_; }

private:
	std::uint64_t k_ = 0;
	std::atomic<std::uint64_t> passes_{0};
};

using PhysicalAddr = std::uint64_t;

class PhysicalMemory {
public:
	explicit PhysicalMemory(std::size_t size);
	PhysicalMemory(const PhysicalMemory &) = delete;
	PhysicalMemory &operator=(const PhysicalMemory &) = delete;
	~PhysicalMemory();

	std::size_t size() const { return size_; }
	std::size_t free_bytes() const;

	// Physically contiguous, zeroed, page-aligned range that ends at or below `limit`, or
	// nullopt when no such range is free.
	std::optional<PhysicalAddr> allocate(std::size_t size, PhysicalAddr limit = ~PhysicalAddr{0});
	void free(PhysicalAddr address, std::size_t size);
	// A device's MMIO window: the highest free, page-aligned range of `size` bytes, taken out
	// of allocation for good (as firmware keeps device windows out of the RAM map). Never
	// subject to injected failures; the frames keep their contents. nullopt if none is free.
	std::optional<PhysicalAddr> reserve(std::size_t size);

	// Fault injection: from now on about `ppm` in a million allocations fail, as decided by a
	// generator seeded with `seed` (deterministic for a deterministic sequence of calls).
	void inject_failures(std::uint32_t ppm, std::uint64_t seed);
	std::uint64_t injected_failures() const { return injected_.load(std::memory_order_relaxed); }
	// Fault injection: which allocation made by a simulated task fails (FaultInjection::fail_at).
	FailAt &fail_at() { return fail_at_; }
	const FailAt &fail_at() const { return fail_at_; }

	// The kernel's direct map.
	void *direct(PhysicalAddr address) const { return base_ + address; }

	// How a mapping of frames may be accessed besides reading.
	struct Access {
		bool write = false;
		bool execute = false;
	};
	// Maps [physical, physical + size) at host address `at` (page-aligned, inside a range the
	// caller reserved). Returns false if the host refused.
	bool map(void *at, PhysicalAddr physical, std::size_t size, Access access) const;

private:
	int fd_ = -1;
	std::size_t size_ = 0;
	char *base_ = nullptr;

	mutable std::mutex mutex_;
	std::map<PhysicalAddr, std::size_t> free_runs_; // start -> length, coalesced
	std::size_t free_bytes_ = 0;
	std::uint32_t fail_ppm_ = 0; // guarded by mutex_
	SplitMix64 fail_random_{0};  // guarded by mutex_
	std::atomic<std::uint64_t> injected_{0};
	FailAt fail_at_;
};

} // namespace helsim::sim
