// helCreateSliceView: the entry point that makes memory slices.
#include "kernel/memory/memory_slice.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {

HelError create_slice_view(Thread &self, Lookup<MemoryView> &view, std::uintptr_t offset,
		std::size_t size, std::uint32_t flags, HelWord *outs) {
	// thor does not check the window here (mappings of it fault later); helsim refuses it
	// with helMapMemory's error for a range past the view.
	if (offset > view.object->size() || size > view.object->size() - offset)
		return kHelErrBufferTooSmall;
	// A slice grants no more than its view handle.
	return attach_new(self,
			make_object<MemorySlice>(self.kernel(), std::move(view.object), offset, size, flags),
			view.rights & kSliceDefaultRights, outs);
}

} // namespace helsim::kernel
