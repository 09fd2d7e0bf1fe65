// The syscall table and the SQ opcode table of one kernel. Built-in calls write their rows at
// the kernel's construction (register_*_calls), extensions through helsim/extension.hpp, both
// by the same add_*() calls; dispatch is an indexed load and an indirect call for either.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include <helsim/extension_kernel.hpp>
#include <helsim/hel.h>
#include <helsim/machine_config.hpp>

#include "kernel/core/object_kinds.hpp"

namespace helsim::kernel {

class Thread;
class IpcQueue;

using SyscallFn = HelError (*)(Thread &self, const HelWord *args, HelWord *outs);
using SqFn = HelError (*)(Thread &self, IpcQueue &queue, std::uintptr_t context,
		const std::byte *payload, std::size_t length);

// What one parameter descriptor of a built-in's decode step reads (syscall_row in
// syscall_args.hpp): tests walk these to probe every handle and user pointer of every row.
enum class ParamKind : std::uint8_t {
	word,        // a value the effect interprets
	flags,       // bits outside a mask: kHelErrIllegalArgs
	address,     // a word that may be a host address the effect reads by its own rules
	handle,      // resolved to `object` with `rights`
	any_handle,  // a descriptor of any kind: kHelErrNoDescriptor
	handle_word, // a handle the effect looks up (in another universe, or later)
	user_in,     // a struct copied in from user memory: kHelErrFault
	user_out,    // a pointer the effect writes through: kHelErrFault
	user_range,  // a pointer (`word`) and a length (`second_word`) checked against user space
	decoded,     // words a call's own decode function reads (it is data-dependent)
	arguments,   // the argument words as they came, for an effect that reports them
};

struct ParamInfo {
	ParamKind kind;
	std::uint8_t word;
	std::uint8_t second_word = 0; // another word it reads (never word 0); 0: none
	// handle: the kind it resolves and the rights it needs; handle_word: a kind it may name.
	ObjectKind object = ObjectKind::universe;
	std::uint32_t rights = 0;
};

// A row of the syscall table: a built-in's entry point (fn) or an extension's handler.
struct SyscallRow {
	std::string name;
	// For traces: the argument words by hel's parameter names, '*' marking a handle and '&' a
	// word that may be a host address (a pointer, a context), then " > " and the output words
	// (sim::TraceRecorder::syscall_begin); nullptr: unknown.
	const char *params = nullptr;
	SyscallFn fn = nullptr;
	ext::SyscallHandler handler = nullptr;
	// A built-in's parameter descriptors in the order they are checked; empty for a row that
	// declares none (a handler).
	std::span<const ParamInfo> decode{};
};

// A row of the SQ opcode table: a built-in operation (fn) or an extension's handler.
struct SqRow {
	std::string name;
	// Checked against the queue's chunk size before the operation runs, so that its completion
	// always fits; 0 for an operation that posts nothing of its own (kHelSubmitCancel).
	std::size_t result_size = 0;
	SqFn fn = nullptr;
	ext::SqHandler handler = nullptr;
};

class CallRegistry {
public:
	// Writes row `number`: exactly one of row.fn and row.handler, a handler's number in
	// [kFirstExtensionSyscall, kSyscallSlots). A row is published whole (release), so it may be
	// added while threads make calls. Throws std::invalid_argument for a number out of range or
	// already taken, or a row without exactly one entry point.
	void add_syscall(std::uint32_t number, SyscallRow row);
	// Writes SQ row `opcode`: the same rules, a handler's opcode in
	// [kFirstExtensionSqOpcode, kSqOpcodeSlots).
	void add_sq_opcode(std::uint32_t opcode, SqRow row);

	// The entry point of syscall `number` (< kSyscallSlots); nullptr if none is registered.
	SyscallFn syscall_entry(std::uint32_t number) const {
		return syscall_entries_[number].load(std::memory_order_acquire);
	}
	// Row `number`, once syscall_entry(number) returned non-null (rows never change after).
	const SyscallRow &syscall_row(std::uint32_t number) const { return syscalls_[number]; }
	// The name of syscall `number`; empty if none is registered.
	std::string syscall_name(std::uint32_t number) const;

	// The SQ dispatch every queue of the kernel runs (SqSubmit), on self's kernel's table:
	// kHelErrIllegalSyscall for an opcode without a row, kHelErrQueueTooSmall if its result can
	// never fit a chunk of `queue`, else what the operation returns.
	static HelError submit(Thread &self, IpcQueue &queue, unsigned opcode, std::uintptr_t context,
			const std::byte *payload, std::size_t length);
	const SqRow &sq_opcode_row(std::uint32_t opcode) const { return sq_rows_[opcode]; }

private:
	struct SqEntry {
		std::atomic<SqFn> fn{nullptr};
		// The CQ element of the row's result (header and padded result): the smallest chunk it
		// fits, computed when the row is written, not per element. Written before fn is published.
		std::size_t element_size = 0;
	};
	mutable std::mutex mutex_; // serializes writers; readers go by the published entries
	std::array<std::atomic<SyscallFn>, kSyscallSlots> syscall_entries_{};
	std::array<SyscallRow, kSyscallSlots> syscalls_{};
	std::array<SqEntry, ext::kSqOpcodeSlots> sq_entries_{};
	std::array<SqRow, ext::kSqOpcodeSlots> sq_rows_{};
};

} // namespace helsim::kernel
