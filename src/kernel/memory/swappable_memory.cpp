// helAllocateSwappableMemory and the pages' life. See swappable_memory.hpp for the states and
// swap_space.hpp for the daemon's side.
#include "kernel/memory/swappable_memory.hpp"

#include <algorithm>
#include <cstring>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {
namespace {
constexpr std::size_t kPage = sim::kPageSize;
} // namespace

SwappableMemory::SwappableMemory(Kernel &kernel, std::shared_ptr<SwapStore> store, std::size_t size)
: MemoryView{kernel}, store_{std::move(store)}, size_{size},
  chunks_((size / kPage + kChunkPages - 1) / kChunkPages) {}

SwappableMemory::~SwappableMemory() {
	// Waiters and outboxes hold references: nothing of ours is in flight any more, except
	// slots the daemon still has (the store frees those when it answers).
	sim::PhysicalMemory &memory = kernel().host().physical_memory();
	std::lock_guard lock{store_->lock()};
	store_->forget(*this);
	for (auto &chunk : chunks_) {
		if (!chunk)
			continue;
		for (Page &page : *chunk) {
			if (page.state == State::resident || page.state == State::writeback)
				store_->note_gone();
			if (page.frame != kNoFrame)
				memory.free(page.frame, kPage);
			if (page.slot != kNoSlot)
				store_->free_slot(page.slot);
		}
	}
}

SwappableMemory::Page *SwappableMemory::page_at(std::size_t index, bool create) {
	auto &chunk = chunks_[index / kChunkPages];
	if (!chunk) {
		if (!create)
			return nullptr;
		chunk = std::make_unique<Chunk>();
	}
	return &(*chunk)[index % kChunkPages];
}

bool SwappableMemory::hold(SwapOutbox &out) {
	if (!try_ref())
		return false; // dying: its destructor frees what it has
	out.keepalive.push_back(Ref<Object>::adopt(this));
	return true;
}

void SwappableMemory::add_waiter(Page &page, TouchWaiter &waiter, SwapOutbox &) {
	waiter.next_waiter = page.waiters;
	page.waiters = &waiter;
	// Waiters hold no reference of their own (as with managed memory): we stay alive for them.
	if (waiter_count_++ == 0) {
		ref();
		keepalive_ = Ref<Object>::adopt(this);
	}
}

void SwappableMemory::take_waiters(Page &page, SwapOutbox &out) {
	while (TouchWaiter *w = page.waiters) {
		page.waiters = w->next_waiter;
		w->next_waiter = out.waiters;
		out.waiters = w;
		if (--waiter_count_ == 0)
			out.keepalive.push_back(std::move(keepalive_));
	}
}

void SwappableMemory::make_resident(std::size_t index, Page &page, SwapOutbox &out) {
	page.state = State::resident;
	store_->note_resident(*this, index);
	take_waiters(page, out);
	store_->balance(out, this, index);
}

void SwappableMemory::start_writeback(Page &page, std::size_t index, SwapOutbox &out) {
	if (page.slot == kNoSlot)
		page.slot = store_->allocate_slot(*this, index);
	if (page.slot == kNoSlot || !hold(out))
		return; // no room to grow the backing view: the page stays resident and dirty
	page.state = State::writeback;
	page.has_copy = false;
	page.redirtied = false;
	// Unmapped everywhere: no writable entry can outlive this snapshot unseen (a new one
	// peeks with kFetchMutable first).
	if (!observed())
		page.maybe_written = false;
	out.writes.emplace_back(page.slot, page.frame);
}

// ---------------------------------------------------------------- the view

std::optional<sim::PhysicalAddr> SwappableMemory::peek(std::size_t offset, unsigned flags) {
	std::lock_guard lock{store_->lock()};
	if (offset >= size_)
		return std::nullopt;
	Page *page = page_at(offset / kPage, false);
	if (!page || (page->state != State::resident && page->state != State::writeback))
		return std::nullopt;
	if (flags & kFetchMutable)
		page->maybe_written = true; // a writable entry may follow
	return page->frame;
}

HelError SwappableMemory::touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) {
	SwapOutbox out;
	HelError result = kHelErrNone;
	{
		std::lock_guard lock{store_->lock()};
		if (offset >= size_ || abandoned_)
			return kHelErrFault;
		std::size_t index = offset / kPage;
		Page &page = *page_at(index, true);
		switch (page.state) {
		case State::absent: {
			auto frame = kernel().host().physical_memory().allocate(kPage);
			if (!frame)
				return kHelErrNoMemory;
			page.frame = *frame;
			page.maybe_written = flags & kFetchMutable;
			make_resident(index, page, out);
			break;
		}
		case State::resident:
		case State::writeback:
			if (flags & kFetchMutable)
				page.maybe_written = true;
			break;
		case State::swapped:
			// kHelMapDontRequireBacking: the access fails instead of waiting for the daemon.
			if (flags & kFetchNoBacking)
				return kHelErrFault;
			page.state = State::swapping_in;
			out.inits.push_back(page.slot);
			add_waiter(page, waiter, out);
			result = kTouchPending;
			break;
		case State::evicting:
		case State::swapping_in:
			if (flags & kFetchNoBacking)
				return kHelErrFault;
			add_waiter(page, waiter, out);
			result = kTouchPending;
			break;
		}
	}
	store_->deliver(out);
	return result;
}

