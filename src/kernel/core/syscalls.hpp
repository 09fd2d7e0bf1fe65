// The syscall table and the SQ opcode table: decoding and dispatch, nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>

#include <helsim/hel.h>

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

// Runs kernel code on behalf of a syscall or an SQ element. Host memory that runs out there
// (std::bad_alloc, or std::length_error for a size no allocation can have) is kHelErrNoMemory:
// an exception would leave the caller without a result, and an SQ element without any
// completion. So kernel code allocates before it commits an operation (counts it submitted,
// registers it, posts anything); a failure after that would leave it pending.
template <typename Call>
HelError without_allocation_exceptions(Call &&call) {
	try {
		return call();
	} catch (const std::bad_alloc &) {
		return kHelErrNoMemory;
	} catch (const std::length_error &) {
		return kHelErrNoMemory;
	}
}

} // namespace helsim::kernel
