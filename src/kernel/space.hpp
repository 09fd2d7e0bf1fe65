// Address spaces and the host window their mappings live in.
//
// A simulated virtual address is the host address: every mapping of every space is placed in
// one reserved host window (PROT_NONE until mapped), so user code dereferences its mappings
// directly. Two spaces therefore never map the same address; docs/fidelity.md says more.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "../../sim/physical_memory.hpp"
#include "object.hpp"

namespace helsim::kernel {

inline constexpr std::uint32_t kSpaceDefaultRights =
		kHelRightGrant | kHelRightRead | kHelRightWrite | kHelRightAssign | kHelRightProvision;

// Objects that can be mapped: a page-aligned run of contiguous simulated physical memory.
class Mappable {
public:
	virtual ~Mappable() = default;
	virtual sim::PhysicalAddr physical_base() const = 0;
	virtual std::size_t mappable_size() const = 0;
};

class AddressSpace;

// The host window shared by every space of one kernel.
class VirtualWindow {
public:
	explicit VirtualWindow(std::size_t size);
	~VirtualWindow();

	bool contains(std::uintptr_t address, std::size_t size) const {
		return address >= base_ && size <= size_ && address - base_ <= size_ - size;
	}
	// Claims a free range: at `hint` if it is free, else top-down (or bottom-up) first fit.
	// Returns 0 when nothing fits.
	std::uintptr_t claim(std::uintptr_t hint, std::size_t size, bool prefer_bottom,
			AddressSpace *owner);
	// Claims exactly [address, address + size) for `owner`, taking over (and splitting) the
	// owner's own ranges there. False, changing nothing, if another space owns any part.
	bool claim_fixed(std::uintptr_t address, std::size_t size, AddressSpace *owner);
	void release(std::uintptr_t address, std::size_t size);
	// Puts the PROT_NONE reservation back over a range.
	void unmap_host(std::uintptr_t address, std::size_t size);

private:
	std::uintptr_t base_ = 0;
	std::size_t size_ = 0;
	std::mutex mutex_;
	std::map<std::uintptr_t, std::pair<std::size_t, AddressSpace *>> used_;
};

class AddressSpace final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::address_space;

	AddressSpace(Kernel &kernel, VirtualWindow &window);
	~AddressSpace() override;

	// helMapMemory semantics (flags already validated by the syscall layer).
	HelError map(Ref<Object> owner, Mappable &memory, std::uintptr_t pointer, std::size_t offset,
			std::size_t size, std::uint32_t flags, std::uintptr_t &out);
	HelError unmap(std::uintptr_t pointer, std::size_t size);

	std::size_t mapping_count() const;
	void for_each_reference(const std::function<void(Object &)> &f) override;

private:
	struct Mapping {
		std::size_t size;
		Ref<Object> owner;
		sim::PhysicalAddr physical; // of the first byte
		std::uint32_t flags;
	};
	// Removes [pointer, pointer+size) from the mapping table and the host, splitting mappings
	// it cuts; with `release_window`, also gives the range back to the window.
	void carve(std::uintptr_t pointer, std::size_t size, bool release_window);

	VirtualWindow &window_;
	mutable std::mutex mutex_;
	std::map<std::uintptr_t, Mapping> mappings_;
};

} // namespace helsim::kernel
