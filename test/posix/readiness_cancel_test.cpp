// test/posix/readiness_cancel_test.cpp tests the cancellation contract of blocking reads in
// src/posix/pipe.cpp and eventfd.cpp that the passthrough server relies on: a read waiting
// with a CancelToken answers -EINTR once cancelled, takes nothing (later data goes to the
// next read), and names its Condition in the token while it waits. Run on a bare simulated
// thread with the server's Executor, without a System.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "../../src/posix/eventfd.hpp"
#include "../../src/posix/pipe.hpp"
#include "../../src/posix/server.hpp"
#include "file_support.hpp"

namespace {

using namespace helsim::posix::detail;

struct Outcome {
	std::int64_t cancelled_read = 0;
	std::int64_t next_read = 0;
	bool token_named_condition = false;
};

// The waiter starts first (tasks run in spawn order) and blocks; the canceller then finds the
// token naming the read's Condition and cancels it.
void run_case(bool eventfd) {
	helsim::testing::for_each_seed(
			[&](std::uint64_t seed) {
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				Outcome outcome;
				machine.spawn("server", [&](std::span<const HelHandle>) {
					Executor executor;
					auto process = std::make_shared<Process>();
					Requester who{process};
					CancelToken token;
					Requester cancellable{process, &token};
					std::shared_ptr<OpenFile> reader, writer;
					if (eventfd) {
						reader = writer = std::make_shared<EventFd>(executor, 0, 0);
					} else {
						auto buffer = std::make_shared<PipeBuffer>(executor);
						reader = std::make_shared<PipeEnd>(buffer, true, O_RDONLY);
						writer = std::make_shared<PipeEnd>(buffer, false, O_WRONLY);
					}
					std::uint64_t value = 5;
					auto data = std::as_bytes(std::span{&value, 1});
					auto waiter = [&]() -> Task {
						std::byte buffer[16] = {};
						outcome.cancelled_read = co_await reader->read(cancellable, buffer, -1);
						outcome.next_read = co_await writer->write(who, data, -1);
						outcome.next_read = co_await reader->read(who, buffer, -1);
					};
					auto canceller = [&]() -> Task {
						outcome.token_named_condition = token.waiting != nullptr;
						token.cancel();
						co_return;
					};
					executor.spawn(waiter());
					executor.spawn(canceller());
					executor.run();
				});
				helsim::posix::file_test::expect_clean(machine.run());
				EXPECT_EQ(outcome.cancelled_read, -EINTR);
				EXPECT_TRUE(outcome.token_named_condition);
				EXPECT_EQ(outcome.next_read,
						8); // the data written after it all went to the next read
			},
			5);
}

TEST(PosixReadinessCancel, APipeReadCancelledWhileWaitingIsEintrAndTakesNothing) {
	run_case(false);
}

TEST(PosixReadinessCancel, AnEventfdReadCancelledWhileWaitingIsEintr) { run_case(true); }

} // namespace
