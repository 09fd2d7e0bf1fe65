// Memory views: the kernel objects that hand out the frames behind mappings.
//
// A view is a length and, per page, a frame that is present or not. Address spaces ask for a
// page with peek() (the fast path: no state changes) and make it present with touch(), which
// may finish later — managed memory waits for its user-space pager. Views that take a page
// away again (eviction, a copy-on-write copy replacing a shared frame, a changed indirection)
// tell the mappings through MemoryObserver first, so no page table keeps a stale frame.
//
// Lock order: address space, then view. Spaces call touch() without holding their lock, so a
// touch may evict (and call observers); a view never calls an observer or a waiter while it
// holds its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "kernel/core/object.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

inline constexpr std::uint32_t kMemoryDefaultRights = kHelRightRead | kHelRightWrite |
		kHelRightExecute | kHelRightAssign | kHelRightProvision | kHelRightPin | kHelRightFence |
		kHelRightManage;

// What a touch or peek needs.
enum FetchFlags : unsigned {
	kFetchMutable = 1,   // the frame will be written: copy-on-write views copy it first
	kFetchNoBacking = 2, // fail with kHelErrFault instead of waiting for a pager
};

// touch() returns this when the page arrives later, through the waiter.
inline constexpr HelError kTouchPending = -1;

// The continuation of an asynchronous touch. touched() is called exactly once, with no view
// lock held, from whichever thread made the page present (the pager's helUpdateMemory).
class TouchWaiter {
public:
	virtual void touched(HelError error) = 0;
	TouchWaiter *next_waiter = nullptr; // for the view's intrusive wait lists

protected:
	~TouchWaiter() = default;
};

class MemoryView;

// Whoever maps (part of) a view: address spaces, and indirect views forwarding to theirs.
// evict() must drop every page table entry for that range of `view` before it returns; the
// view frees or replaces the frames afterwards. It runs with no view lock held.
class MemoryObserver {
public:
	virtual void evict(MemoryView &view, std::size_t offset, std::size_t size) = 0;
	// The object that owns the observer: an eviction holds a reference to it while calling.
	virtual Object &observer_object() = 0;

protected:
	~MemoryObserver() = default;
};

class MemoryView : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::memory_view;

	explicit MemoryView(Kernel &kernel) : Object{kernel, ObjectKind::memory_view} {}

	virtual std::size_t size() const = 0;

	// The frame of the page at `offset` (page aligned, < size()) if it is present for
	// `flags`; nullopt otherwise. Optimistic: valid until the view evicts the page, which
	// it announces to its observers first.
	virtual std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) = 0;

	// Makes the page at `offset` present for `flags`. Returns kHelErrNone (peek() with the
	// same flags now succeeds, until an eviction), an error (kHelErrNoMemory,
	// kHelErrFault), or kTouchPending: `waiter.touched()` follows.
	virtual HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) = 0;

	// Views whose pages are all present and never move (continuous memory: queue rings) are
	// mapped eagerly, entries and host mirror in one go, instead of page by page on first
	// touch: the ring is read by user code at once anyway.
	virtual bool eagerly_mapped() const { return false; }

	// A mapping saw the page written (the dirty bit); managed memory schedules a writeback.
	virtual void mark_dirty(std::size_t offset) { (void)offset; }

	// Pins [offset, offset + size): pages stay present and keep their frames until unpinned.
	// The range must have been touched with kFetchMutable.
	virtual void pin(std::size_t offset, std::size_t size) { (void)offset, (void)size; }
	virtual void unpin(std::size_t offset, std::size_t size) { (void)offset, (void)size; }

	// SQ ResizeMemory; growing only.
	virtual HelError resize(std::size_t new_size) {
		(void)new_size;
		return kHelErrIllegalObject;
	}
	// SQ ForkMemory: copy-on-write views only.
	virtual HelError fork(Ref<MemoryView> &out) {
		(void)out;
		return kHelErrIllegalObject;
	}

	// Whether take_pages can move this view's frames: only where a page's frame is the view's
	// own, replaceable by a fresh zero page (lazily allocated memory). Copy-on-write views
	// share their source's frames, managed and swappable ones belong to a pager or the swap
	// store, continuous memory is one physical range: they keep theirs.
	virtual bool pages_movable() const { return false; }
	// Moves the frames of [offset, offset + size) (page aligned, inside the view) into a new
	// view `out` of `size` bytes that owns them, without copying: the range here reads as
	// zero pages from then on, and no mapping shows a moved frame any more (evict_range
	// returns first). A kernel copy that peeked a frame before the move may still land in it
	// (a write racing with the transfer goes to either side). kHelErrUnsupportedOperation if
	// !pages_movable(), kHelErrIllegalState while a range of the view is locked
	// (helLockMemoryView: its frames must stay), kHelErrNoMemory when `out` cannot be made.
	virtual HelError take_pages(std::size_t offset, std::size_t size, Ref<MemoryView> &out) {
		(void)offset, (void)size, (void)out;
		return kHelErrUnsupportedOperation;
	}

	// One registration per mapping; an observer may register several times. Callers may
	// hold their own locks: these only take the view's observer lock.
	void add_observer(MemoryObserver &observer);
	void remove_observer(MemoryObserver &observer);

protected:
	// Tells every observer that [offset, offset + size) goes away. Call without holding the
	// view's lock; the caller frees or replaces the frames only after this returns.
	void evict_range(std::size_t offset, std::size_t size);
	// Whether any mapping shows (part of) this view. Takes only the observer lock.
	bool observed();

private:
	std::mutex observers_mutex_;
	std::vector<MemoryObserver *> observers_;
};

// Copies between a kernel buffer and a view, touching pages as needed. Used by the SQ
// Read/WriteMemory operations on views. Returns kHelErrNone, an error, or kTouchPending after
// arranging for `waiter` (the copy then has to be retried from `done` bytes).
HelError copy_view(MemoryView &view, std::size_t offset, void *buffer, std::size_t size,
		bool to_view, std::size_t &done, TouchWaiter &waiter);

} // namespace helsim::kernel
