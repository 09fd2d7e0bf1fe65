// test/posix/epoll_test.cpp tests src/posix/epoll.cpp: epoll_ctl's errors, level- and
// edge-triggered reports, one-shot interests, timeouts, closing a watched fd, and an
// epoll_wait woken by another process.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

epoll_event interest(std::uint32_t events, std::uint64_t data) {
	epoll_event e{};
	e.events = events;
	e.data.u64 = data;
	return e;
}

TEST(PosixEpoll, CtlErrorsAsLinux) {
	both_ways({{"/bin/test", [](int, char **) {
					EXPECT_EQ(px::epoll_create1(1), -EINVAL);
					int ep = px::epoll_create1(EPOLL_CLOEXEC);
					EXPECT_GE(ep, 0);
					EXPECT_EQ(px::fcntl(ep, F_GETFD), FD_CLOEXEC);
					int fds[2];
					EXPECT_EQ(px::pipe(fds), 0);
					auto e = interest(EPOLLIN, 1);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, 99, &e), -EBADF);
					EXPECT_EQ(px::epoll_ctl(99, EPOLL_CTL_ADD, fds[0], &e), -EBADF);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e), -EINVAL);
					EXPECT_EQ(px::epoll_ctl(fds[1], EPOLL_CTL_ADD, fds[0], &e),
							-EINVAL); // not an epoll
					int file = px::open("/tmp/epoll-file", O_CREAT | O_RDWR, 0600);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, file, &e), -EPERM);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_MOD, fds[0], &e), -ENOENT);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_DEL, fds[0], nullptr), -ENOENT);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], nullptr), -EFAULT);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e), 0);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e), -EEXIST);
					EXPECT_EQ(px::epoll_ctl(ep, 42, fds[0], &e), -EINVAL);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_DEL, fds[0], nullptr), 0);
					epoll_event out[4];
					EXPECT_EQ(px::epoll_wait(ep, out, 0, 0), -EINVAL);
					EXPECT_EQ(px::epoll_wait(fds[0], out, 4, 0), -EINVAL);
					EXPECT_EQ(px::epoll_wait(77, out, 4, 0), -EBADF);
					return 0;
				}}});
}

TEST(PosixEpoll, LevelEdgeAndOneshot) {
	both_ways({{"/bin/test",
					  [](int, char **) {
						  int ep = px::epoll_create1(0);
						  int level = px::eventfd(0, EFD_NONBLOCK);
						  int edge = px::eventfd(0, EFD_NONBLOCK);
						  int once = px::eventfd(0, EFD_NONBLOCK);
						  auto a = interest(EPOLLIN, 10);
						  auto b = interest(EPOLLIN | EPOLLET, 20);
						  auto c = interest(EPOLLIN | EPOLLONESHOT, 30);
						  EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, level, &a), 0);
						  EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, edge, &b), 0);
						  EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, once, &c), 0);
						  epoll_event out[8];
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 0), 0);
						  std::uint64_t one = 1;
						  for (int fd : {level, edge, once})
							  EXPECT_EQ(px::write(fd, &one, 8), 8);
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 0), 3);
						  EXPECT_EQ(data_of(out[0]), 10u);
						  EXPECT_EQ(out[0].events, EPOLLIN);
						  EXPECT_EQ(data_of(out[1]), 20u);
						  EXPECT_EQ(data_of(out[2]), 30u);
						  // Still readable: level reports again, edge and one-shot do not.
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 0), 1);
						  EXPECT_EQ(data_of(out[0]), 10u);
						  // A new write is a new edge; the one-shot stays off until MOD.
						  EXPECT_EQ(px::write(edge, &one, 8), 8);
						  EXPECT_EQ(px::write(once, &one, 8), 8);
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 0), 2);
						  EXPECT_EQ(data_of(out[1]), 20u);
						  EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_MOD, once, &c), 0);
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 0), 2);
						  EXPECT_EQ(data_of(out[1]), 30u);
						  // max_events caps the report.
						  EXPECT_EQ(px::epoll_wait(ep, out, 1, 0), 1);
						  // A closed fd leaves the list; the timeout then runs out.
						  EXPECT_EQ(px::close(level), 0);
						  EXPECT_EQ(px::epoll_wait(ep, out, 8, 10), 0);
						  return 0;
					  }}},
			10);
}

TEST(PosixEpoll, HangupAndErrorAreAlwaysReported) {
	both_ways({{"/bin/test", [](int, char **) {
					int ep = px::epoll_create1(0);
					int fds[2];
					EXPECT_EQ(px::pipe(fds), 0);
					auto r = interest(EPOLLIN, 1);
					auto w = interest(EPOLLOUT, 2);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &r), 0);
					EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[1], &w), 0);
					epoll_event out[2];
					EXPECT_EQ(px::epoll_wait(ep, out, 2, 0), 1);
					EXPECT_EQ(out[0].events, EPOLLOUT);
					int reader = px::dup(fds[0]);
					EXPECT_EQ(px::close(fds[0]), 0);
					EXPECT_EQ(px::close(reader), 0); // the last reader: the write end is in error
					EXPECT_EQ(px::epoll_wait(ep, out, 2, 0), 1);
					EXPECT_EQ(out[0].events, EPOLLOUT | EPOLLERR);
					return 0;
				}}});
}

int epoll_parent(int, char **) {
	int ep = px::epoll_create1(0);
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	auto e = interest(EPOLLIN, 7);
	EXPECT_EQ(px::epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &e), 0);
	EXPECT_GT(spawn("/bin/child", {"child", std::to_string(fds[1])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	epoll_event out[1];
	EXPECT_EQ(px::epoll_wait(ep, out, 1, -1), 1);
	EXPECT_EQ(data_of(out[0]), 7u);
	EXPECT_EQ(out[0].events & EPOLLIN, EPOLLIN);
	return 0;
}

int epoll_child(int, char **argv) {
	timespec pause{0, 1'000'000};
	px::nanosleep(&pause, nullptr);
	EXPECT_EQ(px::write(std::atoi(argv[1]), "x", 1), 1);
	return 0;
}

TEST(PosixEpoll, AWaitIsWokenByAnotherProcess) {
	Programs programs{{"/bin/parent", epoll_parent}, {"/bin/child", epoll_child}};
	both_ways(programs);
	in_threads(programs);
}

} // namespace
