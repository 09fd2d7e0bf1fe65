// Managed memory (helCreateManagedMemory): a page cache whose contents a user-space pager
// provides, as thor's ManagedSpace with its BackingMemory and FrontalMemory views.
//
// Both views show the same frames. The frontal view is what clients map: a page there is
// present only once the pager has initialized it, and a touch of a missing page queues an
// initialization request and waits. The backing view is the pager's: every page is there
// (zero-filled on first touch), so the pager can fill it before it calls helUpdateMemory.
// Written frontal pages (dirty bits found by SynchronizeSpace or unmap, kernel writes)
// become writeback requests. The pager takes requests with the SQ ManageMemory operation.
//
// Per page: a frame, a load state (missing or present), a transaction state and a pin count.
//
//   missing, none ──touch──> want_init ──ManageMemory──> init ──UpdateMemory──> present, none
//   present, none ──mark_dirty──> want_writeback ──ManageMemory──> writeback
//   writeback ──UpdateMemory──> none, or want_writeback again if written meanwhile
//   present, none / want_writeback ──InvalidateMemory──> missing, none (frame kept)
//
// Lock order: address space, then the managed space's lock. Waiters, queue posts and
// evictions happen after that lock is released (posts may still run under a space lock: a
// queue is a leaf).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "kernel/core/spinlock.hpp"
#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

class IpcQueue;
class Thread;
class FrontalMemory;

// The state both views share. Not a kernel object: it lives as long as either view.
class ManagedSpace : public std::enable_shared_from_this<ManagedSpace> {
public:
	ManagedSpace(Kernel &kernel, std::size_t size, bool readahead);
	ManagedSpace(const ManagedSpace &) = delete;
	ManagedSpace &operator=(const ManagedSpace &) = delete;
	~ManagedSpace();

	// Lazily allocated page tables bound sizes the way AllocatedMemory does.
	static constexpr std::size_t kMaxSize = std::size_t{1} << 40;

	std::size_t size() const { return size_.load(std::memory_order_acquire); }

	// The views' MemoryView operations.
	std::optional<sim::PhysicalAddr> peek_backing(std::size_t offset);
	HelError touch_backing(std::size_t offset);
	std::optional<sim::PhysicalAddr> peek_frontal(std::size_t offset);
	HelError touch_frontal(std::size_t offset, unsigned flags, TouchWaiter &waiter);
	void mark_dirty(std::size_t offset);
	void pin(std::size_t offset, std::size_t size);
	void unpin(std::size_t offset, std::size_t size);
	HelError grow(std::size_t new_size);

	// A pending SQ ManageMemory or WritebackFence operation. Owned by the space while
	// pending; completing it posts to its queue and frees it.
	struct PendingOp {
		PendingOp *next = nullptr;
		Ref<IpcQueue> queue;
		std::uintptr_t context = 0;
		// Keeps the view alive while the operation waits, as thor's coroutine does.
		Ref<MemoryView> view;
		std::size_t first = 0, end = 0; // fences: the page range
	};

	// Queues a ManageMemory operation; it completes once a request is there for it.
	void submit_manage(PendingOp *op);
	// helUpdateMemory. kHelErrIllegalArgs if a page of the range is not in the transaction
	// the type names (nothing changes then), kHelErrNoMemory if a page initialized without
	// ever being touched through the backing view gets no frame.
	HelError update(int type, std::size_t offset, std::size_t length);
	// WritebackFence: completes once no page of [offset, offset + size) waits for a writeback
	// or is being written back.
	void submit_fence(PendingOp *op);
	// InvalidateMemory: drops the contents of the pages of the range that are not pinned
	// and not being initialized. Returns once no frontal mapping shows them any more.
	void invalidate(std::size_t offset, std::size_t size);

	// Machine teardown: frees pending operations, fails waiters with kHelErrFault.
	void abandon();
	// The deadlock report: every pending ManageMemory ("manageMemory") and WritebackFence
	// ("writebackFence"), on the view it was submitted on (the backing view).
	void for_each_pending(const std::function<void(const PendingOperation &)> &f);

	// The frontal view registers itself so that invalidation can evict its mappings.
	void set_frontal(FrontalMemory *frontal);

	// A swap space (swap_space.hpp) uses a managed space with the kernel in the frontal
	// role: a page is a swap slot. None of these waits; the update hook reports the pager.
	// Queues a writeback of page `index`, whose backing frame the caller filled (touch_backing
	// first); the page becomes present. False if it is in a transaction or has no frame.
	bool queue_writeback(std::size_t index);
	// Asks the pager to initialize page `index`, missing and in no transaction.
	void request_initialization(std::size_t index);
	// Frees the frame of page `index` unless it is in a transaction (then false): missing
	// again. Posts nothing, so a caller may hold its own lock.
	bool release(std::size_t index);
	// Called after every successful helUpdateMemory with its type and page range, with no
	// lock held. Set once, before the space is shared.
	using UpdateHook = std::function<void(int type, std::size_t first, std::size_t count)>;
	void set_update_hook(UpdateHook hook) { update_hook_ = std::move(hook); }

private:
	enum class Tx : std::uint8_t { none, want_init, init, want_writeback, writeback };

