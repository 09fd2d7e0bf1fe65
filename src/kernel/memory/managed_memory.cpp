// helCreateManagedMemory, helUpdateMemory and the SQ operations of the pager protocol:
// ManageMemory, WritebackFence, InvalidateMemory. See managed_memory.hpp for the states.
#include "kernel/memory/managed_memory.hpp"

#include <algorithm>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {
namespace {
constexpr std::size_t kPage = sim::kPageSize;

void push_waiter(TouchWaiter *&list, TouchWaiter &waiter) {
	waiter.next_waiter = list;
	list = &waiter;
}
} // namespace

// ---------------------------------------------------------------- the shared state

ManagedSpace::ManagedSpace(Kernel &kernel, std::size_t size, bool readahead)
: kernel_{kernel}, readahead_{readahead}, size_{size},
  chunks_((size / kPage + kChunkPages - 1) / kChunkPages) {}

ManagedSpace::~ManagedSpace() {
	// Pending operations and waiters keep a view, and so this, alive: none is left here.
	sim::PhysicalMemory &memory = kernel_.host().physical_memory();
	for (auto &chunk : chunks_)
		if (chunk)
			for (Page &page : *chunk)
				if (page.frame != kNoFrame)
					memory.free(page.frame, kPage);
}

void ManagedSpace::set_frontal(FrontalMemory *frontal) {
	std::lock_guard lock{lock_};
	frontal_ = frontal;
}

ManagedSpace::Page *ManagedSpace::page_at(std::size_t index, bool create) {
	auto &chunk = chunks_[index / kChunkPages];
	if (!chunk) {
		if (!create)
			return nullptr;
		chunk = std::make_unique<Chunk>();
	}
	return &(*chunk)[index % kChunkPages];
}

template <typename F>
void ManagedSpace::for_each_page(std::size_t first, std::size_t end, F &&f) {
	end = std::min(end, size() / kPage);
	for (std::size_t index = first; index < end;) {
		auto &chunk = chunks_[index / kChunkPages];
		std::size_t chunk_end = std::min(end, (index / kChunkPages + 1) * kChunkPages);
		if (chunk)
			for (; index < chunk_end; ++index)
				f(index, (*chunk)[index % kChunkPages]);
		index = chunk_end;
	}
}

void ManagedSpace::Outbox::take_waiters(Page &page) {
	while (TouchWaiter *w = page.waiters) {
		page.waiters = w->next_waiter;
		push_waiter(waiters, *w);
		++waiter_count;
	}
}

void ManagedSpace::add_waiter(Page &page, TouchWaiter &waiter) {
	push_waiter(page.waiters, waiter);
	// Waiters hold no reference of their own, so the frontal view (and this) stays alive
	// for them until they are woken.
	if (waiter_count_++ == 0 && frontal_) {
		frontal_->ref();
		keepalive_ = Ref<Object>::adopt(frontal_);
	}
}

void ManagedSpace::settle_waiters(Outbox &out) {
	waiter_count_ -= out.waiter_count;
	if (waiter_count_ == 0)
		out.keepalive = std::move(keepalive_);
}

void ManagedSpace::request_init(std::size_t index) {
	Page &page = *page_at(index, true);
	page.tx = Tx::want_init;
	init_list_.push_back(index);
}

void ManagedSpace::progress(Outbox &out) {
	// thor prefers writeback to initialization and fuses a run of requests for consecutive
	// pages at the head of a list into one.
	auto serve = [&](std::deque<std::size_t> &list, Tx next, int type) {
		while (!list.empty() && manage_head_) {
			std::size_t first = list.front(), count = 0;
			while (!list.empty() && list.front() == first + count) {
				page_at(first + count, false)->tx = next;
				list.pop_front();
				++count;
			}
			PendingOp *op = manage_head_;
			manage_head_ = op->next;
			if (!manage_head_)
				manage_tail_ = nullptr;
			out.manage.emplace_back(op,
					HelManageResult{kHelErrNone, type, first * kPage, count * kPage});
		}
	};
	serve(writeback_list_, Tx::writeback, kHelManageWriteback);
	serve(init_list_, Tx::init, kHelManageInitialize);
}

bool ManagedSpace::writeback_pending(std::size_t first, std::size_t end) {
	bool pending = false;
	for_each_page(first, end, [&](std::size_t, Page &page) {
		pending |= page.tx == Tx::want_writeback || page.tx == Tx::writeback;
	});
	return pending;
}

