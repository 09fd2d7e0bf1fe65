// Waiting for the clock: kHelSubmitAwaitClock.
#pragma once

#include <cstdint>

#include "kernel/core/call_registry.hpp"
#include "kernel/core/object.hpp"

namespace helsim::kernel {

class IpcQueue;
class Thread;

// Completes on `queue` with kHelErrNone once helGetClock() >= deadline, or with
// kHelErrCancelled if kHelSubmitCancel names `tag` first (tag 0: not cancellable).
void submit_await_clock(Thread &self, IpcQueue &queue, std::uint64_t deadline, std::uint64_t tag,
		std::uintptr_t context);

// The clock syscall and SQ opcode. Written into the kernel's tables at its construction.
void register_clock_calls(CallRegistry &calls);

} // namespace helsim::kernel
