// The syscall table and the SQ opcode table: decoding and dispatch, nothing else.
#pragma once

#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

#include "kernel/core/allocation_errors.hpp"

namespace helsim::kernel {

class Thread;

// Name of a built-in syscall (nullptr if the number is not one).
const char *syscall_name(std::uint32_t number);

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
