// Issue 10, items 6, 8 and 10: helsim's hel.h is Managarm's — its layouts (checked at compile
// time from C and C++ against hel_layout_facts.h), its names and types (code written for
// Managarm compiles unchanged, through <hel.h> and <hel-syscalls.h>), and the checking helpers
// it gives user code.
#include <gtest/gtest.h>

#include <hel-syscalls.h>
#include <hel.h>

#include <cstring>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

#include <helsim/machine.hpp>

#include "hel_layout_facts.h"

extern "C" {
int hel_layout_soft_check_from_c(void);
HelError hel_layout_transfer_from_c(HelHandle handle, HelHandle *out);
size_t hel_layout_descriptor_info_size_from_c(void);
}

namespace {

// Rights are `static const HelRights`: constant expressions in C++ only, so checked here.
static_assert(std::is_same_v<HelRights, std::uint32_t>);
static_assert(kHelRightNull == 0 && kHelRightGrant == 1 && kHelRightTake == 2);
static_assert(kHelRightRead == 4 && kHelRightWrite == 8 && kHelRightExecute == 16);
static_assert(kHelRightInvoke == 32 && kHelRightAssign == 64 && kHelRightDerive == 128);
static_assert(kHelRightProvision == 256 && kHelRightPin == 512 && kHelRightFence == 1024);
static_assert(kHelRightWait == 2048 && kHelRightSignal == 4096 && kHelRightManage == 8192);
static_assert(kHelRightsMax == 0xFFFFFFFFu);
static_assert(kHelTransferDescriptorOut == 1 && kHelTransferDescriptorIn == 2);
static_assert(kHelDriveWait == 1);

// The parameter types of the calls whose flags, rights and pointers outside code passes: a
// drift to an enum or a returned word would stop calls that compile against Managarm.
static_assert(std::is_same_v<decltype(&helTransferDescriptor),
		HelError (*)(HelHandle, HelHandle, std::uint32_t, std::uint32_t, std::uint32_t,
				HelHandle *)>);
static_assert(std::is_same_v<decltype(&helGetAffinity),
		HelError (*)(HelHandle, std::uint8_t *, std::size_t, std::size_t *)>);
static_assert(std::is_same_v<decltype(&helSetAffinity),
		HelError (*)(HelHandle, std::uint8_t *, std::size_t)>);
static_assert(std::is_same_v<decltype(&helDriveQueue),
		HelError (*)(HelHandle, std::uint32_t, std::uint32_t)>);
static_assert(std::is_same_v<decltype(&helLoadRegisters), HelError (*)(HelHandle, int, void *)>);
// clang makes __attribute__((noreturn)) part of the function type, GCC does not: a conversion
// that may only drop it still needs the exact parameter and return types.
[[maybe_unused]] constexpr void (*kHelPanicAsDeclared)(const char *, std::size_t) = &helPanic;

struct Logged {
	int severity;
	std::string message;
};

TEST(HelLayout, CAndCppAgreeOnHelDescriptorInfo) {
	EXPECT_EQ(hel_layout_descriptor_info_size_from_c(), sizeof(HelDescriptorInfo));
	EXPECT_EQ(sizeof(HelDescriptorInfo), 4u);
}

// Item 6: Managarm's struct is 4 bytes; the kernel writes exactly those.
TEST(HelLayout, DescriptorInfoWritesFourBytesOnly) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	unsigned char bytes[8];
	std::memset(bytes, 0xAA, sizeof(bytes));
	ASSERT_EQ(helDescriptorInfo(token, reinterpret_cast<HelDescriptorInfo *>(bytes)), kHelErrNone);
	int type = -1;
	std::memcpy(&type, bytes, sizeof(type));
	EXPECT_EQ(type, kHelDescToken);
	for (int i = 4; i < 8; ++i)
		EXPECT_EQ(bytes[i], 0xAA) << "byte " << i << " lies past Managarm's HelDescriptorInfo";
}

