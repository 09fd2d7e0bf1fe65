#include "space.hpp"

#include <sys/mman.h>

#include <new>
#include <vector>

#include "kernel.hpp"

namespace helsim::kernel {
namespace {
int host_prot(std::uint32_t flags) {
	int prot = PROT_NONE;
	// Managarm upgrades W to RW and X to RX.
	if (flags & (kHelMapProtRead | kHelMapProtWrite | kHelMapProtExecute))
		prot |= PROT_READ;
	if (flags & kHelMapProtWrite)
		prot |= PROT_WRITE;
	if (flags & kHelMapProtExecute)
		prot |= PROT_EXEC;
	return prot;
}
} // namespace

VirtualWindow::VirtualWindow(std::size_t size) : size_{size} {
	void *p = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		throw std::bad_alloc{};
	base_ = reinterpret_cast<std::uintptr_t>(p);
}

VirtualWindow::~VirtualWindow() { munmap(reinterpret_cast<void *>(base_), size_); }

std::uintptr_t VirtualWindow::claim(std::uintptr_t hint, std::size_t size, bool prefer_bottom,
		AddressSpace *owner) {
	std::lock_guard lock{mutex_};
	auto is_free = [&](std::uintptr_t a) {
		if (!contains(a, size))
			return false;
		auto next = used_.lower_bound(a);
		if (next != used_.end() && next->first < a + size)
			return false;
		if (next != used_.begin()) {
			auto prev = std::prev(next);
			if (prev->first + prev->second.first > a)
				return false;
		}
		return true;
	};
	std::uintptr_t found = 0;
	if (hint && is_free(hint)) {
		found = hint;
	} else if (prefer_bottom) {
		std::uintptr_t cursor = base_;
		for (auto &[start, range] : used_) {
			if (start - cursor >= size)
				break;
			cursor = start + range.first;
		}
		if (contains(cursor, size))
			found = cursor;
	} else {
		std::uintptr_t cursor = base_ + size_;
		for (auto it = used_.rbegin(); it != used_.rend(); ++it) {
			std::uintptr_t end = it->first + it->second.first;
			if (cursor - end >= size)
				break;
			cursor = it->first;
		}
		if (cursor - base_ >= size)
			found = cursor - size;
	}
	if (found)
		used_.emplace(found, std::pair{size, owner});
	return found;
}

bool VirtualWindow::claim_fixed(std::uintptr_t address, std::size_t size, AddressSpace *owner) {
	std::lock_guard lock{mutex_};
	if (!contains(address, size))
		return false;
	std::uintptr_t end = address + size;
	auto first = used_.lower_bound(address);
	if (first != used_.begin() &&
			std::prev(first)->first + std::prev(first)->second.first > address)
		--first;
	for (auto it = first; it != used_.end() && it->first < end; ++it)
		if (it->second.second != owner)
			return false;
	// Only the owner's ranges overlap: trim them around the new one.
	std::vector<std::pair<std::uintptr_t, std::size_t>> remainders;
	while (first != used_.end() && first->first < end) {
		auto [start, range] = *first;
		std::uintptr_t range_end = start + range.first;
		first = used_.erase(first);
		if (start < address)
			remainders.emplace_back(start, address - start);
		if (range_end > end)
			remainders.emplace_back(end, range_end - end);
	}
	for (auto [start, length] : remainders)
		used_.emplace(start, std::pair{length, owner});
	used_.emplace(address, std::pair{size, owner});
	return true;
}

void VirtualWindow::release(std::uintptr_t address, std::size_t size) {
	std::lock_guard lock{mutex_};
	// Ranges are released exactly as the space's mapping table describes them; a carve may
	// release part of a claimed range, so split the claim accordingly.
	auto it = used_.upper_bound(address);
	if (it == used_.begin())
		return;
	--it;
	auto [start, range] = *it;
	if (start + range.first <= address)
		return;
	used_.erase(it);
	if (start < address)
		used_.emplace(start, std::pair{address - start, range.second});
	if (address + size < start + range.first)
		used_.emplace(address + size,
				std::pair{start + range.first - address - size, range.second});
}

void VirtualWindow::unmap_host(std::uintptr_t address, std::size_t size) {
	// Replacing a mapping inside our own reservation cannot fail short of the host running
	// out of mapping slots; the range then simply stays mapped until the window goes.
	(void)mmap(reinterpret_cast<void *>(address), size, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
}

AddressSpace::AddressSpace(Kernel &kernel, VirtualWindow &window)
: Object{kernel, ObjectKind::address_space}, window_{window} {}

AddressSpace::~AddressSpace() {
	for (auto &[address, mapping] : mappings_) {
		window_.unmap_host(address, mapping.size);
		window_.release(address, mapping.size);
	}
}

void AddressSpace::for_each_reference(const std::function<void(Object &)> &f) {
	std::lock_guard lock{mutex_};
	for (auto &[address, mapping] : mappings_)
		f(*mapping.owner);
}

std::size_t AddressSpace::mapping_count() const {
	std::lock_guard lock{mutex_};
	return mappings_.size();
}

HelError AddressSpace::map(Ref<Object> owner, Mappable &memory, std::uintptr_t pointer,
		std::size_t offset, std::size_t size, std::uint32_t flags, std::uintptr_t &out) {
	if (offset > memory.mappable_size() || size > memory.mappable_size() - offset)
		return kHelErrBufferTooSmall;
	std::lock_guard lock{mutex_};
	std::uintptr_t address;
	if (flags & (kHelMapFixed | kHelMapFixedNoReplace)) {
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
		if (!window_.contains(pointer, size))
			return kHelErrIllegalArgs;
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
	sim::PhysicalAddr physical = memory.physical_base() + offset;
	if (!kernel().host().physical_memory().map(reinterpret_cast<void *>(address), physical, size,
				host_prot(flags))) {
		window_.release(address, size);
		return kHelErrNoMemory;
	}
	mappings_.emplace(address, Mapping{size, std::move(owner), physical, flags});
	out = address;
	return kHelErrNone;
}

void AddressSpace::carve(std::uintptr_t pointer, std::size_t size, bool release_window) {
	std::uintptr_t end = pointer + size;
	auto it = mappings_.lower_bound(pointer);
	if (it != mappings_.begin() && std::prev(it)->first + std::prev(it)->second.size > pointer)
		--it;
	std::vector<std::pair<std::uintptr_t, Mapping>> keep;
	while (it != mappings_.end() && it->first < end) {
		auto [start, mapping] = *it;
		std::uintptr_t mapping_end = start + mapping.size;
		it = mappings_.erase(it);
		std::uintptr_t cut_start = std::max(start, pointer);
		std::uintptr_t cut_end = std::min(mapping_end, end);
		window_.unmap_host(cut_start, cut_end - cut_start);
		if (release_window)
			window_.release(cut_start, cut_end - cut_start);
		if (start < pointer)
			keep.emplace_back(start,
					Mapping{pointer - start, mapping.owner, mapping.physical, mapping.flags});
		if (mapping_end > end)
			keep.emplace_back(end,
					Mapping{mapping_end - end, mapping.owner, mapping.physical + (end - start),
							mapping.flags});
	}
	for (auto &entry : keep)
		mappings_.emplace(std::move(entry));
}

HelError AddressSpace::unmap(std::uintptr_t pointer, std::size_t size) {
	std::lock_guard lock{mutex_};
	// Managarm requires the range to be mapped; unmapping a hole is an error.
	auto it = mappings_.upper_bound(pointer);
	if (it == mappings_.begin())
		return kHelErrIllegalArgs;
	--it;
	if (it->first + it->second.size < pointer + size)
		return kHelErrIllegalArgs;
	carve(pointer, size, true);
	return kHelErrNone;
}

} // namespace helsim::kernel
