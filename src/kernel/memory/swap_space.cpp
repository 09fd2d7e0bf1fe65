// helCreateSwapSpace and helSetSwapBudget; the budget, the slots and the daemon's answers.
// See swap_space.hpp for the protocol.
#include "kernel/memory/swap_space.hpp"

#include <cstring>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/memory_syscalls.hpp"
#include "kernel/memory/swappable_memory.hpp"

namespace helsim::kernel {
namespace {
constexpr std::size_t kPage = sim::kPageSize;
} // namespace

SwapStore::SwapStore(Kernel &kernel, std::shared_ptr<ManagedSpace> slots)
: kernel_{kernel}, slots_{std::move(slots)} {}

HelError SwapStore::set_budget(std::size_t pages) {
	// thor's policy for 0 is its reclaimer's business; here a budget of 0 would leave no page
	// a frame to fault into, so no access could ever finish.
	if (pages == 0)
		return kHelErrIllegalArgs;
	SwapOutbox out;
	{
		std::lock_guard lock{lock_};
		budget_ = pages;
		balance(out, nullptr, 0);
	}
	deliver(out);
	return kHelErrNone;
}

std::size_t SwapStore::allocate_slot(SwappableMemory &memory, std::size_t index) {
	std::size_t slot;
	if (!free_slots_.empty()) {
		slot = *free_slots_.begin();
		free_slots_.erase(free_slots_.begin());
	} else {
		slot = owners_.size();
		if ((slot + 1) * kPage > slots_->size() && slots_->grow((slot + 1) * kPage) != kHelErrNone)
			return kNoSlot;
		owners_.emplace_back(nullptr, 0);
	}
	owners_[slot] = {&memory, index};
	return slot;
}

void SwapStore::free_slot(std::size_t slot) {
	owners_[slot] = {nullptr, 0};
	// A slot in a transaction comes back through updated() once the daemon answers.
	if (slots_->release(slot))
		free_slots_.insert(slot);
}

void SwapStore::note_resident(SwappableMemory &memory, std::size_t index) {
	++resident_;
	fifo_.emplace_back(&memory, index);
}

void SwapStore::balance(SwapOutbox &out, const SwappableMemory *memory, std::size_t index) {
	// Oldest first. Each candidate is looked at once per call: pinned pages go to the back,
	// pages that moved on meanwhile drop out.
	for (std::size_t n = fifo_.size(); resident_ > budget_ && n; --n) {
		auto [victim, at] = fifo_.front();
		fifo_.pop_front();
		if (victim == memory && at == index) {
			fifo_.emplace_back(victim, at);
			continue;
		}
		victim->take_victim(at, out);
	}
}

void SwapStore::forget(const SwappableMemory &memory) {
	std::erase_if(fifo_, [&](const auto &entry) { return entry.first == &memory; });
}

bool SwapStore::fill_slot(std::size_t slot, sim::PhysicalAddr frame) {
	if (slots_->touch_backing(slot * kPage) != kHelErrNone)
		return false;
	auto target = slots_->peek_backing(slot * kPage);
	if (!target)
		return false;
	sim::PhysicalMemory &memory = kernel_.host().physical_memory();
	std::memcpy(memory.direct(*target), memory.direct(frame), kPage);
	return true;
}

void SwapStore::deliver(SwapOutbox &out) {
	sim::PhysicalMemory &memory = kernel_.host().physical_memory();
	for (std::size_t slot : out.inits)
		slots_->request_initialization(slot);
	// (1) No mapping shows an evicted page any more; (2) only then is its frame copied out or
	// freed, so no write through an old entry is lost.
	for (auto &e : out.evictions) {
		e.memory->evict(e.index * kPage, kPage);
		if (e.slot == kNoSlot)
			memory.free(e.frame, kPage);
		else if (fill_slot(e.slot, e.frame))
			slots_->queue_writeback(e.slot);
	}
	for (auto [slot, frame] : out.writes)
		if (fill_slot(slot, frame))
			slots_->queue_writeback(slot);
	// A woken waiter may come right back or free itself: read the link first.
	while (TouchWaiter *w = out.waiters) {
		out.waiters = w->next_waiter;
		w->touched(out.waiter_error);
	}
	out.keepalive.clear(); // may destroy swappable memory: last
}

void SwapStore::updated(int type, std::size_t first, std::size_t count) {
	for (std::size_t slot = first; slot < first + count; ++slot) {
		// The daemon's data, read before the lock: the slot is in no transaction now, and
		// only code under our lock frees it.
		std::optional<sim::PhysicalAddr> data;
		if (type == kHelManageInitialize)
			data = slots_->peek_backing(slot * kPage);
		SwapOutbox out;
		{
			std::lock_guard lock{lock_};
			if (slot >= owners_.size())
				continue;
			auto [memory, index] = owners_[slot];
			if (!memory) {
				free_slot(slot); // its memory died while the daemon had it
				continue;
			}
			if (type == kHelManageWriteback)
				memory->slot_written(index, out);
			else
				memory->slot_filled(index,
						data ? kernel_.host().physical_memory().direct(*data) : nullptr, out);
		}
		deliver(out);
	}
}

// ---------------------------------------------------------------- creation, entry points

HelError create_swap_space(Kernel &kernel, std::uint32_t flags, Ref<BackingMemory> &backing,
		Ref<SwapSpace> &swap) {
	if (flags != 0)
		return kHelErrIllegalArgs;
	auto slots = std::make_shared<ManagedSpace>(kernel, 0, false);
	auto store = std::make_shared<SwapStore>(kernel, slots);
	slots->set_update_hook([weak = std::weak_ptr<SwapStore>{store}](int type, std::size_t first,
								   std::size_t count) {
		if (auto store = weak.lock())
			store->updated(type, first, count);
	});
	backing = make_object<BackingMemory>(kernel, std::move(slots));
	swap = make_object<SwapSpace>(kernel, std::move(store));
	return kHelErrNone;
}

HelError attach_swap_space(Thread &self, std::uint32_t flags, HelWord *outs) {
	Ref<BackingMemory> backing;
	Ref<SwapSpace> swap;
	if (HelError e = create_swap_space(self.kernel(), flags, backing, swap); e != kHelErrNone)
		return e;
	HelHandle b, s;
	if (HelError e = self.universe().attach(std::move(backing), kMemoryDefaultRights, b);
			e != kHelErrNone)
		return e;
	if (HelError e = self.universe().attach(std::move(swap), kSwapSpaceDefaultRights, s);
			e != kHelErrNone) {
		self.universe().close(b);
		return e;
	}
	outs[0] = static_cast<HelWord>(b);
	outs[1] = static_cast<HelWord>(s);
	return kHelErrNone;
}

} // namespace helsim::kernel
