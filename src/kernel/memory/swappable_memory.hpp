// Swappable memory (helAllocateSwappableMemory): anonymous, zero-filled memory whose pages a
// swap space (swap_space.hpp) may write out through its daemon and fault back in.
//
// Per page: a frame (or none), the swap slot it owns once it was first written out, a state,
// and what the kernel knows about its contents. The store's lock guards every page.
//
//   absent ──touch──> resident (a zero frame)
//   resident ──mark_dirty──> writeback ──UpdateMemory──> resident (a copy in swap), or
//                            writeback again if it was written meanwhile
//   resident ──over budget, maybe written──> evicting ──UpdateMemory──> swapped (frame freed),
//                                                           or resident if someone waits
//   resident ──over budget, clean──> swapped, or absent if it never held anything
//   swapped ──touch──> swapping_in ──UpdateMemory(initialize)──> resident
//
// "Maybe written": a write fault or a writable mapping (peek or touch with kFetchMutable) or
// a dirty bit since the page last got its frame, was last written out on eviction, or was
// last written back while no mapping showed the view. Evicting such a page writes it back.
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "kernel/memory/memory_view.hpp"
#include "kernel/memory/swap_space.hpp"

namespace helsim::kernel {

class SwappableMemory final : public MemoryView {
public:
	SwappableMemory(Kernel &kernel, std::shared_ptr<SwapStore> store, std::size_t size);
	~SwappableMemory() override;
	const char *describe() const override { return "swappable memory"; }

	static constexpr std::size_t kMaxSize = std::size_t{1} << 40;

	std::size_t size() const override { return size_; }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	void mark_dirty(std::size_t offset) override;
	void pin(std::size_t offset, std::size_t size) override;
	void unpin(std::size_t offset, std::size_t size) override;
	void abandon() override;

	// Drops every mapping's entries for [offset, offset + size). No lock held.
	void evict(std::size_t offset, std::size_t size) { evict_range(offset, size); }

	// ---- the store's lock held
	// The store picked this page to make room; false if it cannot go now.
	void take_victim(std::size_t index, SwapOutbox &out);
	// The daemon acknowledged the writeback of the page's slot.
	void slot_written(std::size_t index, SwapOutbox &out);
	// The daemon initialized the page's slot with `data` (nullptr: zeros).
	void slot_filled(std::size_t index, const void *data, SwapOutbox &out);

private:
	enum class State : std::uint8_t { absent, resident, writeback, evicting, swapped, swapping_in };
	static constexpr sim::PhysicalAddr kNoFrame = ~sim::PhysicalAddr{0};

	struct Page {
		sim::PhysicalAddr frame = kNoFrame;
		std::size_t slot = kNoSlot;
		TouchWaiter *waiters = nullptr;
		std::uint32_t pins = 0;
		State state = State::absent;
		bool has_copy = false;      // the slot holds the page's contents
		bool maybe_written = false; // see above
		bool redirtied = false;     // written again while its writeback was in flight
	};
	static constexpr std::size_t kChunkPages = 512;
	using Chunk = std::array<Page, kChunkPages>;

	Page *page_at(std::size_t index, bool create); // lock held
	bool hold(SwapOutbox &out);                    // lock held: a reference for the outbox
	void add_waiter(Page &page, TouchWaiter &waiter, SwapOutbox &out);
	void take_waiters(Page &page, SwapOutbox &out);
	void make_resident(std::size_t index, Page &page, SwapOutbox &out);
	void start_writeback(Page &page, std::size_t index, SwapOutbox &out);

	std::shared_ptr<SwapStore> store_;
	const std::size_t size_;
	std::vector<std::unique_ptr<Chunk>> chunks_;
	std::size_t waiter_count_ = 0;
	Ref<Object> keepalive_; // ourselves, while waiters wait
	bool abandoned_ = false;
};

} // namespace helsim::kernel