	static constexpr sim::PhysicalAddr kNoFrame = ~sim::PhysicalAddr{0};

	struct Page {
		sim::PhysicalAddr frame = kNoFrame;
		bool present = false;
		bool redirtied = false; // written again while its writeback was in flight
		Tx tx = Tx::none;
		std::uint32_t pins = 0;
		// Waiters for the page to become present.
		TouchWaiter *waiters = nullptr;
	};
	static constexpr std::size_t kChunkPages = 512;
	using Chunk = std::array<Page, kChunkPages>;

	// What a locked section decided to do once the lock is released.
	struct Outbox {
		std::vector<std::pair<PendingOp *, HelManageResult>> manage;
		PendingOp *fences = nullptr;  // completed fences, kHelErrNone
		PendingOp *dropped = nullptr; // freed without a completion (teardown)
		TouchWaiter *waiters = nullptr;
		std::size_t waiter_count = 0;
		HelError waiter_error = kHelErrNone;
		Ref<Object> keepalive; // released last
		void take_waiters(Page &page);
	};
	void deliver(Outbox &out); // lock_ not held

	void add_waiter(Page &page, TouchWaiter &waiter); // lock_ held
	void settle_waiters(Outbox &out);                 // lock_ held, after taking waiters

	Page *page_at(std::size_t index, bool create);              // lock_ held
	void request_init(std::size_t index);                       // lock_ held
	void progress(Outbox &out);                                 // lock_ held
	void check_fences(Outbox &out);                             // lock_ held
	bool writeback_pending(std::size_t first, std::size_t end); // lock_ held
	template <typename F>
	void for_each_page(std::size_t first, std::size_t end, F &&f); // lock_ held

	Kernel &kernel_;
	const bool readahead_;
	std::atomic<std::size_t> size_;

	SpinLock lock_;
	std::vector<std::unique_ptr<Chunk>> chunks_;
	std::deque<std::size_t> init_list_;      // pages in want_init, in request order
	std::deque<std::size_t> writeback_list_; // pages in want_writeback, in request order
	PendingOp *manage_head_ = nullptr, *manage_tail_ = nullptr;
	PendingOp *fences_ = nullptr;
	FrontalMemory *frontal_ = nullptr; // weak: the frontal view clears it when it dies
	// While any page has waiters, the frontal view is kept alive for them.
	std::size_t waiter_count_ = 0;
	Ref<Object> keepalive_;
	bool abandoned_ = false;
	UpdateHook update_hook_;
};

// The pager's view: every page is there.
class BackingMemory final : public MemoryView {
public:
	BackingMemory(Kernel &kernel, std::shared_ptr<ManagedSpace> space);
	const char *describe() const override { return "managed memory (backing)"; }

	std::size_t size() const override { return space_->size(); }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	void pin(std::size_t offset, std::size_t size) override { space_->pin(offset, size); }
	void unpin(std::size_t offset, std::size_t size) override { space_->unpin(offset, size); }
	// Grows the managed space, so both views (thor resizes through the backing view too).
	HelError resize(std::size_t new_size) override { return space_->grow(new_size); }
	void abandon() override { space_->abandon(); }
	// The pager submits ManageMemory and WritebackFence on the backing view: they are
	// reported here (not by the frontal view, which shares the space).
	void for_each_pending(const std::function<void(const PendingOperation &)> &f) override {
		space_->for_each_pending(f);
	}

	ManagedSpace &space() { return *space_; }

private:
	std::shared_ptr<ManagedSpace> space_;
};

// The clients' view: a page is there once the pager has initialized it.
class FrontalMemory final : public MemoryView {
public:
	FrontalMemory(Kernel &kernel, std::shared_ptr<ManagedSpace> space);
	~FrontalMemory() override;
	const char *describe() const override { return "managed memory (frontal)"; }

	std::size_t size() const override { return space_->size(); }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	void mark_dirty(std::size_t offset) override { space_->mark_dirty(offset); }
	void pin(std::size_t offset, std::size_t size) override { space_->pin(offset, size); }
	void unpin(std::size_t offset, std::size_t size) override { space_->unpin(offset, size); }
	void abandon() override { space_->abandon(); }

	// Drops every mapping's entries for [offset, offset + size). No lock held.
	void evict(std::size_t offset, std::size_t size) { evict_range(offset, size); }

private:
	std::shared_ptr<ManagedSpace> space_;
};

// helCreateManagedMemory without the handles: kHelErrIllegalArgs for unknown flags or an
// unaligned size, kHelErrNoMemory beyond ManagedSpace::kMaxSize.
HelError create_managed_memory(Kernel &kernel, std::size_t size, std::uint32_t flags,
		Ref<BackingMemory> &backing, Ref<FrontalMemory> &frontal);

} // namespace helsim::kernel
