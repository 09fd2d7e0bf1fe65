// Anonymous memory (helAllocateMemory): zero-filled frames, allocated when first touched, or
// all at once and physically contiguous with kHelAllocContinuous.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "kernel/core/spinlock.hpp"
#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

class AllocatedMemory final : public MemoryView {
public:
	// `address_bits` (HelAllocRestrictions) bounds the frames' physical addresses; 0 means
	// no bound. kHelErrNoMemory when a continuous allocation does not fit.
	static HelError create(Kernel &kernel, std::size_t size, std::uint32_t flags, int address_bits,
			Ref<AllocatedMemory> &out);
	~AllocatedMemory() override;
	const char *describe() const override { return "allocated memory"; }

	std::size_t size() const override { return size_.load(std::memory_order_acquire); }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	HelError resize(std::size_t new_size) override;
	bool eagerly_mapped() const override { return continuous_; }
	void pin(std::size_t offset, std::size_t size) override;
	void unpin(std::size_t offset, std::size_t size) override;
	bool pages_movable() const override { return !continuous_; }
	HelError take_pages(std::size_t offset, std::size_t size, Ref<MemoryView> &out) override;

	bool continuous() const { return continuous_; }
	// The first frame of a continuous allocation (the queue's ring lives there).
	sim::PhysicalAddr base() const { return base_; }

	// Larger allocations are refused with kHelErrNoMemory: lazy memory may exceed the
	// simulated RAM, but its frame table must fit into the host's.
	static constexpr std::size_t kMaxSize = std::size_t{1} << 40;

private:
	template <typename T, typename... Args>
	friend Ref<T> make_object(Args &&...args);
	static constexpr sim::PhysicalAddr kNoFrame = ~sim::PhysicalAddr{0};
	static constexpr std::size_t kChunkPages = 512;
	using Chunk = std::array<sim::PhysicalAddr, kChunkPages>;

	AllocatedMemory(Kernel &kernel, std::size_t size, bool continuous, sim::PhysicalAddr limit);
	sim::PhysicalAddr *slot(std::size_t index, bool create);

	SpinLock lock_;
	std::atomic<std::size_t> size_;
	// Lazy memory: frames per page in chunks of 512, allocated as pages are touched.
	std::vector<std::unique_ptr<Chunk>> chunks_;
	sim::PhysicalAddr base_ = kNoFrame; // continuous memory: every frame follows from it
	std::size_t pins_ = 0; // locked ranges (helLockMemoryView): take_pages refuses while any is
	const bool continuous_;
	const sim::PhysicalAddr limit_; // highest physical address a frame may end at
};

} // namespace helsim::kernel
