// The event syscalls' rows and kHelSubmitAwaitEvent; the semantics are the events' (event.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

class Thread;
class IpcQueue;

HelError sq_await_event(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const HelSqAwaitEvent &request);

// The event syscalls and SQ opcodes. Written into the kernel's tables at its construction.
void register_event_calls(CallRegistry &calls);

} // namespace helsim::kernel