void ManagedSpace::check_fences(Outbox &out) {
	for (PendingOp **link = &fences_; *link;) {
		PendingOp *op = *link;
		if (writeback_pending(op->first, op->end)) {
			link = &op->next;
			continue;
		}
		*link = op->next;
		op->next = out.fences;
		out.fences = op;
	}
}

void ManagedSpace::deliver(Outbox &out) {
	for (auto &[op, result] : out.manage) {
		QueueSource source{&result, sizeof(result)};
		op->queue->post({&source, 1}, op->context, true);
		delete op;
	}
	while (PendingOp *op = out.fences) {
		out.fences = op->next;
		op->queue->post_simple(kHelErrNone, op->context);
		delete op;
	}
	// A woken waiter may come right back (touch, mark_dirty) or free itself: read the link
	// first.
	while (TouchWaiter *w = out.waiters) {
		out.waiters = w->next_waiter;
		w->touched(out.waiter_error);
	}
	out.keepalive = nullptr; // may destroy the frontal view, and this with it: last
}

// ---------------------------------------------------------------- page access

std::optional<sim::PhysicalAddr> ManagedSpace::peek_backing(std::size_t offset) {
	std::lock_guard lock{lock_};
	if (offset >= size())
		return std::nullopt;
	Page *page = page_at(offset / kPage, false);
	if (!page || page->frame == kNoFrame)
		return std::nullopt;
	return page->frame;
}

HelError ManagedSpace::touch_backing(std::size_t offset) {
	std::lock_guard lock{lock_};
	if (offset >= size())
		return kHelErrFault;
	Page &page = *page_at(offset / kPage, true);
	if (page.frame == kNoFrame) {
		auto frame = kernel_.host().physical_memory().allocate(kPage);
		if (!frame)
			return kHelErrNoMemory;
		page.frame = *frame;
	}
	return kHelErrNone;
}

std::optional<sim::PhysicalAddr> ManagedSpace::peek_frontal(std::size_t offset) {
	std::lock_guard lock{lock_};
	if (offset >= size())
		return std::nullopt;
	Page *page = page_at(offset / kPage, false);
	if (!page || !page->present)
		return std::nullopt;
	return page->frame;
}

HelError ManagedSpace::touch_frontal(std::size_t offset, unsigned flags, TouchWaiter &waiter) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (offset >= size() || abandoned_)
			return kHelErrFault;
		std::size_t index = offset / kPage;
		Page &page = *page_at(index, true);
		if (page.present)
			return kHelErrNone;
		// kHelMapDontRequireBacking: the access fails instead of waiting for the pager.
		if (flags & kFetchNoBacking)
			return kHelErrFault;
		// A missing page in another transaction (an initialization already requested, or a
		// writeback still running after an invalidation) only gets another waiter.
		if (page.tx == Tx::none)
			request_init(index);
		if (readahead_) {
			std::size_t pages = size() / kPage;
			for (std::size_t next = index + 1; next < std::min(index + 4, pages); ++next) {
				Page &ahead = *page_at(next, true);
				if (!ahead.present && ahead.tx == Tx::none)
					request_init(next);
			}
		}
		add_waiter(page, waiter);
		progress(out);
	}
	deliver(out); // completes ManageMemory operations only: no waiter runs under a caller's lock
	return kTouchPending;
}

void ManagedSpace::mark_dirty(std::size_t offset) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (offset >= size() || abandoned_)
			return;
		Page *page = page_at(offset / kPage, false);
		if (!page || !page->present)
			return; // thor ignores missing pages: their contents are not the pager's
		switch (page->tx) {
		case Tx::none:
			page->tx = Tx::want_writeback;
			writeback_list_.push_back(offset / kPage);
			progress(out);
			break;
		case Tx::writeback:
			page->redirtied = true; // the writeback in flight may miss this write
			break;
		case Tx::want_writeback: // the queued writeback will see the write
		case Tx::want_init:      // not present in these states
		case Tx::init: break;
		}
	}
	deliver(out);
}

void ManagedSpace::pin(std::size_t offset, std::size_t size) {
	if (!size)
		return;
	std::lock_guard lock{lock_};
	std::size_t end = std::min((offset + size + kPage - 1) / kPage, this->size() / kPage);
	for (std::size_t index = offset / kPage; index < end; ++index)
		++page_at(index, true)->pins;
}

