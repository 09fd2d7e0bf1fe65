// The host window every address space's mappings live in.
//
// A simulated virtual address is the host address: all mappings of all spaces of one kernel
// are placed in one reserved host range (PROT_NONE until a page is mirrored), so user code
// dereferences its mappings directly. Two spaces therefore never map the same address;
// docs/fidelity.md says more. The window also routes host faults in its range to the space
// that owns the address.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "kernel/core/object.hpp"
#include "sim/host.hpp"

namespace helsim::kernel {

class AddressSpace;

class VirtualWindow final : public sim::FaultResolver {
public:
	explicit VirtualWindow(std::size_t size);
	VirtualWindow(const VirtualWindow &) = delete;
	VirtualWindow &operator=(const VirtualWindow &) = delete;
	~VirtualWindow();

	std::uintptr_t base() const { return base_; }
	std::size_t size() const { return size_; }
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

	// The space that owns `address`, if it is still alive.
	Ref<AddressSpace> owner_of(std::uintptr_t address);

	// Host mirror: maps a frame at its simulated address, or puts the PROT_NONE reservation
	// back over a range.
	static void unmirror(std::uintptr_t address, std::size_t size);
	// The host refused to change the mirror (vm.max_map_count reached, say). Going on would
	// leave user code a view of frames that may belong to someone else: stop with a message.
	[[noreturn]] static void host_refused(const char *what, std::uintptr_t address);

	// sim::FaultResolver: user code touched a window address directly.
	bool resolve_host_fault(std::uintptr_t address, bool write) override;
	void describe_unresolved(std::uintptr_t address, bool write, char *buffer,
			std::size_t length) override;

private:
	std::uintptr_t base_ = 0;
	std::size_t size_ = 0;
	std::mutex mutex_;
	std::map<std::uintptr_t, std::pair<std::size_t, AddressSpace *>> used_;
};

} // namespace helsim::kernel
