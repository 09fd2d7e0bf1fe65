#include "kernel/memory/virtual_window.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "kernel/memory/space.hpp"

namespace helsim::kernel {

VirtualWindow::VirtualWindow(std::size_t size) : size_{size} {
	const sim::HostOperations &host = sim::host_operations();
	void *p = host.reserve(size);
	if (!p)
		throw std::bad_alloc{};
	base_ = reinterpret_cast<std::uintptr_t>(p);
	try {
		host.register_window(base_, size_, this);
	} catch (...) {
		host.release(p, size);
		throw;
	}
}

VirtualWindow::~VirtualWindow() {
	const sim::HostOperations &host = sim::host_operations();
	host.unregister_window(base_);
	host.release(reinterpret_cast<void *>(base_), size_);
}

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
		for (auto it = used_.end(); it != used_.begin();) {
			--it;
			if (cursor - (it->first + it->second.first) >= size)
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

void VirtualWindow::unmirror(std::uintptr_t address, std::size_t size) {
	// Replacing a mapping inside our own reservation fails only when the host runs out of
	// mapping slots.
	if (!sim::host_operations().reset(reinterpret_cast<void *>(address), size))
		host_refused("unmirror a range", address);
}

void VirtualWindow::host_refused(const char *what, std::uintptr_t address) {
	std::fprintf(stderr,
			"helsim: the host refused to %s at %#lx (%s); raise vm.max_map_count or mirror "
			"fewer pages at once\n",
			what, static_cast<unsigned long>(address), std::strerror(errno));
	std::abort();
}

Ref<AddressSpace> VirtualWindow::owner_of(std::uintptr_t address) {
	std::lock_guard lock{mutex_};
	auto it = used_.upper_bound(address);
	if (it == used_.begin())
		return nullptr;
	--it;
	if (address - it->first >= it->second.first || !it->second.second->try_ref())
		return nullptr;
	return Ref<AddressSpace>::adopt(it->second.second);
}

bool VirtualWindow::resolve_host_fault(std::uintptr_t address, bool write) {
	Ref<AddressSpace> space = owner_of(address);
	return space && space->resolve_host_fault(address, write);
}

void VirtualWindow::describe_unresolved(std::uintptr_t, bool write, char *buffer,
		std::size_t length) {
	// Signal context: no locks, no allocation, so no lookup of the owner either.
	const char *text = write ? "no mapping of this space allows the write, or its memory "
							   "could not be provided (kHelErrFault / kHelErrNoMemory)"
							 : "no mapping of this space allows the read, or its memory could "
							   "not be provided (kHelErrFault / kHelErrNoMemory)";
	std::size_t i = 0;
	for (; length && i + 1 < length && text[i]; ++i)
		buffer[i] = text[i];
	if (length)
		buffer[i] = '\0';
}

} // namespace helsim::kernel
