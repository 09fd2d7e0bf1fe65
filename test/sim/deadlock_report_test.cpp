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

// What the report says thread `name` waits on; the thread must be there, blocked.
std::string waits_on(const helsim::RunReport &report, const std::string &name) {
	const auto *thread = find_thread(report, name);
	if (!thread) {
		ADD_FAILURE() << name << " is not in the report:\n" << report.to_string();
		return {};
	}
	EXPECT_EQ(thread->outcome, helsim::ThreadOutcome::blocked) << name;
	return thread->waits_on;
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
		// Nothing will ever complete on that queue, and the report says so.
		EXPECT_EQ(waits_on(report, "driver"),
				"helDriveQueue on queue handle " + std::to_string(queue) +
						"; nothing pending there");
		EXPECT_EQ(waits_on(report, "futexer").rfind("futex 0x", 0), 0u);
		EXPECT_NE(report.to_string().find("waits on helDriveQueue on queue handle"),
				std::string::npos)
				<< report.to_string();
	}
}

HelAction action(int type, std::uint32_t flags = 0) {
	HelAction a{};
	a.type = type;
	a.flags = flags;
	return a;
}

// A receive on a lane whose peer never sends: the thread waiting for its completion is
// reported with the queue and the lane the receive waits on.
TEST_P(DeadlockReport, NamesTheLaneOfAnOperationPendingOnTheQueue) {
	HelHandle queue = kHelNullHandle, lane = kHelNullHandle;
	int never = 0;
	{
		helsim::Machine machine{config(GetParam())};
		machine.spawn("receiver", [&](std::span<const HelHandle>) {
			HelHandle peer = kHelNullHandle;
			ASSERT_EQ(helCreateStream(&lane, &peer, 0), kHelErrNone);
			// The other lane goes to a thread that never sends: it only waits on a futex.
			machine.spawn("silent peer",
					[&](std::span<const HelHandle>) { helFutexWait(&never, 0, -1); }, {peer});
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, peer), kHelErrNone);
			queue = make_queue();
			HelAction recv = action(kHelActionRecvInline);
			ASSERT_EQ(helSubmitAsync(lane, &recv, 1, queue, 1, 0), kHelErrNone);
			helDriveQueue(queue, kHelDriveWait, 0);
		});
		auto report = machine.run();
		ASSERT_TRUE(report.stuck) << report.to_string();
		EXPECT_EQ(waits_on(report, "receiver"),
				"helDriveQueue on queue handle " + std::to_string(queue) +
						"; pending there: recvInline on lane handle " + std::to_string(lane));
		EXPECT_EQ(waits_on(report, "silent peer").rfind("futex 0x", 0), 0u);
		EXPECT_NE(report.to_string().find("; pending there: recvInline on lane handle"),
				std::string::npos)
				<< report.to_string();
	}
}

// Several operations complete on the queue: every one still queued on a lane is listed, by
// lane handle, in queue order on each lane. A lane whose handle was closed (the operation
// keeps it alive) is named as such, and an operation completing on another queue is not
// listed.
TEST_P(DeadlockReport, ListsEveryOperationPendingOnTheQueue) {
	HelHandle queue = kHelNullHandle, first = kHelNullHandle, second = kHelNullHandle;
	int never = 0;
	{
		helsim::Machine machine{config(GetParam())};
		machine.spawn("client", [&](std::span<const HelHandle>) {
			HelHandle peers[3], closed = kHelNullHandle;
			ASSERT_EQ(helCreateStream(&first, &peers[0], 0), kHelErrNone);
			ASSERT_EQ(helCreateStream(&second, &peers[1], 0), kHelErrNone);
			ASSERT_EQ(helCreateStream(&closed, &peers[2], 0), kHelErrNone);
			machine.spawn("silent peer",
					[&](std::span<const HelHandle>) { helFutexWait(&never, 0, -1); },
					{peers[0], peers[1], peers[2]});
			for (HelHandle peer : peers)
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, peer), kHelErrNone);
			queue = make_queue();
			HelHandle other_queue = make_queue();
			// On `second` an accept; on `first` a request: a send chained to a receive.
			HelAction accept = action(kHelActionAccept);
			ASSERT_EQ(helSubmitAsync(second, &accept, 1, queue, 1, 0), kHelErrNone);
			static const char request[] = "ping";
			HelAction exchange[2] = {action(kHelActionSendFromBuffer, kHelItemChain),
					action(kHelActionRecvInline)};
			exchange[0].buffer = const_cast<char *>(request);
			exchange[0].length = sizeof(request);
			ASSERT_EQ(helSubmitAsync(first, exchange, 2, queue, 2, 0), kHelErrNone);
			HelAction offer = action(kHelActionOffer);
			ASSERT_EQ(helSubmitAsync(closed, &offer, 1, queue, 3, 0), kHelErrNone);
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
			HelAction recv = action(kHelActionRecvInline);
			ASSERT_EQ(helSubmitAsync(second, &recv, 1, other_queue, 4, 0), kHelErrNone);
			helDriveQueue(queue, kHelDriveWait, 0);
		});
		auto report = machine.run();
		ASSERT_TRUE(report.stuck) << report.to_string();
		EXPECT_EQ(waits_on(report, "client"),
				"helDriveQueue on queue handle " + std::to_string(queue) +
						"; pending there: sendFromBuffer on lane handle " + std::to_string(first) +
						", recvInline on lane handle " + std::to_string(first) +
						", accept on lane handle " + std::to_string(second) +
						", offer on a lane without a handle here");
	}
}

INSTANTIATE_TEST_SUITE_P(Modes, DeadlockReport,
		::testing::Values(helsim::Mode::threads, helsim::Mode::deterministic),
		[](const auto &info) {
			return info.param == helsim::Mode::threads ? std::string{"Threads"}
													   : std::string{"Deterministic"};
		});

} // namespace
