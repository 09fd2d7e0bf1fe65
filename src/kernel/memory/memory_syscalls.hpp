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

// memory_syscalls.cpp: the 2022 helSubmit* memory calls, on the SQ operations' code.
HelError sys_legacy_protect_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_synchronize_space(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_read_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_write_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_manage_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_lock_memory_view(Thread &self, const HelWord *args, HelWord *outs);

// memory_syscalls.cpp: memory objects and address spaces.
HelError sys_allocate_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_create_space(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_map_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_unmap_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_memory_info(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_pointer_physical(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_loadahead(Thread &self, const HelWord *args, HelWord *outs);
HelError sq_protect_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqProtectMemory &,
		Lookup<AddressSpace> &);
HelError sq_synchronize_space(Thread &, IpcQueue &, std::uintptr_t, const HelSqSynchronizeSpace &,
		Lookup<AddressSpace> &);
HelError sq_read_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqReadMemory &);
HelError sq_write_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqWriteMemory &);
HelError sq_resize_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqResizeMemory &,
		Lookup<MemoryView> &);

// cow_memory.cpp: copy-on-write memory.
HelError sys_copy_on_write(Thread &self, const HelWord *args, HelWord *outs);
HelError sq_fork_memory(Thread &, IpcQueue &, std::uintptr_t, const HelSqForkMemory &,
		Lookup<MemoryView> &);

// indirect_memory.cpp and memory_slice.cpp: indirect memory and slices.
HelError sys_create_indirect_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_alter_memory_indirection(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_create_slice_view(Thread &self, const HelWord *args, HelWord *outs);

// managed_memory.cpp and memory_lock.cpp: the user-space pager protocol and memory locks.
HelError sys_create_managed_memory(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_update_memory(Thread &self, const HelWord *args, HelWord *outs);
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