void ManagedSpace::unpin(std::size_t offset, std::size_t size) {
	if (!size)
		return;
	std::lock_guard lock{lock_};
	for_each_page(offset / kPage, (offset + size + kPage - 1) / kPage, [](std::size_t, Page &page) {
		if (page.pins)
			--page.pins;
	});
}

HelError ManagedSpace::grow(std::size_t new_size) {
	if (new_size % kPage)
		return kHelErrIllegalArgs;
	if (new_size > kMaxSize)
		return kHelErrNoMemory;
	std::lock_guard lock{lock_};
	// thor can also shrink (through the backing view); helsim only grows, as for
	// AllocatedMemory. See docs/reference/helCreateManagedMemory.md.
	if (new_size < size())
		return kHelErrIllegalArgs;
	chunks_.resize((new_size / kPage + kChunkPages - 1) / kChunkPages);
	size_.store(new_size, std::memory_order_release);
	return kHelErrNone;
}

// ---------------------------------------------------------------- the pager protocol

void ManagedSpace::submit_manage(PendingOp *op) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (abandoned_) {
			out.dropped = op;
		} else {
			(manage_tail_ ? manage_tail_->next : manage_head_) = op;
			manage_tail_ = op;
			progress(out);
		}
	}
	delete out.dropped;
	deliver(out);
}

HelError ManagedSpace::update(int type, std::size_t offset, std::size_t length) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		std::size_t pages = size() / kPage;
		std::size_t first = offset / kPage, count = length / kPage;
		if (first > pages || count > pages - first)
			return kHelErrIllegalArgs; // thor: no such page, so not in the transaction
		Tx expected = type == kHelManageInitialize ? Tx::init : Tx::writeback;
		// Validate the whole range first: a refused update changes nothing.
		for (std::size_t index = first; index < first + count; ++index) {
			Page *page = page_at(index, false);
			if (!page || page->tx != expected)
				return kHelErrIllegalArgs;
		}
		if (type == kHelManageInitialize) {
			// A page the pager never touched through the backing view is all zeros.
			for (std::size_t index = first; index < first + count; ++index) {
				Page &page = *page_at(index, false);
				if (page.frame != kNoFrame)
					continue;
				auto frame = kernel_.host().physical_memory().allocate(kPage);
				if (!frame)
					return kHelErrNoMemory;
				page.frame = *frame;
			}
			for (std::size_t index = first; index < first + count; ++index) {
				Page &page = *page_at(index, false);
				page.present = true;
				page.tx = Tx::none;
				out.take_waiters(page);
			}
		} else {
			for (std::size_t index = first; index < first + count; ++index) {
				Page &page = *page_at(index, false);
				if (page.redirtied && page.present) {
					page.tx = Tx::want_writeback;
					writeback_list_.push_back(index);
				} else {
					page.tx = Tx::none;
					// Invalidated while it was written back: its waiters need it again.
					if (!page.present && page.waiters)
						request_init(index);
				}
				page.redirtied = false;
			}
			check_fences(out);
		}
		settle_waiters(out);
		progress(out);
	}
	deliver(out);
	if (update_hook_)
		update_hook_(type, offset / kPage, length / kPage);
	return kHelErrNone;
}

void ManagedSpace::submit_fence(PendingOp *op) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (abandoned_) {
			out.dropped = op;
		} else {
			op->next = fences_;
			fences_ = op;
			check_fences(out);
		}
	}
	delete out.dropped;
	deliver(out);
}

void ManagedSpace::invalidate(std::size_t offset, std::size_t size) {
	Outbox out;
	std::vector<std::pair<std::size_t, std::size_t>> runs; // page index, count
	Ref<Object> frontal_ref;
	FrontalMemory *frontal = nullptr;
	{
		std::lock_guard lock{lock_};
		std::size_t first = offset / kPage;
		for_each_page(first, first + size / kPage, [&](std::size_t index, Page &page) {
			// Pinned pages keep their contents (LockMemoryView promises stable frames); thor
			// would wait for the unlock instead. Pages being initialized are about to get
			// fresh contents anyway.
			if (page.pins || page.tx == Tx::want_init || page.tx == Tx::init)
				return;
			if (page.tx == Tx::want_writeback) {
				// Dropped, not written back: invalidation discards dirty contents.
				writeback_list_.erase(
						std::find(writeback_list_.begin(), writeback_list_.end(), index));
				page.tx = Tx::none;
			}
			page.redirtied = false;
			if (!page.present)
				return;
			// The frame stays: the backing view keeps showing it, and the next
			// initialization reuses it. A writeback in flight finishes normally.
			page.present = false;
			if (!runs.empty() && runs.back().first + runs.back().second == index)
				++runs.back().second;
			else
				runs.emplace_back(index, 1);
		});
		check_fences(out);
		if (frontal_ && frontal_->try_ref()) {
			frontal = frontal_;
			frontal_ref = Ref<Object>::adopt(frontal_);
		}
	}
	// The pages are missing now, so no new mapping can appear; drop the old ones.
	if (frontal)
		for (auto [index, count] : runs)
			frontal->evict(index * kPage, count * kPage);
	deliver(out);
}