void SwappableMemory::mark_dirty(std::size_t offset) {
	SwapOutbox out;
	{
		std::lock_guard lock{store_->lock()};
		if (offset >= size_ || abandoned_)
			return;
		std::size_t index = offset / kPage;
		Page *page = page_at(index, false);
		if (!page)
			return;
		switch (page->state) {
		case State::resident:
			page->maybe_written = true;
			start_writeback(*page, index, out);
			break;
		case State::writeback: // the copy in flight may miss this write
		case State::evicting:  // a kernel copy that peeked before the eviction wrote late
			page->redirtied = true;
			break;
		case State::absent: // no frame in these states: nothing was written to one
		case State::swapped:
		case State::swapping_in: break;
		}
	}
	store_->deliver(out);
}

void SwappableMemory::pin(std::size_t offset, std::size_t size) {
	if (!size)
		return;
	std::lock_guard lock{store_->lock()};
	std::size_t end = std::min((offset + size + kPage - 1) / kPage, size_ / kPage);
	for (std::size_t index = offset / kPage; index < end; ++index)
		++page_at(index, true)->pins;
}

void SwappableMemory::unpin(std::size_t offset, std::size_t size) {
	if (!size)
		return;
	SwapOutbox out;
	{
		std::lock_guard lock{store_->lock()};
		std::size_t end = std::min((offset + size + kPage - 1) / kPage, size_ / kPage);
		for (std::size_t index = offset / kPage; index < end; ++index)
			if (Page *page = page_at(index, false); page && page->pins)
				--page->pins;
		store_->balance(out, nullptr, 0); // pinned pages may go now
	}
	store_->deliver(out);
}

void SwappableMemory::abandon() {
	Ref<Object> self{this}; // the waiters' reference may be our last
	SwapOutbox out;
	{
		std::lock_guard lock{store_->lock()};
		abandoned_ = true;
		for (auto &chunk : chunks_)
			if (chunk)
				for (Page &page : *chunk)
					take_waiters(page, out);
	}
	out.waiter_error = kHelErrFault;
	store_->deliver(out);
}

// ---------------------------------------------------------------- the store's calls

void SwappableMemory::take_victim(std::size_t index, SwapOutbox &out) {
	Page *page = page_at(index, false);
	if (page && page->state == State::writeback) {
		store_->requeue(*this, index); // a candidate again once its writeback is done
		return;
	}
	if (!page || page->state != State::resident)
		return; // moved on since it was queued (its new residency queued it again)
	if (page->pins || !hold(out)) {
		if (page->pins)
			store_->requeue(*this, index);
		return;
	}
	store_->note_gone();
	if (page->maybe_written || (!page->has_copy && page->slot != kNoSlot)) {
		if (page->slot == kNoSlot)
			page->slot = store_->allocate_slot(*this, index);
		if (page->slot != kNoSlot) {
			page->state = State::evicting; // the frame stays until the daemon has the copy
			out.evictions.push_back({this, index, page->frame, page->slot});
			return;
		}
		// No slot to be had: keep the page.
		store_->note_resident(*this, index);
		return;
	}
	// Clean: the slot has the contents, or the page never held anything but zeros.
	page->state = page->has_copy ? State::swapped : State::absent;
	out.evictions.push_back({this, index, page->frame, kNoSlot});
	page->frame = kNoFrame;
}

void SwappableMemory::slot_written(std::size_t index, SwapOutbox &out) {
	Page &page = *page_at(index, false);
	switch (page.state) {
	case State::writeback:
		if (page.redirtied) {
			page.redirtied = false;
			if (hold(out))
				out.writes.emplace_back(page.slot, page.frame);
			return;
		}
		page.state = State::resident;
		page.has_copy = true;
		store_->balance(out, nullptr, 0); // it may go now, if the budget is exceeded
		break;
	case State::evicting:
		if (page.redirtied) { // written after the copy was taken: not on disk yet
			page.redirtied = false;
			if (page.waiters) {
				page.maybe_written = true;
				make_resident(index, page, out);
			} else if (hold(out)) {
				out.writes.emplace_back(page.slot, page.frame);
				return; // the slot stays in use for the next writeback
			}
			break;
		}
		page.has_copy = true;
		if (page.waiters) { // wanted again already: keep the frame
			page.maybe_written = false;
			make_resident(index, page, out);
		} else {
			page.state = State::swapped;
			kernel().host().physical_memory().free(page.frame, kPage);
			page.frame = kNoFrame;
		}
		break;
	case State::absent:
	case State::resident:
	case State::swapped:
	case State::swapping_in: break; // not this page's writeback
	}
	store_->slots().release(page.slot); // the daemon has the contents
}

void SwappableMemory::slot_filled(std::size_t index, const void *data, SwapOutbox &out) {
	Page &page = *page_at(index, false);
	if (page.state != State::swapping_in)
		return;
	auto frame = kernel().host().physical_memory().allocate(kPage);
	if (data && frame)
		std::memcpy(kernel().host().physical_memory().direct(*frame), data, kPage);
	store_->slots().release(page.slot); // the daemon keeps the contents
	if (!frame) {
		page.state = State::swapped;
		take_waiters(page, out);
		out.waiter_error = kHelErrNoMemory;
		return;
	}
	page.frame = *frame;
	page.has_copy = true;
	page.maybe_written = false;
	make_resident(index, page, out);
}

// ---------------------------------------------------------------- entry point

} // namespace helsim::kernel
