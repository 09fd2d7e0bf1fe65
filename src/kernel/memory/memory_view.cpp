#include "kernel/memory/memory_view.hpp"

#include <algorithm>
#include <cstring>

#include "kernel/core/kernel.hpp"

namespace helsim::kernel {

void MemoryView::add_observer(MemoryObserver &observer) {
	std::lock_guard lock{observers_mutex_};
	observers_.push_back(&observer);
}

void MemoryView::remove_observer(MemoryObserver &observer) {
	std::lock_guard lock{observers_mutex_};
	auto it = std::find(observers_.begin(), observers_.end(), &observer);
	if (it != observers_.end())
		observers_.erase(it);
}

bool MemoryView::observed() {
	std::lock_guard lock{observers_mutex_};
	return !observers_.empty();
}

void MemoryView::evict_range(std::size_t offset, std::size_t size) {
	// Call out without the observer lock (an observer takes its own locks, and those are
	// held while registering), keeping each observer alive by a reference instead.
	std::vector<std::pair<MemoryObserver *, Ref<Object>>> targets;
	{
		std::lock_guard lock{observers_mutex_};
		for (MemoryObserver *observer : observers_) {
			Object &owner = observer->observer_object();
			if (owner.try_ref())
				targets.emplace_back(observer, Ref<Object>::adopt(&owner));
		}
	}
	for (auto &[observer, owner] : targets)
		observer->evict(*this, offset, size);
}

HelError copy_view(MemoryView &view, std::size_t offset, void *buffer, std::size_t size,
		bool to_view, std::size_t &done, TouchWaiter &waiter) {
	if (offset > view.size() || size > view.size() - offset)
		return kHelErrFault;
	sim::PhysicalMemory &memory = view.kernel().host().physical_memory();
	unsigned flags = to_view ? unsigned{kFetchMutable} : 0u;
	auto *bytes = static_cast<std::byte *>(buffer);
	while (done < size) {
		std::size_t at = offset + done;
		std::size_t page = at & ~(sim::kPageSize - 1);
		std::size_t chunk = std::min(size - done, page + sim::kPageSize - at);
		auto frame = view.peek(page, flags);
		if (!frame) {
			HelError e = view.touch(page, flags, waiter);
			if (e != kHelErrNone)
				return e; // an error, or kTouchPending
			continue;     // peek again: the touch may have raced with an eviction
		}
		auto *target = static_cast<std::byte *>(memory.direct(*frame)) + (at - page);
		if (to_view) {
			std::memcpy(target, bytes + done, chunk);
			view.mark_dirty(page);
		} else {
			std::memcpy(bytes + done, target, chunk);
		}
		done += chunk;
	}
	return kHelErrNone;
}

} // namespace helsim::kernel
