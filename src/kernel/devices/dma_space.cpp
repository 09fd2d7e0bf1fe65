// helCreateDmaSpace and SQ PopulateSpace.
#include "kernel/devices/dma_space.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

Lookup<AddressSpace> resolve_space_or_dma(Thread &self, HelHandle handle, std::uint32_t rights) {
	if (handle == kHelNullHandle)
		return resolve_space(self, handle, rights);
	Lookup<AddressSpace> result;
	Resolved r;
	if (HelError e = self.universe().lookup(handle, r); e != kHelErrNone) {
		result.error = e;
		return result;
	}
	if (r.object->kind() == ObjectKind::address_space)
		result.object = Ref<AddressSpace>{static_cast<AddressSpace *>(r.object.get())};
	else if (r.object->kind() == ObjectKind::dma_space)
		result.object = static_cast<DmaSpace *>(r.object.get())->space_ref();
	else
		result.error = kHelErrBadDescriptor;
	if (result.error == kHelErrNone && (r.rights & rights) != rights) {
		result.error = kHelErrBadRights;
		result.object = nullptr;
	}
	result.rights = r.rights;
	return result;
}

HelError create_dma_space(Thread &self, HelWord *outs) {
	Ref<AddressSpace> space = self.kernel().create_space();
	if (!space->valid())
		return kHelErrNoMemory;
	auto dma = make_object<DmaSpace>(self.kernel(), std::move(space));
	return attach_new(self, std::move(dma), kDmaSpaceDefaultRights, outs);
}

HelError sq_populate_space(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqPopulateSpace &request, Lookup<DmaSpace> &dma) {
	if (!page_range(request.address, request.length))
		return complete_at_once(self, queue, context, kHelErrIllegalArgs);
	// Faults every page in for writing (a device may write it; read-only mappings for reading),
	// blocking the submitter while a pager provides pages, as a syscall does. Errors: kHelErrFault
	// for a page that nothing maps, kHelErrNoMemory.
	AddressSpace &space = dma.object->space();
	HelError result = kHelErrNone;
	for (std::uintptr_t at = request.address;
			result == kHelErrNone && at < request.address + request.length; at += sim::kPageSize) {
		result = space.fault_blocking(at, Access::write);
		if (result == kHelErrFault) // a read-only mapping is populated for reading
			result = space.fault_blocking(at, Access::read);
	}
	return complete_at_once(self, queue, context, result);
}

} // namespace helsim::kernel
