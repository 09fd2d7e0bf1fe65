// The built-in rows of the syscall and SQ opcode tables, and the 2022 helSubmit* calls.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/allocation_errors.hpp"
#include "kernel/core/call_registry.hpp"

namespace helsim::kernel {

class Thread;

// Writes every built-in syscall and SQ opcode into `calls` (the kernel's construction).
void register_builtin_calls(CallRegistry &calls);

// A 2022 helSubmit* call: the SQ operation, with its payload built from the argument words and
// its submission errors returned by the call instead of as a context ~0 completion.
HelError submit_legacy(Thread &self, unsigned opcode, HelHandle queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length);
template <typename Payload>
HelError submit_legacy(Thread &self, unsigned opcode, HelHandle queue, std::uintptr_t context,
		const Payload &payload) {
	return submit_legacy(self, opcode, queue, context,
			reinterpret_cast<const std::byte *>(&payload), sizeof(payload));
}

} // namespace helsim::kernel
