#include "kernel/memory/space.hpp"

#include <algorithm>
#include <vector>

#include "kernel/core/kernel.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {
constexpr std::uintptr_t kPageMask = sim::kPageSize - 1;
constexpr std::uint32_t kProtMask = kHelMapProtRead | kHelMapProtWrite | kHelMapProtExecute;

bool allows(std::uint32_t flags, Access access) {
	switch (access) {
	case Access::read: return flags & kProtMask; // W implies R, X implies R
	case Access::write: return flags & kHelMapProtWrite;
	case Access::execute: return flags & kHelMapProtExecute;
	}
	return false;
}

// Collects runs of mirrored pages so each run leaves the host in one call.
class Unmirror {
public:
	void add(std::uintptr_t page) {
		if (end_ != page) {
			flush();
			begin_ = page;
		}
		end_ = page + sim::kPageSize;
	}
	void flush() {
		if (end_ != begin_)
			VirtualWindow::unmirror(begin_, end_ - begin_);
		begin_ = end_ = 0;
	}
	~Unmirror() { flush(); }

private:
	std::uintptr_t begin_ = 0, end_ = 0;
};
} // namespace

// ---------------------------------------------------------------- waiting for a pager

void BlockingTouch::touched(HelError error) {
	Thread *thread = thread_;
	error_ = error;
	done_.store(1, std::memory_order_release);
	// `this` may be gone from here on: the waiter can see done_ and return at once.
	if (thread)
		thread->wake();
	else
		sim::host_operations().wake_word(done_);
}

BlockingTouch::BlockingTouch(std::uintptr_t address)
: address_{address}, thread_{Thread::current()} {}

HelError BlockingTouch::wait() {
	while (!done_.load(std::memory_order_acquire)) {
		if (thread_)
			thread_->block({"pager", address_}, sim::kNoDeadline);
		else
			sim::host_operations().wait_word(done_, 0);
	}
	return error_;
}

// ---------------------------------------------------------------- the space

AddressSpace::AddressSpace(Kernel &kernel, VirtualWindow &window)
: Object{kernel, ObjectKind::address_space}, window_{window},
  table_{kernel.host().physical_memory()} {}

AddressSpace::~AddressSpace() {
	for (auto &[address, mapping] : mappings_) {
		drop_pages(address, address + mapping.size); // dirty pages still go to their views
		window_.release(address, mapping.size);
		mapping.view->remove_observer(*this);
	}
}

void AddressSpace::for_each_reference(const std::function<void(Object &)> &f) {
	std::shared_lock lock{mutex_};
	for (auto &[address, mapping] : mappings_)
		f(*mapping.view);
}

std::size_t AddressSpace::mapping_count() const {
	std::shared_lock lock{mutex_};
	return mappings_.size();
}

AddressSpace::Mappings::iterator AddressSpace::find_mapping(std::uintptr_t address) {
	auto it = mappings_.upper_bound(address);
	if (it == mappings_.begin())
		return mappings_.end();
	--it;
	return address - it->first < it->second.size ? it : mappings_.end();
}

void AddressSpace::split_at(std::uintptr_t address) {
	auto it = find_mapping(address);
	if (it == mappings_.end() || it->first == address)
		return;
	Mapping &left = it->second;
	std::size_t cut = address - it->first;
	mappings_.emplace(address, Mapping{left.size - cut, left.view, left.offset + cut, left.flags});
	left.size = cut;
	left.view->add_observer(*this); // one registration per mapping
}

void AddressSpace::drop_pages(std::uintptr_t begin, std::uintptr_t end) {
	Unmirror unmirror;
	table_.for_each_entry(begin, end, [&](std::uintptr_t page, std::uint64_t *pte) {
		std::uint64_t value = pte_load(pte);
		if (!value)
			return;
		pte_store(pte, 0);
		if (value & kPteDirty) {
			auto it = find_mapping(page);
			if (it != mappings_.end())
				it->second.view->mark_dirty(it->second.offset + (page - it->first));
		}
		if (value & kPteMirrored)
			unmirror.add(page);
	});
}

void AddressSpace::carve(std::uintptr_t pointer, std::size_t size, bool release_window) {
	std::uintptr_t end = pointer + size;
	split_at(pointer);
	split_at(end);
	drop_pages(pointer, end);
	for (auto it = mappings_.lower_bound(pointer); it != mappings_.end() && it->first < end;) {
		if (release_window)
			window_.release(it->first, it->second.size);
		it->second.view->remove_observer(*this);
		it = mappings_.erase(it);
	}
}

