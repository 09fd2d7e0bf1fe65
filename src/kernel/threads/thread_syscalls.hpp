// Entry points of the thread syscalls and SQ operations: creation, scheduling and affinity,
// observation, the per-thread fs/gs words, the register-set sizes and run-time statistics.
// The tables in syscalls.cpp list them; the semantics are the Thread's.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

class Thread;
class IpcQueue;
class Universe;
template <typename T>
struct Lookup;

// Handle resolution with the pseudo-handles: kHelThisThread, kHelThisUniverse.
Lookup<Thread> resolve_thread(Thread &self, HelHandle handle, std::uint32_t rights);
Lookup<Universe> resolve_universe(Thread &self, HelHandle handle, std::uint32_t rights);

HelError sys_create_thread(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_resume(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_interrupt_thread(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_kill_thread(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_yield(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_set_priority(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_get_current_cpu(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_get_affinity(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_set_affinity(Thread &self, const HelWord *args, HelWord *outs);

HelError sys_write_fs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_read_fs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_write_gs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_read_gs_base(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_query_register_info(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_query_thread_stats(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_load_registers(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_store_registers(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_observe(Thread &self, const HelWord *args, HelWord *outs);
HelError sq_observe(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqObserve &request, Lookup<Thread> &thread);

// The thread syscalls and SQ opcodes. Written into the kernel's tables at its construction.
void register_thread_calls(CallRegistry &calls);

} // namespace helsim::kernel
