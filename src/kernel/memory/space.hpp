// Address spaces: mappings of memory views, and the page tables that are their truth.
//
// A mapping records (view, offset, flags) for a range; page table entries appear as pages are
// faulted in — by a kernel access to user memory or by user code touching the range, which
// the host reports through the window. A present page is mirrored into the host at the same
// address, read-only until it is written (so the dirty bit stays exact), so user code then
// runs at full speed. See docs/memory.md.
#pragma once

#include <cstdint>
#include <map>
#include <shared_mutex>

#include "kernel/memory/memory_view.hpp"
#include "kernel/memory/page_table.hpp"
#include "kernel/memory/virtual_window.hpp"

namespace helsim::kernel {

class Thread;

inline constexpr std::uint32_t kSpaceDefaultRights =
		kHelRightGrant | kHelRightRead | kHelRightWrite | kHelRightAssign | kHelRightProvision;

enum class Access { read, write, execute };

// Waits for a touch on behalf of a thread that may block (a syscall on its own thread), or
// a host thread that faulted on a window address.
class BlockingTouch final : public TouchWaiter {
public:
	// Constructed on the thread that will wait.
	explicit BlockingTouch(std::uintptr_t address);
	void touched(HelError error) override;
	HelError wait();

private:
	std::uintptr_t address_;
	Thread *thread_;
	HelError error_ = kHelErrNone;
	std::atomic<std::uint32_t> done_{0}; // a word for HostOperations::wait_word
};

class AddressSpace final : public Object, public MemoryObserver {
public:
	static constexpr ObjectKind kKind = ObjectKind::address_space;

	AddressSpace(Kernel &kernel, VirtualWindow &window);
	~AddressSpace() override;
	// False if physical memory had no frame for the top-level page table.
	bool valid() const { return table_.valid(); }

	// helMapMemory (flags validated by the syscall layer): maps [offset, offset + size) of
	// `view`.
	HelError map(Ref<MemoryView> view, std::size_t offset, std::uintptr_t pointer, std::size_t size,
			std::uint32_t flags, std::uintptr_t &out);
	HelError unmap(std::uintptr_t pointer, std::size_t size);
	// SQ ProtectMemory: new kHelMapProt* bits for a mapped range.
	HelError protect(std::uintptr_t pointer, std::size_t size, std::uint32_t prot);
	// SQ SynchronizeSpace: hands dirty pages of the range to their views (writeback).
	HelError synchronize(std::uintptr_t pointer, std::size_t size);

	// Resolves a fault: makes the page of `address` present for `access` in the page
	// tables. kHelErrNone, kHelErrFault (nothing mapped, or the mapping forbids the
	// access), kHelErrNoMemory, or kTouchPending (retry after `waiter` fires).
	HelError fault(std::uintptr_t address, Access access, TouchWaiter &waiter);
	// Resolves a fault on the calling thread, blocking it while a pager works.
	HelError fault_blocking(std::uintptr_t address, Access access);
	// User code touched `address` directly: fault the page in and mirror it into the host.
	bool resolve_host_fault(std::uintptr_t address, bool write);

	// Copies between a kernel buffer and [address, address + size) of this space, resuming
	// at `done`. With a waiter, faults are resolved and kTouchPending means "retry once it
	// fires"; without one, a page that is not present fails the copy with kTouchPending.
	HelError copy(std::uintptr_t address, void *buffer, std::size_t size, bool to_space,
			std::size_t &done, TouchWaiter *waiter);
	// Copies that need no fault (BounceCopy's direct path) hold copy_lock() shared while they
	// use present_frame(): the direct-map address of the page of `address` if its entry is
	// present (writable for `write`), marked accessed (and dirty); nullptr otherwise. The frame
	// stays valid as long as the lock is held.
	std::shared_mutex &copy_lock() const { return mutex_; }
	std::byte *present_frame(std::uintptr_t address, bool write);
	// Faults [address, address + size) in, blocking the calling thread, then copies.
	HelError copy_blocking(std::uintptr_t address, void *buffer, std::size_t size, bool to_space);

	// The physical address behind `address` (helPointerPhysical).
	HelError physical_of(std::uintptr_t address, sim::PhysicalAddr &out);
	// The (view, offset) behind `address` (futexes key on it); kHelErrFault if unmapped.
	HelError resolve(std::uintptr_t address, Ref<MemoryView> &view, std::size_t &offset);

	bool in_window(std::uintptr_t address, std::size_t size) const {
		return window_.contains(address, size);
	}
	std::size_t mapping_count() const;
	const PageTable &page_table() const { return table_; }

	void for_each_reference(const std::function<void(Object &)> &f) override;

	// MemoryObserver.
	void evict(MemoryView &view, std::size_t offset, std::size_t size) override;
	Object &observer_object() override { return *this; }

private:
	struct Mapping {
		std::size_t size;
		Ref<MemoryView> view;
		std::size_t offset; // in the view, of the mapping's first byte
		std::uint32_t flags;
	};
	using Mappings = std::map<std::uintptr_t, Mapping>;

	Mappings::iterator find_mapping(std::uintptr_t address);
	// Every page of [pointer, pointer + size) lies in some mapping (mutex_ held).
	bool fully_mapped(std::uintptr_t pointer, std::size_t size);
	// Splits the mapping that straddles `address`, if any, so that a mapping starts there.
	void split_at(std::uintptr_t address);
	// Drops the page table entries of [begin, end): dirty pages are reported to their view,
	// mirrored ones leave the host. The mappings stay.
	void drop_pages(std::uintptr_t begin, std::uintptr_t end);
	// Removes [pointer, pointer + size) from the mapping table (splitting mappings it cuts),
	// its pages, and, with `release_window`, its claim on the window.
	void carve(std::uintptr_t pointer, std::size_t size, bool release_window);
	// Maps every page of a new mapping of eagerly mapped memory (contiguous frames).
	void populate(std::uintptr_t address, const Mapping &mapping);

	VirtualWindow &window_;
	PageTable table_;
	mutable std::shared_mutex mutex_; // mapping table and page-table writes; copies read
	Mappings mappings_;
};

} // namespace helsim::kernel
