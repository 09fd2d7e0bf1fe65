// Copy-on-write memory (helCopyOnWrite, SQ ForkMemory): a private overlay over a source view
// or over zero memory, as POSIX fork and anonymous mmap use it.
//
// A page is found in three places, in this order: the view's private frames (its own copies,
// writable), the shared layers (frames that earlier forks froze, newest first, read-only and
// shared with the views forked alongside), and finally the source (or one zero frame). Reads
// map whatever is found read-only; the first write copies the page into a private frame.
// ForkMemory freezes the private frames into a new shared layer that the original and the
// fork both put in front of their chains; pinned pages stay private and are copied eagerly.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "kernel/memory/memory_view.hpp"

namespace helsim::kernel {

// ForkMemory needs Derive; a CoW view of a source that may not be executed cannot be either
// (see sys_copy_on_write).
inline constexpr std::uint32_t kCowDefaultRights = kMemoryDefaultRights | kHelRightDerive;

class CopyOnWriteMemory final : public MemoryView, public MemoryObserver {
public:
	// `source` null means zero memory. Arguments are validated by the syscall layer:
	// [offset, offset + size) lies inside the source, both page aligned, size non-zero.
	static Ref<CopyOnWriteMemory> create(Kernel &kernel, Ref<MemoryView> source, std::size_t offset,
			std::size_t size);
	~CopyOnWriteMemory() override;
	const char *describe() const override { return "copy-on-write memory"; }

	std::size_t size() const override { return size_; }
	std::optional<sim::PhysicalAddr> peek(std::size_t offset, unsigned flags) override;
	HelError touch(std::size_t offset, unsigned flags, TouchWaiter &waiter) override;
	void pin(std::size_t offset, std::size_t size) override;
	void unpin(std::size_t offset, std::size_t size) override;
	HelError fork(Ref<MemoryView> &out) override;

	// Null for zero memory.
	const Ref<MemoryView> &source() const { return source_; }
	void for_each_reference(const std::function<void(Object &)> &f) override;

	// MemoryObserver: the source gives pages up, which read-through mappings may show.
	void evict(MemoryView &view, std::size_t offset, std::size_t size) override;
	Object &observer_object() override { return *this; }

	// More is refused with kHelErrNoMemory, as for allocated memory.
	static constexpr std::size_t kMaxSize = std::size_t{1} << 40;

private:
	template <typename T, typename... Args>
	friend Ref<T> make_object(Args &&...args);
	struct Layer;
	struct ZeroFrame;
	using Chain = std::vector<std::shared_ptr<const Layer>>;

	CopyOnWriteMemory(Kernel &kernel, Ref<MemoryView> source, std::size_t offset, std::size_t size,
			std::shared_ptr<ZeroFrame> zero);
	// The frame a read sees in the shared layers, if any. Caller holds mutex_.
	std::optional<sim::PhysicalAddr> shared_frame(std::size_t index,
			std::shared_ptr<const Layer> *layer = nullptr) const;
	HelError copy_page(std::size_t index, TouchWaiter &waiter);
	// Ends a copy of page `index` (publishing `frame` if there is one) and wakes the touches
	// that waited for it.
	void finish_copy(std::size_t index, std::optional<sim::PhysicalAddr> frame);
	static void wake(TouchWaiter *waiters);

	const Ref<MemoryView> source_;
	const std::size_t source_offset_;
	const std::size_t size_;
	const std::shared_ptr<ZeroFrame> zero_; // zero memory only

	std::mutex mutex_;
	std::unordered_map<std::size_t, sim::PhysicalAddr> private_; // page index -> own frame
	Chain shared_;                                               // newest first
	std::unordered_map<std::size_t, unsigned> pins_;             // page index -> pin count
	// Pages being copied: peek shows nothing for them, touches wait, so that no mapping
	// picks up the old frame after the copy evicted it.
	std::unordered_set<std::size_t> copying_;
	// A fork is sharing the private frames out: they are not writable until it is done.
	bool forking_ = false;
	TouchWaiter *waiters_ = nullptr; // touches waiting for a copy or a fork to finish
	// One fork at a time. Held while evicting, unlike mutex_: no observer takes it.
	std::mutex fork_mutex_;
};

} // namespace helsim::kernel
