// A thread's register image: what a supervisor loads and stores while the thread is
// interrupted (helLoadRegisters, helStoreRegisters), in Managarm's x86-64 sets and layouts.
// docs/reference/helLoadRegisters.md says what each word means for a simulated thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include <helsim/hel.h>

namespace helsim::kernel {

// A syscall passes 9 argument words and gets 3 output words back (hel-stubs.h).
inline constexpr int kSyscallArgWords = 9;

// The ip of a thread stopped at a trap: "continue where it stopped". It is an opaque token,
// the same for every thread; any other ip makes the thread run an upcall when resumed.
HelWord trap_continuation_ip();

struct RegisterImage {
	std::array<HelWord, kHelNumGprs> general{};
	HelWord ip = 0;
	HelWord sp = 0;
	// Kept for the Signal set (a supervisor may save and restore them with a signal frame);
	// nothing in a simulated thread reads them.
	HelWord rflags = 0x202; // IF set, as for x86-64 user code
	HelWord cs = 0x2b;      // thor's user code selector
	HelWord fs = 0;
	HelWord gs = 0;
	// The PageFault set (load only): the faulting address and kHelPageFault* flags.
	HelWord fault_address = 0;
	HelWord fault_flags = 0;
};

// Size in bytes of a register set as helQueryRegisterInfo reports it; kHelErrIllegalArgs for a
// set a simulated thread does not have (Debug, PageFault, unknown numbers). `loadable` widens
// the answer to the load-only PageFault set.
HelError register_set_size(int set, bool loadable, std::size_t &size);

// Copies set `set` of `image` into `words` (register_set_size bytes), and back.
void load_register_set(const RegisterImage &image, int set, HelWord *words);
void store_register_set(RegisterImage &image, int set, const HelWord *words);

} // namespace helsim::kernel