HelError AddressSpace::map(Ref<MemoryView> view, std::size_t offset, std::uintptr_t pointer,
		std::size_t size, std::uint32_t flags, std::uintptr_t &out) {
	if (offset > view->size() || size > view->size() - offset)
		return kHelErrBufferTooSmall;
	std::unique_lock lock{mutex_};
	std::uintptr_t address;
	if (flags & (kHelMapFixed | kHelMapFixedNoReplace)) {
		if (!window_.contains(pointer, size))
			return kHelErrIllegalArgs;
		if (flags & kHelMapFixedNoReplace) {
			auto next = mappings_.lower_bound(pointer);
			bool overlap = next != mappings_.end() && next->first < pointer + size;
			if (next != mappings_.begin()) {
				auto prev = std::prev(next);
				overlap |= prev->first + prev->second.size > pointer;
			}
			if (overlap)
				return kHelErrAlreadyExists;
		}
		// Claim first: a refused mapping must leave the space as it was.
		if (!window_.claim_fixed(pointer, size, this))
			return kHelErrAlreadyExists; // another space owns part of it; see docs/fidelity.md
		carve(pointer, size, false);
		address = pointer;
	} else {
		address = window_.claim(pointer, size, flags & kHelMapPreferBottom, this);
		if (!address)
			return kHelErrNoMemory;
	}
	view->add_observer(*this);
	auto [it, inserted] = mappings_.emplace(address, Mapping{size, std::move(view), offset, flags});
	(void)inserted;
	if (it->second.view->eagerly_mapped())
		populate(address, it->second);
	out = address;
	return kHelErrNone;
}

void AddressSpace::populate(std::uintptr_t address, const Mapping &mapping) {
	auto first = mapping.view->peek(mapping.offset, kFetchMutable);
	if (!(mapping.flags & kProtMask) || !first)
		return; // faults will do
	bool writable = mapping.flags & kHelMapProtWrite;
	bool executable = mapping.flags & kHelMapProtExecute;
	// Writable pages start dirty: the host mirror is writable from the start, so the first
	// write could not be seen.
	std::uint64_t bits = kPtePresent | kPteUser | kPteAccessed | kPteMirrored |
			(writable ? kPteWritable | kPteDirty : 0) | (executable ? 0 : kPteNoExecute);
	for (std::size_t at = 0; at < mapping.size; at += sim::kPageSize) {
		std::uint64_t *pte = table_.find_or_create(address + at);
		if (!pte) {
			drop_pages(address, address + at); // out of frames for tables: fault lazily
			return;
		}
		pte_store(pte, (*first + at) | bits);
	}
	if (!kernel().host().physical_memory().map(reinterpret_cast<void *>(address), *first,
				mapping.size, {.write = writable, .execute = executable}))
		VirtualWindow::host_refused("mirror a mapping", address);
}

bool AddressSpace::fully_mapped(std::uintptr_t pointer, std::size_t size) {
	for (std::uintptr_t a = pointer; a < pointer + size;) {
		auto it = find_mapping(a);
		if (it == mappings_.end())
			return false;
		a = it->first + it->second.size;
	}
	return true;
}

HelError AddressSpace::unmap(std::uintptr_t pointer, std::size_t size) {
	std::unique_lock lock{mutex_};
	// helsim requires the range to be mapped (older thor did; see docs/fidelity.md).
	if (!fully_mapped(pointer, size))
		return kHelErrIllegalArgs;
	carve(pointer, size, true);
	return kHelErrNone;
}

HelError AddressSpace::protect(std::uintptr_t pointer, std::size_t size, std::uint32_t prot) {
	std::unique_lock lock{mutex_};
	if (!fully_mapped(pointer, size))
		return kHelErrIllegalArgs;
	std::uintptr_t end = pointer + size;
	split_at(pointer);
	split_at(end);
	for (auto it = mappings_.lower_bound(pointer); it != mappings_.end() && it->first < end; ++it)
		it->second.flags = (it->second.flags & ~kProtMask) | prot;
	// Pages fault in again under the new protection.
	drop_pages(pointer, end);
	return kHelErrNone;
}

