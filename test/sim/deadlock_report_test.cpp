// The deadlock report: a stuck run names each blocked thread and what it waits on.
#include <gtest/gtest.h>

#include <string>

#include "../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

class DeadlockReport : public ::testing::TestWithParam<helsim::Mode> {};

helsim::MachineConfig config(helsim::Mode mode) {
	helsim::MachineConfig c;
	c.cpus = 2;
	c.mode = mode;
	c.seed = 3;
	return c;
}

TEST_P(DeadlockReport, NamesTheQueueAndTheFutex) {
	HelHandle queue = kHelNullHandle;
	int word = 0;
	{
		helsim::Machine machine{config(GetParam())};
		machine.spawn("driver", [&](std::span<const HelHandle>) {
			queue = make_queue();
			// Nothing is submitted: the wait can never end.
			helDriveQueue(queue, kHelDriveWait, 0);
		});
		machine.spawn("futexer", [&](std::span<const HelHandle>) { helFutexWait(&word, 0, -1); });
		auto report = machine.run();
		ASSERT_TRUE(report.stuck) << report.to_string();
		const auto *driver = find_thread(report, "driver");
		ASSERT_NE(driver, nullptr);
		EXPECT_EQ(driver->outcome, helsim::ThreadOutcome::blocked);
		EXPECT_EQ(driver->waits_on, "helDriveQueue on queue handle " + std::to_string(queue));
		const auto *futexer = find_thread(report, "futexer");
		ASSERT_NE(futexer, nullptr);
		EXPECT_EQ(futexer->outcome, helsim::ThreadOutcome::blocked);
		EXPECT_NE(futexer->waits_on.find("futex"), std::string::npos) << futexer->waits_on;
		EXPECT_NE(report.to_string().find("waits on helDriveQueue on queue handle"),
				std::string::npos)
				<< report.to_string();
	}
}

INSTANTIATE_TEST_SUITE_P(Modes, DeadlockReport,
		::testing::Values(helsim::Mode::threads, helsim::Mode::deterministic),
		[](const auto &info) {
			return info.param == helsim::Mode::threads ? std::string{"Threads"}
													   : std::string{"Deterministic"};
		});

} // namespace
