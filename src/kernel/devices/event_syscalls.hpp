// Entry points of the event syscalls and of kHelSubmitAwaitEvent. The tables in syscalls.cpp
// list them; the semantics are the events' (event.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

class Thread;
class IpcQueue;

HelError sys_create_oneshot_event(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_create_bitset_event(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_raise_event(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_legacy_await_event(Thread &self, const HelWord *args, HelWord *outs);
HelError sq_await_event(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqAwaitEvent &request);

// The event syscalls and SQ opcodes. Written into the kernel's tables at its construction.
void register_event_calls(CallRegistry &calls);

} // namespace helsim::kernel