HelError AddressSpace::synchronize(std::uintptr_t pointer, std::size_t size) {
	std::unique_lock lock{mutex_};
	Unmirror unmirror;
	std::uintptr_t end = pointer + size;
	// Only the mapped parts of the range: it may span all of user space, and the lock is held
	// throughout.
	auto it = mappings_.upper_bound(pointer);
	if (it != mappings_.begin())
		--it;
	for (; it != mappings_.end() && it->first < end; ++it) {
		std::uintptr_t start = it->first;
		const Mapping &mapping = it->second;
		std::uintptr_t lo = std::max(pointer, start);
		std::uintptr_t hi = std::min(end, start + mapping.size);
		if (lo >= hi)
			continue;
		table_.for_each_entry(lo, hi, [&](std::uintptr_t page, std::uint64_t *pte) {
			std::uint64_t value = pte_load(pte);
			if (!(value & kPteDirty))
				return;
			// Clean again: a later write must fault (through a read-only host mirror) to set
			// the dirty bit anew.
			if (value & kPteMirrored)
				unmirror.add(page);
			pte_store(pte, value & ~(kPteDirty | kPteMirrored));
			mapping.view->mark_dirty(mapping.offset + (page - start));
		});
	}
	return kHelErrNone;
}

void AddressSpace::evict(MemoryView &view, std::size_t offset, std::size_t size) {
	std::unique_lock lock{mutex_};
	Unmirror unmirror;
	for (auto &[start, mapping] : mappings_) {
		if (mapping.view.get() != &view)
			continue;
		std::size_t lo = std::max(offset, mapping.offset);
		std::size_t hi = std::min(offset + size, mapping.offset + mapping.size);
		if (lo >= hi)
			continue;
		// An evicted page's contents are gone or belong to someone else now: its dirty bit
		// is the view's business, not a writeback.
		table_.for_each_entry(start + (lo - mapping.offset), start + (hi - mapping.offset),
				[&](std::uintptr_t page, std::uint64_t *pte) {
					std::uint64_t value = pte_load(pte);
					pte_store(pte, 0);
					if (value & kPteMirrored)
						unmirror.add(page);
				});
	}
}

// ---------------------------------------------------------------- faults

HelError AddressSpace::fault(std::uintptr_t address, Access access, TouchWaiter &waiter) {
	std::uintptr_t page = address & ~kPageMask;
	bool write = access == Access::write;
	kernel().kernel_faults.fetch_add(1, std::memory_order_relaxed);
	if (auto *tracer = kernel().host().tracer()) [[unlikely]]
		tracer->page_fault("kernel", address - window_.base(), write);
	for (;;) {
		Mapping seen;
		{
			std::shared_lock lock{mutex_};
			auto it = find_mapping(page);
			if (it == mappings_.end() || !allows(it->second.flags, access))
				return kHelErrFault;
			seen = it->second;
			seen.offset += page - it->first;
		}
		if (seen.offset >= seen.view->size())
			return kHelErrFault;
		unsigned fetch = (write ? kFetchMutable : 0u) |
				(seen.flags & kHelMapDontRequireBacking ? kFetchNoBacking : 0u);
		// The view works without our lock: a copy-on-write copy evicts the page from every
		// mapping, this space's included, and a pager may take a while.
		if (!seen.view->peek(seen.offset, fetch))
			if (HelError e = seen.view->touch(seen.offset, fetch, waiter); e != kHelErrNone)
				return e;
		std::unique_lock lock{mutex_};
		auto it = find_mapping(page);
		if (it == mappings_.end() || it->second.view.get() != seen.view.get() ||
				it->second.offset + (page - it->first) != seen.offset ||
				it->second.flags != seen.flags)
			continue; // the mapping changed meanwhile: decide again
		auto frame = seen.view->peek(seen.offset, fetch);
		if (!frame)
			continue; // evicted again before we got here
		std::uint64_t *pte = table_.find_or_create(page);
		if (!pte)
			return kHelErrNoMemory;
		bool writable = (seen.flags & kHelMapProtWrite) &&
				(write || seen.view->peek(seen.offset, kFetchMutable) == frame);
		std::uint64_t value = *frame | kPtePresent | kPteUser | kPteAccessed;
		if (writable)
			value |= kPteWritable;
		if (write)
			value |= kPteDirty;
		if (!(seen.flags & kHelMapProtExecute))
			value |= kPteNoExecute;
		std::uint64_t old = pte_load(pte);
		if ((old & kPtePresent) && (old & kPteAddress) == *frame)
			value |= old & (kPteDirty | kPteMirrored);
		else if (old & kPteMirrored)
			VirtualWindow::unmirror(page, sim::kPageSize); // the host still shows the old frame
		pte_store(pte, value);
		kernel().host().charge(kernel().config().costs.page_fault_ns); // a resolved fault
		return kHelErrNone;
	}
}

HelError AddressSpace::fault_blocking(std::uintptr_t address, Access access) {
	for (;;) {
		BlockingTouch waiter{address};
		HelError e = fault(address, access, waiter);
		if (e != kTouchPending)
			return e;
		if (e = waiter.wait(); e != kHelErrNone)
			return e;
	}
}

