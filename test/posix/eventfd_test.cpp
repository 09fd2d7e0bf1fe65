// test/posix/eventfd_test.cpp tests src/posix/eventfd.cpp: Linux's eventfd counter (semaphore
// mode, non-blocking, CLOEXEC, overflow, bad sizes) and a read that blocks until another
// process writes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

std::int64_t read_count(int fd) {
	std::uint64_t value = 0;
	auto n = px::read(fd, &value, sizeof value);
	return n == 8 ? static_cast<std::int64_t>(value) : n;
}

ssize_t write_count(int fd, std::uint64_t value) { return px::write(fd, &value, sizeof value); }

TEST(PosixEventfd, CounterSemaphoreAndNonblocking) {
	both_ways({{"/bin/test", [](int, char **) {
					EXPECT_EQ(px::eventfd(0, 0x4000000), -EINVAL);
					int fd = px::eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
					EXPECT_GE(fd, 0);
					EXPECT_EQ(px::fcntl(fd, F_GETFD), FD_CLOEXEC);
					EXPECT_EQ(px::fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
					EXPECT_EQ(write_count(fd, 4), 8);
					EXPECT_EQ(read_count(fd), 7); // the whole count
					EXPECT_EQ(read_count(fd), -EAGAIN);
					char small[4];
					EXPECT_EQ(px::read(fd, small, sizeof small), -EINVAL);
					EXPECT_EQ(px::write(fd, small, sizeof small), -EINVAL);
					EXPECT_EQ(write_count(fd, ~std::uint64_t{0}), -EINVAL);
					// Up to 2^64 - 2 fits; one more would overflow: -EAGAIN without blocking.
					EXPECT_EQ(write_count(fd, ~std::uint64_t{0} - 1), 8);
					EXPECT_EQ(write_count(fd, 1), -EAGAIN);
					pollfd p{fd, POLLIN | POLLOUT, 0};
					EXPECT_EQ(px::poll(&p, 1, 0), 1);
					EXPECT_EQ(p.revents, POLLIN); // full: not writable
					EXPECT_EQ(px::close(fd), 0);

					int sem = px::eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK);
					EXPECT_EQ(px::fcntl(sem, F_GETFD), 0);
					EXPECT_EQ(read_count(sem), 1);
					EXPECT_EQ(read_count(sem), 1);
					EXPECT_EQ(read_count(sem), -EAGAIN);
					p = {sem, POLLIN | POLLOUT, 0};
					EXPECT_EQ(px::poll(&p, 1, 0), 1);
					EXPECT_EQ(p.revents, POLLOUT);
					EXPECT_EQ(px::close(sem), 0);
					return 0;
				}}});
}

int blocked_reader(int, char **) {
	int fd = px::eventfd(0, 0);
	EXPECT_GT(spawn("/bin/child", {"child", std::to_string(fd)}), 0);
	EXPECT_EQ(read_count(fd), 5); // blocks until the child writes
	return 0;
}

int eventfd_writer(int, char **argv) {
	int fd = std::atoi(argv[1]);
	timespec pause{0, 1'000'000};
	px::nanosleep(&pause, nullptr);
	EXPECT_EQ(write_count(fd, 5), 8);
	return 0;
}

TEST(PosixEventfd, ABlockedReadIsWokenByAnotherProcess) {
	Programs programs{{"/bin/parent", blocked_reader}, {"/bin/child", eventfd_writer}};
	both_ways(programs);
	in_threads(programs);
}

} // namespace