// Item 8: code as Managarm's user space writes it compiles and runs as is.
TEST(HelLayout, ManagarmStyleCallsCompileUnchanged) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle queue = kHelNullHandle, copy = kHelNullHandle;
	HelQueueParameters params{0, 2, 4096, 2};
	HEL_CHECK(helCreateQueue(&params, &queue));
	// flags 0 and Out | In are plain ints: both compile and give IllegalArgs.
	EXPECT_EQ(helTransferDescriptor(queue, kHelThisUniverse, 0, kHelRightsMax, 0, &copy),
			kHelErrIllegalArgs);
	EXPECT_EQ(helTransferDescriptor(queue, kHelThisUniverse,
					  kHelTransferDescriptorOut | kHelTransferDescriptorIn, kHelRightsMax,
					  kHelRightNull, &copy),
			kHelErrIllegalArgs);
	HelRights rights = kHelRightInvoke | kHelRightWait;
	HEL_CHECK(helTransferDescriptor(queue, kHelThisUniverse, kHelTransferDescriptorOut, rights, 0,
			&copy));
	HEL_CHECK(helDriveQueue(copy, 0, 0));
	HelHandle from_c = kHelNullHandle;
	EXPECT_EQ(hel_layout_transfer_from_c(queue, &from_c), kHelErrNone);
	EXPECT_NE(from_c, kHelNullHandle);
	std::uint8_t mask[8] = {};
	std::size_t actual = 0;
	HEL_CHECK(helGetAffinity(kHelThisThread, mask, sizeof(mask), &actual));
	EXPECT_EQ(actual, 1u) << "2 CPUs need one byte";
	// Every live call is implemented; the numbers thor reserved compile all the same and answer
	// IllegalSyscall, as thor does.
	HelHandle forked = kHelNullHandle;
	EXPECT_EQ(helResizeMemory(queue, 4096), kHelErrIllegalSyscall) << "a reserved number, as thor";
	EXPECT_EQ(helForkMemory(queue, &forked), kHelErrIllegalSyscall) << "a reserved number, as thor";
}

// Item 8: HEL_SOFT_CHECK logs the expression, where it is and what the error means, at error
// severity, and goes on.
TEST(HelLayout, SoftCheckLogsExpressionPlaceAndErrorThenContinues) {
	std::mutex mutex;
	std::vector<Logged> logged;
	helsim::Machine machine{{.log_sink = [&](const helsim::LogRecord &r) {
		std::lock_guard lock{mutex};
		logged.push_back({r.severity, std::string{r.message}});
	}}};
	auto attached = machine.attach();
	EXPECT_EQ(hel_layout_soft_check_from_c(), 1);
	ASSERT_EQ(logged.size(), 3u);
	for (const Logged &l : logged)
		EXPECT_EQ(l.severity, kHelLogSeverityError);
	EXPECT_NE(logged[0].message.find(
					  "HEL_SOFT_CHECK failed: helCloseDescriptor(kHelThisUniverse, 12345)"),
			std::string::npos)
			<< logged[0].message;
	EXPECT_NE(logged[0].message.find("In file "), std::string::npos);
	EXPECT_NE(logged[0].message.find("hel_layout.c on line "), std::string::npos);
	EXPECT_EQ(logged[1].message, "No such descriptor");
	EXPECT_EQ(logged[2].message, "\n");
}

// Item 8: HEL_CHECK panics the thread after logging; the code after it never runs.
TEST(HelLayout, CheckPanicsTheThread) {
	std::mutex mutex;
	std::vector<Logged> logged;
	helsim::Machine machine{{.log_sink = [&](const helsim::LogRecord &r) {
		std::lock_guard lock{mutex};
		logged.push_back({r.severity, std::string{r.message}});
	}}};
	bool after = false;
	machine.spawn("checker", [&](std::span<const HelHandle>) {
		HEL_CHECK(helCloseDescriptor(kHelThisUniverse, 4242));
		after = true;
	});
	auto report = machine.run();
	ASSERT_EQ(report.threads.size(), 1u) << report.to_string();
	EXPECT_EQ(report.threads[0].outcome, helsim::ThreadOutcome::panicked) << report.to_string();
	EXPECT_FALSE(after);
	ASSERT_GE(logged.size(), 3u);
	EXPECT_NE(logged[0].message.find(
					  "HEL_CHECK failed: helCloseDescriptor(kHelThisUniverse, 4242)"),
			std::string::npos)
			<< logged[0].message;
	EXPECT_EQ(logged[1].message, "No such descriptor");
}

TEST(HelLayout, EveryErrorHasAText) {
	for (HelError e = kHelErrNone; e <= kHelErrBadRights; ++e) {
		ASSERT_NE(_helErrorString(e), nullptr) << e;
		EXPECT_GT(std::strlen(_helErrorString(e)), 0u) << e;
	}
	EXPECT_EQ(_helErrorString(kHelErrBadRights + 1), nullptr);
}

} // namespace