bool AddressSpace::resolve_host_fault(std::uintptr_t address, bool write) {
	std::uintptr_t page = address & ~kPageMask;
	kernel().host_faults.fetch_add(1, std::memory_order_relaxed);
	if (auto *tracer = kernel().host().tracer()) [[unlikely]]
		tracer->page_fault("host", address - window_.base(), write);
	for (;;) {
		if (fault_blocking(page, write ? Access::write : Access::read) != kHelErrNone)
			return false;
		std::unique_lock lock{mutex_};
		std::uint64_t *pte = table_.find(page);
		std::uint64_t value = pte ? pte_load(pte) : 0;
		if (!(value & kPtePresent) || (write && !(value & kPteWritable)))
			continue; // evicted or replaced meanwhile: fault again
		// Read-only until the dirty bit is set, so the first write is seen.
		sim::PhysicalMemory::Access access{
				.write = (value & kPteWritable) && (value & kPteDirty),
				.execute = !(value & kPteNoExecute),
		};
		if (!kernel().host().physical_memory().map(reinterpret_cast<void *>(page),
					value & kPteAddress, sim::kPageSize, access))
			VirtualWindow::host_refused("mirror a page", page);
		pte_set_bits(pte, kPteMirrored);
		return true;
	}
}

// ---------------------------------------------------------------- kernel access to user memory

HelError AddressSpace::copy(std::uintptr_t address, void *buffer, std::size_t size, bool to_space,
		std::size_t &done, TouchWaiter *waiter) {
	if (!window_.contains(address, size))
		return kHelErrFault;
	sim::Host &host = kernel().host();
	const CostModel &costs = kernel().config().costs;
	auto *bytes = static_cast<std::byte *>(buffer);
	while (done < size) {
		{
			// Shared: mappings cannot change (and frames cannot be freed under us) while
			// we copy, but copies run in parallel.
			std::shared_lock lock{mutex_};
			while (done < size) {
				std::uintptr_t at = address + done;
				std::byte *frame = present_frame(at, to_space);
				if (!frame)
					break;
				std::size_t chunk = std::min(size - done, sim::kPageSize - (at & kPageMask));
				if (to_space)
					user_memcpy(frame, bytes + done, chunk);
				else
					user_memcpy(bytes + done, frame, chunk);
				// The cost model: one page-table walk and the bytes of this page.
				host.charge_ps(costs.page_walk_ns * 1000 + chunk * costs.copy_ps_per_byte);
				done += chunk;
			}
		}
		if (done == size)
			break;
		if (!waiter)
			return kTouchPending;
		if (HelError e = fault(address + done, to_space ? Access::write : Access::read, *waiter);
				e != kHelErrNone)
			return e;
	}
	return kHelErrNone;
}

std::byte *AddressSpace::present_frame(std::uintptr_t address, bool write) {
	std::uint64_t need = kPtePresent | (write ? kPteWritable : 0);
	std::uint64_t set = kPteAccessed | (write ? kPteDirty : 0);
	std::uint64_t *pte = table_.find(address);
	std::uint64_t value = pte ? pte_load(pte) : 0;
	if ((value & need) != need)
		return nullptr;
	if ((value & set) != set)
		pte_set_bits(pte, set);
	return static_cast<std::byte *>(table_.memory().direct(value & kPteAddress)) +
			(address & kPageMask);
}

HelError AddressSpace::copy_blocking(std::uintptr_t address, void *buffer, std::size_t size,
		bool to_space) {
	std::size_t done = 0;
	for (;;) {
		BlockingTouch waiter{address + done};
		HelError e = copy(address, buffer, size, to_space, done, &waiter);
		if (e != kTouchPending)
			return e;
		if (e = waiter.wait(); e != kHelErrNone)
			return e;
	}
}

HelError AddressSpace::physical_of(std::uintptr_t address, sim::PhysicalAddr &out) {
	for (;;) {
		if (HelError e = fault_blocking(address, Access::read); e != kHelErrNone)
			return e;
		std::shared_lock lock{mutex_};
		std::uint64_t *pte = table_.find(address);
		std::uint64_t value = pte ? pte_load(pte) : 0;
		if (value & kPtePresent) {
			out = (value & kPteAddress) | (address & kPageMask);
			return kHelErrNone;
		}
	}
}

HelError AddressSpace::resolve(std::uintptr_t address, Ref<MemoryView> &view, std::size_t &offset) {
	std::shared_lock lock{mutex_};
	auto it = find_mapping(address);
	if (it == mappings_.end())
		return kHelErrFault;
	view = it->second.view;
	offset = it->second.offset + (address - it->first);
	return kHelErrNone;
}

} // namespace helsim::kernel
