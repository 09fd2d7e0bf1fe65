// The virtualization calls answer as thor on a CPU without VMX or SVM: kHelErrNoHardwareSupport,
// before any argument is looked at, with nothing written.
#include <gtest/gtest.h>

#include "../../support.hpp"
#include <helsim/hel.h>

namespace {

TEST(Virtualization, EveryCallReportsNoHardwareSupport) {
	helsim::test::run_clean({}, [] {
		HelHandle handle = 1234;
		EXPECT_EQ(helCreateVirtualizedSpace(&handle), kHelErrNoHardwareSupport);
		EXPECT_EQ(helCreateVirtualizedCpu(kHelNullHandle, &handle), kHelErrNoHardwareSupport);
		HelVmexitReason reason{};
		EXPECT_EQ(helRunVirtualizedCpu(kHelNullHandle, &reason), kHelErrNoHardwareSupport);
		EXPECT_EQ(helAssertVirtualizedIrq(kHelNullHandle, 1, 1), kHelErrNoHardwareSupport);
		// Bad arguments change nothing: the hardware check comes first, as in thor.
		EXPECT_EQ(helSyscall0(kHelCallCreateVirtualizedSpace), kHelErrNoHardwareSupport);
		EXPECT_EQ(helRunVirtualizedCpu(99999, nullptr), kHelErrNoHardwareSupport);
	});
}

} // namespace
