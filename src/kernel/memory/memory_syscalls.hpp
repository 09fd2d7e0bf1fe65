// Entry points of the memory syscalls and SQ operations. The tables in syscalls.cpp list
// them; each is implemented next to the object it works on.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"
#include "kernel/core/object.hpp"
#include "kernel/core/universe.hpp"

namespace helsim::kernel {

class Thread;
class IpcQueue;
class MemoryView;
class AddressSpace;

// An address space handle, kHelNullHandle meaning the caller's.
Lookup<AddressSpace> resolve_space(Thread &self, HelHandle handle, std::uint32_t rights);
// A memory view handle (queues and slices are not views).
Lookup<MemoryView> resolve_view(Thread &self, HelHandle handle, std::uint32_t rights);

// memory_syscalls.cpp: the SQ operations on address spaces and views.
HelError sq_protect_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqProtectMemory &,
		Lookup<AddressSpace> &);
HelError sq_synchronize_space(Thread &, IpcQueue &, std::uintptr_t, const HelSqSynchronizeSpace &,
		Lookup<AddressSpace> &);
HelError sq_read_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqReadMemory &);
HelError sq_write_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqWriteMemory &);
HelError sq_resize_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqResizeMemory &,
		Lookup<MemoryView> &);

// cow_memory.cpp: copy-on-write memory.
// helCopyOnWrite(memory, offset, size), decoded: the source (none: kHelZeroMemory), the window
// inside it and the rights of the copy.
struct CopyOnWriteRequest {
	Ref<MemoryView> source;
	std::uintptr_t offset = 0;
	std::size_t size = 0;
	std::uint32_t rights = 0;
};
HelError decode_copy_on_write(Thread &self, const HelWord *args, CopyOnWriteRequest &out);
HelError copy_on_write(Thread &self, CopyOnWriteRequest &request, HelWord *outs);
HelError sq_fork_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqForkMemory &,
		Lookup<MemoryView> &);

// indirect_memory.cpp and memory_slice.cpp: indirect memory and slices.
HelError create_indirect_memory(Thread &self, std::size_t num_slots, HelWord *outs);
// helAlterMemoryIndirection(indirect, slot, memory, offset, size), decoded: the indirect view,
// and the window of a view (or of a slice's view) that slot `slot` is to show.
struct IndirectionRequest {
	Ref<MemoryView> indirect; // an IndirectMemory
	std::size_t slot = 0;
	Ref<MemoryView> view;
	std::uintptr_t offset = 0;
	std::size_t size = 0;
};
HelError decode_indirection(Thread &self, const HelWord *args, IndirectionRequest &out);
HelError alter_memory_indirection(Thread &self, IndirectionRequest &request);
HelError create_slice_view(Thread &self, Lookup<MemoryView> &view, std::uintptr_t offset,
		std::size_t size, std::uint32_t flags, HelWord *outs);

// managed_memory.cpp and memory_lock.cpp: the user-space pager protocol and memory locks.
HelError attach_managed_memory(Thread &self, std::size_t size, std::uint32_t flags, HelWord *outs);
HelError update_memory(Thread &self, MemoryView &view, int type, std::uintptr_t offset,
		std::size_t length);
HelError sq_manage_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqManageMemory &,
		Lookup<MemoryView> &);
HelError sq_lock_memory_view(Thread &, IpcQueue &, std::uintptr_t, const HelSqLockMemoryView &,
		Lookup<MemoryView> &);
HelError sq_writeback_fence(Thread &, IpcQueue &, std::uintptr_t, const HelSqWritebackFence &,
		Lookup<MemoryView> &);
HelError sq_invalidate_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqInvalidateMemory &,
		Lookup<MemoryView> &);

// The memory syscalls and SQ opcodes: memory objects, address spaces, the pager protocol, swap.
// Written into the kernel's tables at its construction.
void register_memory_calls(CallRegistry &calls);

} // namespace helsim::kernel
