// CallRegistry (src/kernel/core/call_registry.*) on its own: the rows every kernel's built-ins
// write at construction, and what add_syscall / add_sq_opcode refuse. Dispatch through the rows
// is in extension_test.cpp and sq_opcode_test.cpp.
#include <gtest/gtest.h>

#include <stdexcept>

#include "../fake_host.hpp"
#include "kernel/core/call_registry.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/syscalls.hpp"

namespace {

using helsim::kFirstExtensionSyscall;
using helsim::kSyscallSlots;
using helsim::ext::kFirstExtensionSqOpcode;
using helsim::ext::kSqOpcodeSlots;
using helsim::kernel::CallRegistry;
using helsim::kernel::SqRow;
using helsim::kernel::SyscallRow;
using helsim::test::KernelUnderTest;

HelError builtin(helsim::kernel::Thread &, const HelWord *, HelWord *) { return kHelErrNone; }

HelError handler(helsim::ext::Caller &, const HelWord *, HelWord *) { return kHelErrNone; }

HelError sq_builtin(helsim::kernel::Thread &, helsim::kernel::IpcQueue &, std::uintptr_t,
		const std::byte *, std::size_t) {
	return kHelErrNone;
}

TEST(CallRegistry, BuiltinsRegisterAtKernelConstruction) {
	KernelUnderTest k;
	const CallRegistry &calls = k.kernel.calls();
	EXPECT_NE(calls.syscall_entry(kHelCallNop), nullptr);
	EXPECT_EQ(k.kernel.syscall_label(kHelCallNop), "helNop");
	EXPECT_EQ(k.kernel.syscall_label(kHelCallMapMemory), "helMapMemory");
	EXPECT_EQ(k.kernel.syscall_label(kHelsimCallMmioWrite), "helsimMmioWrite");
	EXPECT_STREQ(calls.syscall_row(kHelCallSubmitAsync).params,
			"*handle &actions count *queue &context flags");
	EXPECT_EQ(calls.sq_opcode_row(kHelSubmitAwaitClock).name, "AwaitClock");
	EXPECT_EQ(calls.sq_opcode_row(kHelSubmitCancel).name, "Cancel");
	EXPECT_EQ(calls.sq_opcode_row(kHelSubmitManageMemory).result_size, sizeof(HelManageResult));
	// Numbers nobody registered have no name.
	EXPECT_EQ(calls.syscall_entry(kFirstExtensionSyscall), nullptr);
	EXPECT_EQ(k.kernel.syscall_label(kFirstExtensionSyscall), "");
	EXPECT_EQ(k.kernel.syscall_label(kSyscallSlots), "");
}

TEST(CallRegistry, RegisteringTheBuiltinsTwiceIsRefused) {
	KernelUnderTest k;
	EXPECT_THROW(helsim::kernel::register_builtin_calls(k.kernel.calls()), std::invalid_argument);
}

TEST(CallRegistry, AddRefusesTakenNumbersRangesAndRowsWithoutOneEntry) {
	CallRegistry calls;
	EXPECT_THROW(calls.add_syscall(kSyscallSlots, {"out", nullptr, builtin, nullptr}),
			std::invalid_argument);
	// An extension's handler only in the extension range.
	EXPECT_THROW(calls.add_syscall(kHelCallNop, {"ext", nullptr, nullptr, handler}),
			std::invalid_argument);
	EXPECT_THROW(calls.add_syscall(kHelCallNop, {"none", nullptr, nullptr, nullptr}),
			std::invalid_argument);
	EXPECT_THROW(calls.add_syscall(kHelCallNop, {"both", nullptr, builtin, handler}),
			std::invalid_argument);
	calls.add_syscall(kHelCallNop, {"helNop", "", builtin, nullptr});
	EXPECT_EQ(calls.syscall_entry(kHelCallNop), builtin);
	EXPECT_THROW(calls.add_syscall(kHelCallNop, {"again", "", builtin, nullptr}),
			std::invalid_argument);
	EXPECT_EQ(calls.syscall_name(kHelCallNop), "helNop");
	// An extension row's entry is its number's stub, not the handler.
	calls.add_syscall(kFirstExtensionSyscall, {"ext", nullptr, nullptr, handler});
	EXPECT_NE(calls.syscall_entry(kFirstExtensionSyscall), nullptr);
	EXPECT_EQ(calls.syscall_row(kFirstExtensionSyscall).handler, handler);

	EXPECT_THROW(calls.add_sq_opcode(kSqOpcodeSlots, {"out", 0, sq_builtin, nullptr}),
			std::invalid_argument);
	EXPECT_THROW(calls.add_sq_opcode(kFirstExtensionSqOpcode, {"none", 0, nullptr, nullptr}),
			std::invalid_argument);
	calls.add_sq_opcode(kHelSubmitAsyncNop, {"AsyncNop", sizeof(HelSimpleResult), sq_builtin});
	EXPECT_THROW(calls.add_sq_opcode(kHelSubmitAsyncNop,
						 {"again", sizeof(HelSimpleResult), sq_builtin}),
			std::invalid_argument);
}

} // namespace
