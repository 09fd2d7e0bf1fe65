// helCreateSliceView: the entry point that makes memory slices.
#include "kernel/memory/memory_slice.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/memory/memory_syscalls.hpp"

namespace helsim::kernel {

HelError sys_create_slice_view(Thread &self, const HelWord *args, HelWord *outs) {
	auto offset = arg<std::uintptr_t>(args, 1);
	auto size = arg<std::size_t>(args, 2);
	auto flags = arg<std::uint32_t>(args, 3);
	// Checked before the handle, in thor's order.
	if (!page_aligned(offset) || !page_aligned(size))
		return kHelErrIllegalArgs;
	if (flags & ~std::uint32_t{kHelSliceCacheWriteCombine})
		return kHelErrIllegalArgs;
	auto view = resolve_view(self, arg<HelHandle>(args, 0), kHelRightAssign);
	if (!view)
		return view.error;
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
