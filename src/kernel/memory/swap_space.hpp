// Swap spaces (helCreateSwapSpace, helSetSwapBudget): where the pages of swappable memory
// (swappable_memory.hpp) go when the kernel takes their frames away.
//
// A swap space is two things. To user space it is a handle (the budget, the right to allocate
// swappable memory from it) and a backing view: the swap daemon's side of a managed space
// (managed_memory.hpp) whose pages are swap slots. The kernel plays the frontal role. To swap
// a page out it copies the page into a slot's backing frame and queues a writeback of that
// slot; the daemon takes it with ManageMemory (the offset is the slot, chosen by the kernel),
// stores the data and answers with helUpdateMemory, and the kernel frees the slot's frame. To
// swap a page in it asks for an initialization of the slot; the daemon fills the backing view
// there and answers with helUpdateMemory, and the kernel copies the slot into a fresh frame.
//
// The budget is the number of pages of the space's swappable memory that may hold frames at
// once. A page that makes the count exceed it evicts the oldest evictable resident page (a
// page that may have been written since its last writeback is written back first). Dirty
// pages found at unmap or SynchronizeSpace are written back at once, budget or not.
//
// Lock order: address space, then the store's lock (which guards the store and every page of
// its swappable memory), then the managed space's lock. Posts, waiter wake-ups and evictions
// run from a SwapOutbox after the store's lock is released.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <utility>
#include <vector>

#include "kernel/core/spinlock.hpp"
#include "kernel/memory/managed_memory.hpp"

namespace helsim::kernel {

class SwappableMemory;

inline constexpr std::uint32_t kSwapSpaceDefaultRights = kHelRightAssign | kHelRightManage;

inline constexpr std::size_t kNoSlot = ~std::size_t{0};

// What a locked section of swap code decided to do once the store's lock is released.
struct SwapOutbox {
	struct Eviction {
		SwappableMemory *memory;
		std::size_t index;
		sim::PhysicalAddr frame; // freed after the eviction unless it is written to `slot`
		std::size_t slot;        // kNoSlot: the contents are not needed any more
	};
	std::vector<Eviction> evictions;
	std::vector<std::pair<std::size_t, sim::PhysicalAddr>> writes; // slot <- frame, then writeback
	std::vector<std::size_t> inits;                                // slots to initialize
	TouchWaiter *waiters = nullptr;
	HelError waiter_error = kHelErrNone;
	std::vector<Ref<Object>> keepalive; // released last
};

// The state a swap space shares with its swappable memory. Not a kernel object: the handle,
// the backing view's space hook and every swappable memory object keep it alive.
class SwapStore : public std::enable_shared_from_this<SwapStore> {
public:
	SwapStore(Kernel &kernel, std::shared_ptr<ManagedSpace> slots);
	SwapStore(const SwapStore &) = delete;
	SwapStore &operator=(const SwapStore &) = delete;

	Kernel &kernel() { return kernel_; }
	SpinLock &lock() { return lock_; }
	ManagedSpace &slots() { return *slots_; }

	// helSetSwapBudget: kHelErrIllegalArgs for 0 pages. Evicts down to the new budget.
	HelError set_budget(std::size_t pages);

	// ---- lock() held
	// A slot for (memory, index), the lowest free one; the backing view grows to hold it.
	// kNoSlot if it cannot grow.
	std::size_t allocate_slot(SwappableMemory &memory, std::size_t index);
	// The slot's owner is gone: its frame is freed now, or once its transaction ends.
	void free_slot(std::size_t slot);
	// A page got a frame (it is then a candidate for eviction, oldest first).
	void note_resident(SwappableMemory &memory, std::size_t index);
	void note_gone() { --resident_; }
	// Evicts until the budget holds, never (memory, index) itself.
	void balance(SwapOutbox &out, const SwappableMemory *memory, std::size_t index);
	// A dying memory's candidates.
	void forget(const SwappableMemory &memory);
	// A pinned page stays a candidate for later.
	void requeue(SwappableMemory &memory, std::size_t index) { fifo_.emplace_back(&memory, index); }

	// ---- no lock held
	void deliver(SwapOutbox &out);

	// The managed space's hook: the daemon answered for slots [first, first + count).
	void updated(int type, std::size_t first, std::size_t count);

private:
	bool fill_slot(std::size_t slot, sim::PhysicalAddr frame); // no lock held

	Kernel &kernel_;
	std::shared_ptr<ManagedSpace> slots_;
	SpinLock lock_;
	std::size_t budget_ = ~std::size_t{0}; // no budget until helSetSwapBudget
	std::size_t resident_ = 0;
	std::deque<std::pair<SwappableMemory *, std::size_t>> fifo_;
	std::vector<std::pair<SwappableMemory *, std::size_t>> owners_; // by slot
	std::set<std::size_t> free_slots_;
};

class SwapSpace final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::swap_space;

	SwapSpace(Kernel &kernel, std::shared_ptr<SwapStore> store)
	: Object{kernel, ObjectKind::swap_space}, store_{std::move(store)} {}
	const char *describe() const override { return "swap space"; }

	const std::shared_ptr<SwapStore> &store() const { return store_; }

private:
	std::shared_ptr<SwapStore> store_;
};

// helCreateSwapSpace without the handles: kHelErrIllegalArgs for non-zero flags.
HelError create_swap_space(Kernel &kernel, std::uint32_t flags, Ref<BackingMemory> &backing,
		Ref<SwapSpace> &swap);

// helCreateSwapSpace: the backing and the swap handle in outs[0] and outs[1].
HelError attach_swap_space(Thread &self, std::uint32_t flags, HelWord *outs);

} // namespace helsim::kernel
