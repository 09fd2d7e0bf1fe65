// Prototyping new syscalls with the machinery the built-in ones use: handle lookup in the
// caller's universe, user-memory access, completion posting and per-call accounting.
// A built-in syscall is a row of the same table; an extension row is dispatched the same way.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::ext {

// What helsim knows of a descriptor: its type (kHelDesc*) and its rights. Managarm's
// HelDescriptorInfo has room for the type only.
struct DescriptorInfo {
	int type;
	std::uint32_t rights;
};

// The type and rights of `handle` in the calling simulated thread's universe: kHelErrNone,
// kHelErrNoDescriptor, or kHelErrIllegalState on a host thread that is not simulated.
HelError describe_descriptor(HelHandle handle, DescriptorInfo &info);

// A new handle, with a thread's full rights, to the calling simulated thread in its own
// universe: how a host thread attached to a machine hands itself to a supervisor. Like every
// thread handle, closing the last one kills the thread. kHelErrIllegalState on a host thread
// that is not simulated.
HelError self_handle(HelHandle &handle);

// The simulated thread that made the call.
class Caller {
public:
	explicit Caller(kernel::Thread &thread) : thread_{thread} {}

	const std::string &thread_name() const;
	unsigned cpu() const;
	// The caller's credentials, as helGetCredentials reports them to a holder of its handle.
	const std::array<char, 16> &credentials() const;

	// describe_descriptor() on a handle of the caller's universe.
	HelError descriptor_info(HelHandle handle, DescriptorInfo &info) const;

	// Posts a completion element to a queue of the caller's universe (needs kHelRightInvoke):
	// the same path every built-in asynchronous operation completes through. The element
	// counts as one completed operation. kHelErrQueueTooSmall if it can never fit a chunk.
	HelError complete(HelHandle queue, std::uintptr_t context,
			std::span<const std::byte> payload) const;

	// The kernel's checked user-memory access (page tables, faults, a pager if needed): false
	// when the memory cannot be provided (kHelErrFault, or kHelErrNoMemory without a free frame).
	bool copy_from_user(void *kernel_dst, const void *user_src, std::size_t size) const;
	bool copy_to_user(void *user_dst, const void *kernel_src, std::size_t size) const;

	kernel::Thread &thread() const { return thread_; }

private:
	kernel::Thread &thread_;
};

// args holds 9 argument words, outs 3 result words (see hel-stubs.h).
using SyscallHandler = HelError (*)(Caller &caller, const HelWord *args, HelWord *outs);

// Registers `number` (in [kFirstExtensionSyscall, kSyscallSlots)) on `machine`. Throws
// std::invalid_argument for a number outside that range or already taken.
void register_syscall(Machine &machine, std::uint32_t number, std::string name,
		SyscallHandler handler);

// Supercalls (numbers >= 0x80000000) go to this handler, inline on the calling thread. A
// handler returns kSupercallTrap for a supercall it does not answer: that one traps to the
// thread's observer, as without a handler.
using SupercallHandler = std::function<HelError(Caller &caller, std::uint32_t number,
		const HelWord *args, HelWord *outs)>;
void set_supercall_handler(Machine &machine, SupercallHandler handler);
inline constexpr HelError kSupercallTrap = 0x7fff0001;

} // namespace helsim::ext
