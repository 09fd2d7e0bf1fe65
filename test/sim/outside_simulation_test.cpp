// hel calls from a host thread that belongs to no machine: each returns kHelErrIllegalState,
// and the first one on a thread prints one line naming the call, the thread and the fix.
#include <gtest/gtest.h>

#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <string>
#include <thread>

#include "../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

HelError create_queue() {
	HelQueueParameters parameters{.flags = 0, .numChunks = 1, .chunkSize = 4096, .numSqChunks = 1};
	HelHandle queue = kHelNullHandle;
	return helCreateQueue(&parameters, &queue);
}

TEST(OutsideSimulation, TheFirstCallNamesItselfTheThreadAndTheFix) {
	helsim::Machine machine;
	HelError first = -1, second = -1;
	::testing::internal::CaptureStderr();
	std::thread plain{[&] {
		pthread_setname_np(pthread_self(), "plain-worker");
		first = create_queue();
		second = helNop();
	}};
	plain.join();
	std::string printed = ::testing::internal::GetCapturedStderr();

	EXPECT_EQ(first, kHelErrIllegalState);
	EXPECT_EQ(second, kHelErrIllegalState);
	EXPECT_EQ(std::count(printed.begin(), printed.end(), '\n'), 1) << printed;
	EXPECT_NE(printed.find("helsim: helCreateQueue called on host thread \"plain-worker\" (tid "),
			std::string::npos)
			<< printed;
	EXPECT_NE(printed.find("kHelErrIllegalState"), std::string::npos) << printed;
	EXPECT_NE(printed.find("Fix: call Machine::attach() on this thread first"), std::string::npos)
			<< printed;
	EXPECT_EQ(printed.find("helNop"), std::string::npos) << "only the first call is reported";
}

TEST(OutsideSimulation, ExtensionNumbersAndSupercallsAreNamedByNumber) {
	helsim::Machine machine;
	std::string printed[2];
	for (int k = 0; k < 2; ++k) {
		::testing::internal::CaptureStderr();
		std::thread plain{[&] { helSyscall0(k == 0 ? 300 : static_cast<int>(kHelCallSuper + 5)); }};
		plain.join();
		printed[k] = ::testing::internal::GetCapturedStderr();
	}
	EXPECT_NE(printed[0].find("helsim: syscall 300 called on host thread"), std::string::npos)
			<< printed[0];
	EXPECT_NE(printed[1].find("helsim: supercall 5 (kHelCallSuper + 5) called on host thread"),
			std::string::npos)
			<< printed[1];
}

TEST(OutsideSimulation, HelPanicThrowsWithTheFix) {
	helsim::Machine machine;
	std::string what;
	::testing::internal::CaptureStderr();
	std::thread plain{[&] {
		pthread_setname_np(pthread_self(), "panicker");
		try {
			helPanic("x", 1);
		} catch (const helsim::PanicError &error) {
			what = error.what();
		}
	}};
	plain.join();
	std::string printed = ::testing::internal::GetCapturedStderr();
	EXPECT_NE(printed.find("helPanic called on host thread \"panicker\""), std::string::npos)
			<< printed;
	EXPECT_NE(what.find("helPanic called on host thread \"panicker\" (tid "), std::string::npos)
			<< what;
	EXPECT_NE(what.find("call Machine::attach() on it first"), std::string::npos) << what;
}

// A stuck fiber unwinds on the teardown thread; its destructors' calls fail there, quietly.
TEST(OutsideSimulation, TeardownOfABlockedFiberPrintsNothing) {
	HelError in_destructor = -1;
	::testing::internal::CaptureStderr();
	{
		helsim::Machine machine;
		machine.spawn("stuck", [&](std::span<const HelHandle>) {
			struct CallsOnTheWayOut {
				HelError &error;
				~CallsOnTheWayOut() { error = helNop(); }
			} guard{in_destructor};
			int word = 0;
			helFutexWait(&word, 0, kHelWaitInfinite);
		});
		EXPECT_TRUE(machine.run().stuck);
	}
	std::string printed = ::testing::internal::GetCapturedStderr();
	EXPECT_EQ(in_destructor, kHelErrIllegalState);
	EXPECT_EQ(printed.find("not a simulated thread"), std::string::npos) << printed;
}

// HEL_CHECK on a plain std::thread (the first-hour mistake): the process ends with the notice
// and the panic's text, which both say what to do; no terminate cascade hides them.
class OutsideSimulationDeathTest : public ::testing::Test {
protected:
	void SetUp() override {
		GTEST_FLAG_SET(death_test_style, "threadsafe");
		helsim::test::disable_core_dumps();
	}
};

TEST_F(OutsideSimulationDeathTest, HelCheckEndsTheProcessWithTheCauseAndTheFix) {
	EXPECT_EXIT(
			{
				helsim::Machine machine;
				std::thread plain{[] {
					pthread_setname_np(pthread_self(), "checker");
					HEL_CHECK(create_queue());
				}};
				plain.join();
			},
			::testing::KilledBySignal(SIGABRT),
			"helsim: helCreateQueue called on host thread \"checker\" \\(tid [0-9]+\\), which is "
			"not a simulated thread; it returns kHelErrIllegalState.*Fix: call "
			"Machine::attach\\(\\)"
			".*helPanic called on host thread \"checker\"");
}

} // namespace
