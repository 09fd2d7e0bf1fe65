// The rows of the thread syscalls and SQ operations: creation, scheduling and affinity,
// observation, the per-thread fs/gs words, the register-set sizes and run-time statistics.
// The semantics are the Thread's.
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

HelError sq_observe(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqObserve &request, Lookup<Thread> &thread);

// The thread syscalls and SQ opcodes. Written into the kernel's tables at its construction.
void register_thread_calls(CallRegistry &calls);

} // namespace helsim::kernel
