// Host allocation failures in kernel code, as the HelError a caller gets. Below the syscall
// layer, so that the queue's SQ consumer can use it without depending on that layer.
#pragma once

#include <new>
#include <stdexcept>

#include <helsim/hel.h>

namespace helsim::kernel {

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
