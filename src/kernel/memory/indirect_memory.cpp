// Indirect memory and its entry points helCreateIndirectMemory and helAlterMemoryIndirection.
#include "kernel/memory/indirect_memory.hpp"

#include <algorithm>

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/cow_memory.hpp"
#include "kernel/memory/memory_slice.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {

IndirectMemory::IndirectMemory(Kernel &kernel, std::size_t num_slots)
: MemoryView{kernel}, num_slots_{num_slots}, slots_(num_slots) {}

Ref<IndirectMemory> IndirectMemory::create(Kernel &kernel, std::size_t num_slots) {
	return make_object<IndirectMemory>(kernel, num_slots);
}

IndirectMemory::~IndirectMemory() {
	for (Slot &slot : slots_)
		if (slot.view)
			slot.view->remove_observer(*this);
}

void IndirectMemory::for_each_reference(const std::function<void(Object &)> &f) {
	std::vector<Ref<MemoryView>> views;
	{
		std::lock_guard lock{mutex_};
		for (Slot &slot : slots_)
			if (slot.view)
				views.push_back(slot.view);
	}
	for (auto &view : views)
		f(*view);
}

bool IndirectMemory::resolve(std::size_t offset, Ref<MemoryView> &view, std::size_t &view_offset,
		std::size_t *left) {
	std::size_t index = offset >> kSlotShift;
	std::size_t in_slot = offset & (kSlotSize - 1);
	if (index >= num_slots_)
		return false;
	std::lock_guard lock{mutex_};
	const Slot &slot = slots_[index];
	if (!slot.view || in_slot >= slot.size)
		return false;
	view = slot.view;
	view_offset = slot.offset + in_slot;
	if (left)
		*left = slot.size - in_slot;
	return true;
}

template <typename F>
void IndirectMemory::for_each_piece(std::size_t offset, std::size_t size, F &&f) {
	while (size) {
		std::size_t in_slot = offset & (kSlotSize - 1);
		std::size_t chunk = std::min(size, kSlotSize - in_slot);
		Ref<MemoryView> view;
		std::size_t view_offset, left;
		if (resolve(offset, view, view_offset, &left)) {
			chunk = std::min(chunk, left);
			f(*view, view_offset, chunk);
		}
		offset += chunk;
		size -= chunk;
	}
}

std::optional<sim::PhysicalAddr> IndirectMemory::peek(std::size_t offset, unsigned flags) {
	Ref<MemoryView> view;
	std::size_t view_offset;
	if (!resolve(offset, view, view_offset))
		return std::nullopt;
	return view->peek(view_offset, flags);
}

HelError IndirectMemory::touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) {
	Ref<MemoryView> view;
	std::size_t view_offset;
	if (!resolve(offset, view, view_offset))
		return kHelErrFault;
	return view->touch(view_offset, flags, waiter);
}

void IndirectMemory::mark_dirty(std::size_t offset) {
	Ref<MemoryView> view;
	std::size_t view_offset;
	if (resolve(offset, view, view_offset))
		view->mark_dirty(view_offset);
}

void IndirectMemory::pin(std::size_t offset, std::size_t size) {
	for_each_piece(offset, size,
			[](MemoryView &view, std::size_t at, std::size_t n) { view.pin(at, n); });
}

void IndirectMemory::unpin(std::size_t offset, std::size_t size) {
	for_each_piece(offset, size,
			[](MemoryView &view, std::size_t at, std::size_t n) { view.unpin(at, n); });
}

void IndirectMemory::alter(std::size_t slot, Ref<MemoryView> view, std::size_t offset,
		std::size_t size) {
	// Registered before the slot shows the view, so no eviction of it goes unforwarded.
	view->add_observer(*this);
	Slot old;
	{
		std::lock_guard lock{mutex_};
		old = std::exchange(slots_[slot], Slot{std::move(view), offset, size});
	}
	// Evicting after the switch, not before: a fault between an eviction and the switch
	// could map the old view's page again, and nothing would remove it.
	evict_range(slot << kSlotShift, kSlotSize);
	if (old.view)
		old.view->remove_observer(*this);
	// `old` may hold the last reference: the frames go only now, after the eviction.
}

