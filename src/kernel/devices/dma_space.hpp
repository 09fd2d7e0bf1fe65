// DMA spaces (helCreateDmaSpace): thor's NoopDmaSpace, an IOMMU that translates nothing.
// Memory mapped into a DMA space gets an address there, and helPointerPhysical on that address
// names the frame behind it, which is what a device is given; PopulateSpace (SQ 16) makes the
// frames of a range present first.
//
// helsim keeps a DMA space's mappings in an address space no thread runs in: mapping, unmapping
// and faulting are the address space's own code, and DMA addresses come from the machine's
// virtual window like any other mapping (docs/memory.md).
#pragma once

#include "kernel/memory/memory_syscalls.hpp"
#include "kernel/memory/space.hpp"

namespace helsim::kernel {

inline constexpr std::uint32_t kDmaSpaceDefaultRights = kHelRightGrant | kHelRightProvision;

class DmaSpace final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::dma_space;

	DmaSpace(Kernel &kernel, Ref<AddressSpace> space)
	: Object{kernel, ObjectKind::dma_space}, space_{std::move(space)} {}
	const char *describe() const override { return "dma space"; }

	AddressSpace &space() const { return *space_; }
	const Ref<AddressSpace> &space_ref() const { return space_; }

	void for_each_reference(const std::function<void(Object &)> &f) override { f(*space_); }

private:
	Ref<AddressSpace> space_;
};

// The address space behind `handle` for helMapMemory, helUnmapMemory and helPointerPhysical:
// kHelNullHandle (the caller's), an address space, or a DMA space's, with `rights` checked
// against the handle's.
Lookup<AddressSpace> resolve_space_or_dma(Thread &self, HelHandle handle, std::uint32_t rights);

// A DMA space over a new address space, attached with kDmaSpaceDefaultRights (outs[0]).
HelError create_dma_space(Thread &self, HelWord *outs);
HelError sq_populate_space(Thread &, IpcQueue &, std::uintptr_t, const HelSqPopulateSpace &,
		Lookup<DmaSpace> &);

} // namespace helsim::kernel
