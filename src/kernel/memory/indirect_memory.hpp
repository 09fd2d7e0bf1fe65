// Indirect memory (helCreateIndirectMemory, helAlterMemoryIndirection): a view made of slots,
// each showing a window of another view. Slot i covers [i * kSlotSize, (i + 1) * kSlotSize);
// a slot shows [offset, offset + size) of its view at its start and nothing beyond.
#pragma once

#include <mutex>
#include <vector>

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

// Execute is missing on purpose: a slot may show memory its setter could not execute, and the
// indirect handle must not be a way to gain that right. Pin is missing too:
// helAlterMemoryIndirection asks no Pin of the slot's view, so the indirect handle must not grant
// it (both as thor).
inline constexpr std::uint32_t kIndirectDefaultRights =
		kMemoryDefaultRights & ~(kHelRightExecute | kHelRightPin);

class IndirectMemory final : public MemoryView, public MemoryObserver {
public:
	// thor's slot size: the slot is the offset's upper 32 bits.
	static constexpr unsigned kSlotShift = 32;
	static constexpr std::size_t kSlotSize = std::size_t{1} << kSlotShift;
	// More slots are refused with kHelErrNoMemory: the slot table lives in host memory.
	static constexpr std::size_t kMaxSlots = std::size_t{1} << 16;

	static Ref<IndirectMemory> create(Kernel &kernel, std::size_t num_slots);
	~IndirectMemory() override;
	const char *describe() const override { return "indirect memory"; }

	std::size_t size() const override { return num_slots_ << kSlotShift; }
	std::size_t num_slots() const { return num_slots_; }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	void mark_dirty(std::size_t offset) override;
	void pin(std::size_t offset, std::size_t size) override;
	void unpin(std::size_t offset, std::size_t size) override;

	// Points slot `slot` (< num_slots(), checked by the caller) at [offset, offset + size)
	// of `view`; mappings of the slot's range drop what they showed before.
	void alter(std::size_t slot, Ref<MemoryView> view, std::size_t offset, std::size_t size);

	void for_each_reference(const std::function<void(Object &)> &f) override;

	// MemoryObserver: a slot's view gives pages up.
	void evict(MemoryView &view, std::size_t offset, std::size_t size) override;
	Object &observer_object() override { return *this; }

private:
	template <typename T, typename... Args>
	friend Ref<T> make_object(Args &&...args);
	struct Slot {
		Ref<MemoryView> view;
		std::size_t offset = 0;
		std::size_t size = 0;
	};

	IndirectMemory(Kernel &kernel, std::size_t num_slots);
	// The slot view behind `offset`, the offset in it and (with `left`) how much of the slot
	// follows; false if the slot shows nothing there.
	bool resolve(std::size_t offset, Ref<MemoryView> &view, std::size_t &view_offset,
			std::size_t *left = nullptr);
	// Calls f(view, view_offset, length) for each slot piece of [offset, offset + size).
	template <typename F>
	void for_each_piece(std::size_t offset, std::size_t size, F &&f);

	const std::size_t num_slots_;
	std::mutex mutex_;
	std::vector<Slot> slots_;
};

} // namespace helsim::kernel