void IndirectMemory::evict(MemoryView &view, std::size_t offset, std::size_t size) {
	std::vector<std::pair<std::size_t, std::size_t>> ranges;
	{
		std::lock_guard lock{mutex_};
		for (std::size_t i = 0; i < num_slots_; ++i) {
			const Slot &slot = slots_[i];
			if (slot.view.get() != &view)
				continue;
			std::size_t lo = std::max(offset, slot.offset);
			std::size_t hi = std::min(offset + size, slot.offset + slot.size);
			if (lo < hi)
				ranges.emplace_back((i << kSlotShift) + (lo - slot.offset), hi - lo);
		}
	}
	for (auto [at, length] : ranges)
		evict_range(at, length);
}

// ---------------------------------------------------------------- entry points

HelError create_indirect_memory(Thread &self, std::size_t num_slots, HelWord *outs) {
	if (num_slots > IndirectMemory::kMaxSlots)
		return kHelErrNoMemory;
	return attach_new(self, IndirectMemory::create(self.kernel(), num_slots),
			kIndirectDefaultRights, outs);
}

namespace {

// Whether showing `view` in a slot could make a view reach itself (peek would recurse
// forever). Copy-on-write chains are followed; indirect views inside slots are refused
// outright, which rules out every cycle, also those two concurrent alterations could close.
bool reaches_indirect(const MemoryView *view) {
	while (view) {
		if (dynamic_cast<const IndirectMemory *>(view))
			return true;
		auto *cow = dynamic_cast<const CopyOnWriteMemory *>(view);
		view = cow ? cow->source().get() : nullptr;
	}
	return false;
}

} // namespace

HelError decode_indirection(Thread &self, const HelWord *args, IndirectionRequest &out) {
	auto slot = arg<std::size_t>(args, 1);
	auto offset = arg<std::uintptr_t>(args, 3);
	auto size = arg<std::size_t>(args, 4);
	auto indirect = resolve_view(self, arg<HelHandle>(args, 0), kHelRightManage);
	if (!indirect)
		return indirect.error;
	// thor's setIndirection() is illegalObject on other views, which hel reports so.
	auto *target = dynamic_cast<IndirectMemory *>(indirect.object.get());
	if (!target)
		return kHelErrUnsupportedOperation;

	Resolved memory;
	if (HelError e = self.universe().lookup(arg<HelHandle>(args, 2), memory); e != kHelErrNone)
		return e;
	Ref<MemoryView> view;
	std::size_t window = 0; // how much of the view the handle may show from `offset` on
	switch (memory.object->kind()) {
	case ObjectKind::memory_view:
		view = Ref<MemoryView>{static_cast<MemoryView *>(memory.object.get())};
		window = view->size();
		break;
	case ObjectKind::memory_slice: {
		auto *slice = static_cast<MemorySlice *>(memory.object.get());
		view = slice->view();
		window = slice->size();
		break;
	}
	default: return kHelErrBadDescriptor;
	}
	constexpr std::uint32_t kNeeded = kHelRightRead | kHelRightWrite | kHelRightAssign;
	if ((memory.rights & kNeeded) != kNeeded)
		return kHelErrBadRights;

	if (slot >= target->num_slots())
		return kHelErrOutOfBounds;
	if (!page_aligned(offset) || !page_aligned(size) || size > IndirectMemory::kSlotSize)
		return kHelErrIllegalArgs;
	if (offset > window || size > window - offset)
		return kHelErrBufferTooSmall;
	if (memory.object->kind() == ObjectKind::memory_slice)
		offset += static_cast<MemorySlice *>(memory.object.get())->offset();
	if (reaches_indirect(view.get()))
		return kHelErrIllegalArgs;
	out = {std::move(indirect.object), slot, std::move(view), offset, size};
	return kHelErrNone;
}

HelError alter_memory_indirection(Thread &, IndirectionRequest &request) {
	static_cast<IndirectMemory *>(request.indirect.get())
			->alter(request.slot, std::move(request.view), request.offset, request.size);
	return kHelErrNone;
}

} // namespace helsim::kernel