bool ManagedSpace::queue_writeback(std::size_t index) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (abandoned_ || index >= size() / kPage)
			return false;
		Page &page = *page_at(index, true);
		if (page.tx != Tx::none || page.frame == kNoFrame)
			return false;
		page.present = true;
		page.tx = Tx::want_writeback;
		writeback_list_.push_back(index);
		progress(out);
	}
	deliver(out);
	return true;
}

void ManagedSpace::request_initialization(std::size_t index) {
	Outbox out;
	{
		std::lock_guard lock{lock_};
		if (abandoned_ || index >= size() / kPage)
			return;
		Page &page = *page_at(index, true);
		if (page.present || page.tx != Tx::none)
			return;
		request_init(index);
		progress(out);
	}
	deliver(out);
}

bool ManagedSpace::release(std::size_t index) {
	std::lock_guard lock{lock_};
	if (index >= size() / kPage)
		return true;
	Page *page = page_at(index, false);
	if (!page)
		return true;
	if (page->tx != Tx::none)
		return false;
	if (page->frame != kNoFrame)
		kernel_.host().physical_memory().free(page->frame, kPage);
	page->frame = kNoFrame;
	page->present = false;
	return true;
}

void ManagedSpace::abandon() {
	auto self = shared_from_this(); // the views may go while we complete what holds them
	Outbox out;
	PendingOp *manage;
	{
		std::lock_guard lock{lock_};
		if (abandoned_)
			return;
		abandoned_ = true;
		manage = manage_head_;
		manage_head_ = manage_tail_ = nullptr;
		out.dropped = fences_;
		fences_ = nullptr;
		for_each_page(0, size() / kPage, [&](std::size_t, Page &page) {
			while (TouchWaiter *w = page.waiters) {
				page.waiters = w->next_waiter;
				push_waiter(out.waiters, *w);
			}
		});
		waiter_count_ = 0;
		out.keepalive = std::move(keepalive_);
	}
	// Nobody reads these queues any more: the operations are freed, not completed.
	while (manage) {
		PendingOp *next = manage->next;
		delete manage;
		manage = next;
	}
	while (PendingOp *op = out.dropped) {
		out.dropped = op->next;
		delete op;
	}
	out.waiter_error = kHelErrFault;
	deliver(out);
}

void ManagedSpace::for_each_pending(const std::function<void(const PendingOperation &)> &f) {
	std::lock_guard lock{lock_};
	for (PendingOp *op = manage_head_; op; op = op->next)
		f({op->queue.get(), op->context, "manageMemory", op->view.get()});
	for (PendingOp *op = fences_; op; op = op->next)
		f({op->queue.get(), op->context, "writebackFence", op->view.get()});
}

// ---------------------------------------------------------------- the views

BackingMemory::BackingMemory(Kernel &kernel, std::shared_ptr<ManagedSpace> space)
: MemoryView{kernel}, space_{std::move(space)} {}

std::optional<sim::PhysicalAddr> BackingMemory::peek(std::size_t offset, unsigned) {
	return space_->peek_backing(offset);
}

HelError BackingMemory::touch(std::size_t offset, unsigned, TouchWaiter &) {
	return space_->touch_backing(offset);
}

FrontalMemory::FrontalMemory(Kernel &kernel, std::shared_ptr<ManagedSpace> space)
: MemoryView{kernel}, space_{std::move(space)} {
	space_->set_frontal(this);
}

FrontalMemory::~FrontalMemory() { space_->set_frontal(nullptr); }

std::optional<sim::PhysicalAddr> FrontalMemory::peek(std::size_t offset, unsigned) {
	return space_->peek_frontal(offset);
}

