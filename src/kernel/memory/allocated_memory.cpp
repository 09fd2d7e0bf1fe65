#include "kernel/memory/allocated_memory.hpp"

#include <utility>

#include "kernel/core/allocation_errors.hpp"
#include "kernel/core/kernel.hpp"

namespace helsim::kernel {

AllocatedMemory::AllocatedMemory(Kernel &kernel, std::size_t size, bool continuous,
		sim::PhysicalAddr limit)
: MemoryView{kernel}, size_{size},
  chunks_(continuous ? 0 : (size / sim::kPageSize + kChunkPages - 1) / kChunkPages),
  continuous_{continuous}, limit_{limit} {}

sim::PhysicalAddr *AllocatedMemory::slot(std::size_t index, bool create) {
	auto &chunk = chunks_[index / kChunkPages];
	if (!chunk) {
		if (!create)
			return nullptr;
		chunk = std::make_unique<Chunk>();
		chunk->fill(kNoFrame);
	}
	return &(*chunk)[index % kChunkPages];
}

HelError AllocatedMemory::create(Kernel &kernel, std::size_t size, std::uint32_t flags,
		int address_bits, Ref<AllocatedMemory> &out) {
	if (!size || size % sim::kPageSize)
		return kHelErrIllegalArgs;
	if (size > kMaxSize)
		return kHelErrNoMemory;
	if (flags & ~std::uint32_t{kHelAllocOnDemand | kHelAllocContinuous})
		return kHelErrIllegalArgs;
	if (address_bits < 0 || address_bits > 64)
		return kHelErrIllegalArgs;
	sim::PhysicalAddr limit = address_bits == 0 || address_bits == 64
			? ~sim::PhysicalAddr{0}
			: (sim::PhysicalAddr{1} << address_bits);
	bool continuous = flags & kHelAllocContinuous;
	auto memory = make_object<AllocatedMemory>(kernel, size, continuous, limit);
	if (continuous) {
		auto base = kernel.host().physical_memory().allocate(size, limit);
		if (!base)
			return kHelErrNoMemory;
		memory->base_ = *base;
	}
	out = std::move(memory);
	return kHelErrNone;
}

AllocatedMemory::~AllocatedMemory() {
	sim::PhysicalMemory &memory = kernel().host().physical_memory();
	if (continuous_) {
		if (base_ != kNoFrame)
			memory.free(base_, size());
		return;
	}
	for (auto &chunk : chunks_)
		if (chunk)
			for (sim::PhysicalAddr frame : *chunk)
				if (frame != kNoFrame)
					memory.free(frame, sim::kPageSize);
}

std::optional<sim::PhysicalAddr> AllocatedMemory::peek(std::size_t offset, unsigned) {
	if (offset >= size())
		return std::nullopt;
	if (continuous_)
		return base_ + offset;
	std::lock_guard lock{lock_};
	sim::PhysicalAddr *frame = slot(offset / sim::kPageSize, false);
	if (!frame || *frame == kNoFrame)
		return std::nullopt;
	return *frame;
}

HelError AllocatedMemory::touch(std::size_t offset, unsigned, TouchWaiter &) {
	if (offset >= size())
		return kHelErrFault;
	if (continuous_)
		return kHelErrNone;
	std::lock_guard lock{lock_};
	sim::PhysicalAddr *frame = slot(offset / sim::kPageSize, true);
	if (*frame != kNoFrame)
		return kHelErrNone;
	auto fresh = kernel().host().physical_memory().allocate(sim::kPageSize, limit_);
	if (!fresh)
		return kHelErrNoMemory;
	*frame = *fresh;
	return kHelErrNone;
}

HelError AllocatedMemory::resize(std::size_t new_size) {
	if (!new_size || new_size % sim::kPageSize)
		return kHelErrIllegalArgs;
	// A continuous allocation cannot grow in place here (thor grows it by whole chunks of its
	// original size); docs/fidelity.md.
	if (continuous_)
		return kHelErrUnsupportedOperation;
	if (new_size > kMaxSize)
		return kHelErrNoMemory;
	std::lock_guard lock{lock_};
	if (new_size < size_.load(std::memory_order_relaxed))
		return kHelErrIllegalArgs; // memory only grows
	chunks_.resize((new_size / sim::kPageSize + kChunkPages - 1) / kChunkPages);
	size_.store(new_size, std::memory_order_release);
	return kHelErrNone;
}

void AllocatedMemory::pin(std::size_t, std::size_t) {
	std::lock_guard lock{lock_};
	++pins_;
}

void AllocatedMemory::unpin(std::size_t, std::size_t) {
	std::lock_guard lock{lock_};
	--pins_;
}

HelError AllocatedMemory::take_pages(std::size_t offset, std::size_t size, Ref<MemoryView> &out) {
	if (continuous_)
		return kHelErrUnsupportedOperation;
	// The new view and its whole frame table first, so that the move cannot fail half way.
	Ref<AllocatedMemory> target;
	if (HelError e = without_allocation_exceptions([&] {
			target = make_object<AllocatedMemory>(kernel(), size, false, limit_);
			for (std::size_t index = 0; index < size / sim::kPageSize; index += kChunkPages)
				target->slot(index, true);
			return kHelErrNone;
		});
			e != kHelErrNone)
		return e;
	{
		std::lock_guard lock{lock_};
		if (pins_)
			return kHelErrIllegalState;
		if (offset > size_.load(std::memory_order_relaxed) ||
				size > size_.load(std::memory_order_relaxed) - offset)
			return kHelErrOutOfBounds;
		// A fault that peeked a frame before this re-peeks it under its space's lock before
		// it maps it, and evict_range below takes that lock: it either sees the empty slot
		// (and touches a fresh zero page) or its entry is dropped.
		for (std::size_t page = 0; page < size / sim::kPageSize; ++page) {
			sim::PhysicalAddr *from = slot(offset / sim::kPageSize + page, false);
			if (from && *from != kNoFrame)
				*target->slot(page, false) = std::exchange(*from, kNoFrame);
		}
	}
	evict_range(offset, size);
	out = std::move(target);
	return kHelErrNone;
}

} // namespace helsim::kernel
