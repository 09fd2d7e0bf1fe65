// The syscall table and the SQ opcode table: decoding and dispatch, nothing else.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

namespace helsim::kernel {

class Thread;
class IpcQueue;

// Name of a built-in syscall (nullptr if the number is not one).
const char *syscall_name(std::uint32_t number);

// Submits one SQ element for `self`; the operation completes on `queue`. Returns a
// submission error (reported by the caller as a context ~0 completion) or kHelErrNone.
HelError submit_sq_operation(Thread &self, IpcQueue &queue, unsigned opcode, std::uintptr_t context,
		const std::byte *payload, std::size_t length);

} // namespace helsim::kernel
