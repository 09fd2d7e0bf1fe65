// Prototyping new syscalls with the machinery the built-in ones use: handle lookup in the
// caller's universe, user-memory access, completion posting and per-call accounting.
// A built-in syscall is a row of the same table; an extension row is dispatched the same way.
//
// The user-facing contract: the types a handler works with live in <helsim/extension_kernel.hpp>
// (which the kernel includes); this header adds the registrations, which take a Machine.
#pragma once

#include <cstdint>
#include <string>

#include <helsim/extension_kernel.hpp>
#include <helsim/machine.hpp>

namespace helsim::ext {

// Registers `number` (in [kFirstExtensionSyscall, kSyscallSlots)) on `machine`. Throws
// std::invalid_argument for a number outside that range or already taken.
void register_syscall(Machine &machine, std::uint32_t number, std::string name,
		SyscallHandler handler);

// Registers SQ opcode `opcode` (in [kFirstExtensionSqOpcode, kSqOpcodeSlots)) on `machine`:
// its elements go to `handler`, once the queue has checked that `result_size` (at least a
// HelSimpleResult) fits its chunks. Throws std::invalid_argument for an opcode outside that
// range or already taken, a missing handler, or a result size below a HelSimpleResult.
void register_sq_opcode(Machine &machine, std::uint32_t opcode, std::string name,
		std::size_t result_size, SqHandler handler);

// Sends `machine`'s supercalls to `handler` (SupercallHandler), replacing any handler before.
void set_supercall_handler(Machine &machine, SupercallHandler handler);

// Adds a kind to `machine`'s registry of object kinds, beside the built-ins. Throws
// std::invalid_argument for an empty or taken name, rights outside kKindRightsMask, or default
// rights outside kHelRight* and `rights`; std::length_error when the registry is full (64
// kinds, the built-ins included).
ObjectKindId register_object_kind(Machine &machine, ObjectKindSpec spec);

// Registers action type `type` (in the extension range) on `machine`; its actions accept no
// item flags but kHelItemChain, and meet dismiss like every action. Throws
// std::invalid_argument for a type outside the range or already registered, a `result` that
// is no StreamResult, or a null name or decode. `name` names the action in reports and must
// outlive the machine (a literal).
void register_stream_action(Machine &machine, int type, const char *name, StreamResult result,
		StreamDecodeFunction decode);
// Registers what happens when an action of `first` meets one of `second` (either order;
// `first` may be `second`, or a built-in kHelAction*). Throws std::invalid_argument for an
// unregistered type, dismiss, a null function, or a pair that has a rule already (built-ins
// included: a pair the kernel already knows cannot be replaced).
void register_stream_pair(Machine &machine, int first, int second, StreamPairFunction pair);

} // namespace helsim::ext