HelError FrontalMemory::touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) {
	return space_->touch_frontal(offset, flags, waiter);
}

HelError create_managed_memory(Kernel &kernel, std::size_t size, std::uint32_t flags,
		Ref<BackingMemory> &backing, Ref<FrontalMemory> &frontal) {
	if (flags & ~std::uint32_t{kHelManagedReadahead})
		return kHelErrIllegalArgs;
	if (size % kPage)
		return kHelErrIllegalArgs;
	if (size > ManagedSpace::kMaxSize)
		return kHelErrNoMemory;
	auto space = std::make_shared<ManagedSpace>(kernel, size, flags & kHelManagedReadahead);
	backing = make_object<BackingMemory>(kernel, space);
	frontal = make_object<FrontalMemory>(kernel, std::move(space));
	return kHelErrNone;
}

// ---------------------------------------------------------------- entry points

HelError attach_managed_memory(Thread &self, std::size_t size, std::uint32_t flags, HelWord *outs) {
	Ref<BackingMemory> backing;
	Ref<FrontalMemory> frontal;
	if (HelError e = create_managed_memory(self.kernel(), size, flags, backing, frontal);
			e != kHelErrNone)
		return e;
	HelHandle b, f;
	if (HelError e = self.universe().attach(std::move(backing), kMemoryDefaultRights, b);
			e != kHelErrNone)
		return e;
	if (HelError e = self.universe().attach(std::move(frontal), kMemoryDefaultRights, f);
			e != kHelErrNone) {
		self.universe().close(b);
		return e;
	}
	outs[0] = static_cast<HelWord>(b);
	outs[1] = static_cast<HelWord>(f);
	return kHelErrNone;
}

HelError update_memory(Thread &, MemoryView &view, int type, std::uintptr_t offset,
		std::size_t length) {
	auto *backing = dynamic_cast<BackingMemory *>(&view);
	if (!backing)
		return kHelErrUnsupportedOperation; // thor: updateRange() of any other view
	return backing->space().update(type, offset, length);
}

HelError sq_manage_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqManageMemory &, Lookup<MemoryView> &view) {
	auto *backing = dynamic_cast<BackingMemory *>(view.object.get());
	if (!backing) {
		// thor's pollNotification() of any other view.
		self.note_submitted();
		HelManageResult result{kHelErrIllegalObject, 0, 0, 0};
		QueueSource source{&result, sizeof(result)};
		queue.post({&source, 1}, context, true);
		return kHelErrNone;
	}
	// Allocated before the operation counts as submitted (see without_allocation_exceptions).
	auto *op = new ManagedSpace::PendingOp;
	self.note_submitted();
	op->queue = Ref<IpcQueue>{&queue};
	op->context = context;
	op->view = view.object; // ours stays until we return: the op may complete at once
	backing->space().submit_manage(op);
	return kHelErrNone;
}

HelError sq_writeback_fence(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqWritebackFence &request, Lookup<MemoryView> &view) {
	auto *backing = dynamic_cast<BackingMemory *>(view.object.get());
	if (!backing) // other views have nothing to write back; thor completes at once too
		return complete_at_once(self, queue, context, kHelErrNone);
	if (!page_aligned(request.offset) || !page_aligned(request.size))
		return complete_at_once(self, queue, context, kHelErrIllegalArgs);
	auto *op = new ManagedSpace::PendingOp;
	self.note_submitted();
	op->queue = Ref<IpcQueue>{&queue};
	op->context = context;
	op->first = request.offset / kPage;
	op->end = op->first + std::min(request.size / kPage, ~std::size_t{0} - op->first);
	op->view = view.object; // ours stays until we return: the op may complete at once
	backing->space().submit_fence(op);
	return kHelErrNone;
}

HelError sq_invalidate_memory(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqInvalidateMemory &request, Lookup<MemoryView> &view) {
	HelError error = kHelErrNone;
	if (auto *backing = dynamic_cast<BackingMemory *>(view.object.get())) {
		if (!page_aligned(request.offset) || !page_aligned(request.size))
			error = kHelErrIllegalArgs;
		else if (request.offset + request.size < request.offset)
			error = kHelErrBufferTooSmall;
		else
			backing->space().invalidate(request.offset, request.size);
	}
	return complete_at_once(self, queue, context, error);
}

} // namespace helsim::kernel
