// x86-64-shaped 4-level page tables, stored in simulated physical frames.
//
// They are the kernel's truth about an address space: every kernel access to user memory
// walks them. Entries are read and updated atomically, so a walk needs no lock; tables are
// created under the owning space's lock and freed only with the space.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "sim/host.hpp"

namespace helsim::kernel {

// Entry bits, as on x86-64.
inline constexpr std::uint64_t kPtePresent = 1ull << 0;
inline constexpr std::uint64_t kPteWritable = 1ull << 1;
inline constexpr std::uint64_t kPteUser = 1ull << 2;
inline constexpr std::uint64_t kPteAccessed = 1ull << 5;
inline constexpr std::uint64_t kPteDirty = 1ull << 6;
// Software-available bit 9: the page is also mapped into the host at its address.
inline constexpr std::uint64_t kPteMirrored = 1ull << 9;
inline constexpr std::uint64_t kPteNoExecute = 1ull << 63;
inline constexpr std::uint64_t kPteAddress = 0x000F'FFFF'FFFF'F000ull;

inline std::uint64_t pte_load(const std::uint64_t *pte) {
	return __atomic_load_n(pte, __ATOMIC_ACQUIRE);
}
inline void pte_store(std::uint64_t *pte, std::uint64_t value) {
	__atomic_store_n(pte, value, __ATOMIC_RELEASE);
}
// Sets accessed/dirty bits the way the MMU does: without a lock, never clearing anything.
inline void pte_set_bits(std::uint64_t *pte, std::uint64_t bits) {
	__atomic_fetch_or(pte, bits, __ATOMIC_RELAXED);
}

class PageTable {
public:
	// Allocates the top-level table; valid() is false if physical memory is exhausted. Then
	// nothing is mapped, and find_or_create() tries again (so a space whose first table
	// allocation failed, under fault injection say, recovers once frames are there).
	explicit PageTable(sim::PhysicalMemory &memory);
	PageTable(const PageTable &) = delete;
	PageTable &operator=(const PageTable &) = delete;
	~PageTable();

	bool valid() const { return root_.load(std::memory_order_acquire) != kNoTable; }
	sim::PhysicalAddr root() const { return root_.load(std::memory_order_acquire); }
	std::size_t table_frames() const { return table_frames_; }
	// The physical memory the tables (and the frames they map) live in.
	sim::PhysicalMemory &memory() const { return memory_; }

	// The leaf entry of `address`, or nullptr when a table on the way does not exist (then
	// the entry would read as zero).
	std::uint64_t *find(std::uintptr_t address) const;
	// The leaf entry, creating missing tables; nullptr when physical memory ran out.
	// Callers serialize calls per table (the space's lock).
	std::uint64_t *find_or_create(std::uintptr_t address);

	// Calls f(address, entry) for every leaf entry of [begin, end) whose table exists.
	// A missing table is skipped at its level's reach (2 MiB, 1 GiB or 512 GiB), so a walk
	// over a sparse range costs what is mapped, not the range. Returns how many tables (or
	// missing ones) it looked up, so that tests can check exactly that.
	template <typename F>
	std::size_t for_each_entry(std::uintptr_t begin, std::uintptr_t end, F &&f) const {
		std::size_t lookups = 0;
		for (std::uintptr_t a = begin; a < end;) {
			std::uintptr_t reach;
			std::uint64_t *table = leaf_table(a, reach);
			++lookups;
			std::uintptr_t next = (a | (reach - 1)) + 1; // 0: past the top of the address space
			std::uintptr_t stop = next && next < end ? next : end;
			if (table)
				for (; a < stop; a += sim::kPageSize)
					f(a, &table[(a >> 12) & 511]);
			a = stop;
		}
		return lookups;
	}

private:
	static constexpr sim::PhysicalAddr kNoTable = ~sim::PhysicalAddr{0};

	std::uint64_t *table_at(sim::PhysicalAddr physical) const {
		return static_cast<std::uint64_t *>(memory_.direct(physical));
	}
	// The leaf table of `address`, or nullptr; `reach` is the span of the table or of the
	// missing entry that ended the walk.
	std::uint64_t *leaf_table(std::uintptr_t address, std::uintptr_t &reach) const;
	std::uint64_t *leaf_table(std::uintptr_t address) const {
		std::uintptr_t reach;
		return leaf_table(address, reach);
	}
	void free_tables(sim::PhysicalAddr table, int level);

	sim::PhysicalMemory &memory_;
	// Written once, by find_or_create() (under the space's lock) if the constructor could not;
	// read without a lock by walkers.
	std::atomic<sim::PhysicalAddr> root_{kNoTable};
	std::size_t table_frames_ = 0;
};

} // namespace helsim::kernel
