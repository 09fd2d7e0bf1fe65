#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "sanitizers.hpp"

#ifdef HELSIM_ASAN
extern "C" void __asan_unpoison_memory_region(void const volatile *addr, size_t size);
#endif

namespace helsim::sim {
namespace {

// Debian 12's headers predate it; the value is the kernel's ABI.
constexpr int kMadvGuardInstall = 102;

// Slabs hold this much (at least one stack): few mappings, and little memory committed ahead,
// as a slab's untouched pages cost nothing (MAP_NORESERVE).
constexpr std::size_t kSlabBytes = std::size_t{4} << 20;
// Freed stacks beyond this many per size stay reusable, but give their pages back to the host.
constexpr std::size_t kWarmStacks = 64;
// More than x86-64's user address space (128 TiB): no mapping can hold it.
constexpr std::size_t kLargestStack = std::size_t{1} << 47;

std::size_t page_size() {
	static const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
	return page;
}

// A quarter of vm.max_map_count: each PROT_NONE guard splits its slab into two more mappings,
// and the rest of the process (simulated memory, the heap, libraries) needs the others.
std::size_t protect_guard_budget() {
	long limit = 65530;
	if (std::FILE *f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
		if (std::fscanf(f, "%ld", &limit) != 1)
			limit = 65530;
		std::fclose(f);
	}
	return static_cast<std::size_t>(std::max(limit, 0L)) / 4;
}

class Pool {
public:
	StackSlot allocate(std::size_t size) {
		const std::size_t page = page_size();
		std::lock_guard lock{mutex_};
		if (size > kLargestStack)
			throw StackExhausted{size, ENOMEM, in_use_};
		size = (std::max<std::size_t>(size, 1) + page - 1) & ~(page - 1);
		std::vector<StackSlot> &free = free_[size];
		if (free.empty())
			carve_slab(size);
		StackSlot slot = free.back();
		free.pop_back();
		++in_use_;
		return slot;
	}

	void release(const StackSlot &slot) noexcept {
#ifdef HELSIM_ASAN
		// A fiber that never returned (unwound, or parked at teardown) leaves its frames'
		// redzones poisoned; the next fiber on this stack would trip over them.
		__asan_unpoison_memory_region(slot.bottom, slot.size);
#endif
		std::lock_guard lock{mutex_};
		--in_use_;
		std::vector<StackSlot> &free = free_[slot.size];
		if (free.size() >= kWarmStacks) {
			// MADV_FREE keeps the guard region and the canary's page mapping; the pages go
			// back to the host only if it needs them. Reserved capacity: no allocation here.
			madvise(slot.bottom, slot.size, MADV_FREE);
		}
		if (slot.canary)
			*slot.canary = kStackCanary;
		free.push_back(slot); // cannot throw: carve_slab() reserved room for every stack
	}

	std::size_t in_use() {
		std::lock_guard lock{mutex_};
		return in_use_;
	}

private:
	// Maps a slab of stacks of `size` usable bytes, each with its guard, onto the free list.
	void carve_slab(std::size_t size) {
		const std::size_t page = page_size();
		const std::size_t slot_bytes = size + page;
		const std::size_t count = std::max<std::size_t>(1, kSlabBytes / slot_bytes);
		std::vector<StackSlot> &free = free_[size];
		try {
			// Room for every stack of this size there will be, so that release() never allocates.
			free.reserve(total_[size] + count);
		} catch (const std::bad_alloc &) {
			throw StackExhausted{size, ENOMEM, in_use_};
		}
		void *base = mmap(nullptr, slot_bytes * count, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED)
			throw StackExhausted{size, errno, in_use_};
		total_[size] += count;
		// Highest slot last, so that the first stacks handed out are the lowest.
		for (std::size_t i = count; i-- > 0;) {
			char *guard = static_cast<char *>(base) + i * slot_bytes;
			StackSlot slot{guard + page, size, nullptr};
			if (!install_guard(guard)) {
				slot.canary = static_cast<std::uint64_t *>(slot.bottom);
				*slot.canary = kStackCanary;
			}
			free.push_back(slot);
		}
	}

	bool install_guard(void *page) {
		if (guard_regions_ && madvise(page, page_size(), kMadvGuardInstall) == 0)
			return true;
		guard_regions_ = false; // an older kernel: EINVAL, and it will not change
		if (protect_guards_ < protect_budget_ && mprotect(page, page_size(), PROT_NONE) == 0) {
			++protect_guards_;
			return true;
		}
		return false;
	}

	std::mutex mutex_;
	std::map<std::size_t, std::vector<StackSlot>> free_; // by usable size
	std::map<std::size_t, std::size_t> total_;           // stacks ever carved, by size
	std::size_t in_use_ = 0;
	bool guard_regions_ = true;
	std::size_t protect_guards_ = 0;
	const std::size_t protect_budget_ = protect_guard_budget();
};

// Never destroyed: fibers may release their stacks during static destruction.
Pool &pool() {
	static Pool *p = new Pool;
	return *p;
}

} // namespace

StackExhausted::StackExhausted(std::size_t size, int error, std::size_t in_use) noexcept {
	std::snprintf(message_, sizeof message_,
			"helsim: no host memory for a %zu KiB fiber stack (%s; %zu stacks in use)", size >> 10,
			std::strerror(error), in_use);
}

StackSlot allocate_stack(std::size_t size) { return pool().allocate(size); }

void release_stack(const StackSlot &slot) noexcept { pool().release(slot); }

std::size_t stacks_in_use() noexcept { return pool().in_use(); }

void stack_overflowed(const StackSlot &slot) noexcept {
	std::fprintf(stderr,
			"helsim: a fiber overflowed its %zu KiB stack at %p (an unguarded stack: the host "
			"had no guard regions and no mappings left for guard pages); raise "
			"MachineConfig::stack_size\n",
			slot.size >> 10, slot.bottom);
	std::abort();
}

} // namespace helsim::sim
