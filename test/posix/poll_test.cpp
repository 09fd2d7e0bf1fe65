// test/posix/poll_test.cpp tests src/posix/poll.cpp and client_poll.cpp: poll and ppoll on
// pipes and files with Linux's results (POLLHUP, POLLERR, POLLNVAL, fd -1), timeouts, and a
// blocking poll woken by another process's write.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/posix.hpp>

#include "file_support.hpp"

namespace px = helsim::posix;
using namespace helsim::posix::file_test;

namespace {

std::uint64_t now_ns() {
	timespec ts{};
	px::clock_gettime(CLOCK_MONOTONIC, &ts);
	return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000 +
			static_cast<std::uint64_t>(ts.tv_nsec);
}

TEST(PosixPoll, PipeEndsReportLinuxBits) {
	both_ways({{"/bin/test", [](int, char **) {
					int fds[2];
					EXPECT_EQ(px::pipe(fds), 0);
					pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLOUT, 0}};
					EXPECT_EQ(px::poll(p, 2, 0), 1); // empty: only the write end is ready
					EXPECT_EQ(p[0].revents, 0);
					EXPECT_EQ(p[1].revents, POLLOUT);
					EXPECT_EQ(px::write(fds[1], "x", 1), 1);
					EXPECT_EQ(px::poll(p, 2, 0), 2);
					EXPECT_EQ(p[0].revents, POLLIN);
					// The writer leaves: data and hang-up both reported, POLLHUP unasked.
					EXPECT_EQ(px::close(fds[1]), 0);
					pollfd r{fds[0], POLLIN, 0};
					EXPECT_EQ(px::poll(&r, 1, 0), 1);
					EXPECT_EQ(r.revents, POLLIN | POLLHUP);
					char c;
					EXPECT_EQ(px::read(fds[0], &c, 1), 1);
					EXPECT_EQ(px::poll(&r, 1, 0), 1);
					EXPECT_EQ(r.revents, POLLHUP); // Linux: no POLLIN once drained
					EXPECT_EQ(px::close(fds[0]), 0);

					// A write end without readers: POLLERR even when only POLLIN was asked.
					EXPECT_EQ(px::pipe(fds), 0);
					EXPECT_EQ(px::close(fds[0]), 0);
					pollfd w{fds[1], POLLIN, 0};
					EXPECT_EQ(px::poll(&w, 1, 0), 1);
					EXPECT_EQ(w.revents, POLLERR);
					EXPECT_EQ(px::close(fds[1]), 0);
					return 0;
				}}});
}

TEST(PosixPoll, ClosedFdIsNvalAndMinusOneIsIgnored) {
	both_ways({{"/bin/test", [](int, char **) {
					int fds[2];
					EXPECT_EQ(px::pipe(fds), 0);
					pollfd p[3] = {{-1, POLLIN, 77}, {100, POLLIN, 0}, {fds[0], POLLIN, 0}};
					EXPECT_EQ(px::poll(p, 3, 0), 1);
					EXPECT_EQ(p[0].revents, 0);
					EXPECT_EQ(p[1].revents, POLLNVAL);
					EXPECT_EQ(p[2].revents, 0);
					// A regular file and /dev/null are always ready.
					int file = px::open("/tmp/poll-file", O_CREAT | O_RDWR, 0600);
					int null = px::open("/dev/null", O_RDWR);
					pollfd q[2] = {{file, POLLIN | POLLOUT, 0}, {null, POLLIN, 0}};
					EXPECT_EQ(px::poll(q, 2, -1), 2);
					EXPECT_EQ(q[0].revents, POLLIN | POLLOUT);
					EXPECT_EQ(q[1].revents, POLLIN);
					EXPECT_EQ(px::poll(nullptr, 0, 0), 0);
					EXPECT_EQ(px::poll(p, 5000, 0), -EINVAL);
					return 0;
				}}});
}

TEST(PosixPoll, TimeoutExpiresWithZero) {
	both_ways({{"/bin/test",
					  [](int, char **) {
						  int fds[2];
						  EXPECT_EQ(px::pipe(fds), 0);
						  pollfd p{fds[0], POLLIN, 0};
						  std::uint64_t before = now_ns();
						  EXPECT_EQ(px::poll(&p, 1, 20), 0);
						  EXPECT_GE(now_ns() - before, 20'000'000u);
						  EXPECT_EQ(p.revents, 0);
						  timespec ts{0, 5'000'000};
						  EXPECT_EQ(px::ppoll(&p, 1, &ts, nullptr), 0);
						  timespec bad{0, 1'000'000'000};
						  EXPECT_EQ(px::ppoll(&p, 1, &bad, nullptr), -EINVAL);
						  return 0;
					  }}},
			10);
}

// The child writes after a while; the parent's poll without timeout waits for it.
int waiting_parent(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_GT(spawn("/bin/child", {"child", std::to_string(fds[1])}), 0);
	EXPECT_EQ(px::close(fds[1]), 0);
	pollfd p{fds[0], POLLIN, 0};
	EXPECT_EQ(px::poll(&p, 1, -1), 1);
	EXPECT_EQ(p.revents & POLLIN, POLLIN);
	char c;
	EXPECT_EQ(px::read(fds[0], &c, 1), 1);
	EXPECT_EQ(c, 'w');
	// A long timeout is cut short by the child's exit (POLLHUP), and the timer is cancelled.
	EXPECT_EQ(px::poll(&p, 1, 100'000), 1);
	EXPECT_EQ(p.revents, POLLHUP);
	return 0;
}

int late_writer(int, char **argv) {
	int out = std::atoi(argv[1]);
	timespec pause{0, 2'000'000};
	px::nanosleep(&pause, nullptr);
	EXPECT_EQ(px::write(out, "w", 1), 1);
	return 0;
}

TEST(PosixPoll, ABlockedPollIsWokenByAnotherProcess) {
	Programs programs{{"/bin/parent", waiting_parent}, {"/bin/child", late_writer}};
	both_ways(programs);
	in_threads(programs);
}

// A process that exits while its poll and epoll_wait wait (nothing else would ever wake them):
// the server ends them, and the run ends clean.
int abandoning_poller(int, char **) {
	using namespace helsim::ipc;
	namespace protocol = helsim::posix::protocol;
	int ep = px::epoll_create1(0);
	protocol::ProcessData data = process_data();
	helsim::Dispatcher queue{helsim::QueueConfig{2, 2, 4096}};
	protocol::Request poll{{protocol::kPoll, 0}, 0, 0, -1, 0, 1};
	protocol::Request wait{{protocol::kEpollWait, 0}, ep, 0, 1, -1, 2};
	for (auto *head : {&poll, &wait})
		submit(queue, data.posix_lane, reinterpret_cast<std::uintptr_t>(head),
				offer(send_buffer(head, sizeof *head), imbue_credentials(), recv_inline()));
	queue.flush();
	EXPECT_GT(px::getpid(), 0); // served after both requests started waiting
	return 0;
}

TEST(PosixPoll, AProcessThatExitsWhileWaitingEndsItsWaits) {
	run_each_seed(abandoning_poller);
	run_each_seed(abandoning_poller, without_file_table(), 5);
}

// SIGPIPE: a write to a pipe without readers is -EPIPE and raises SIGPIPE at the writer.
// Needs the signals part (sigaction); skipped while it answers -ENOSYS.
std::atomic<bool> signals_missing{false};

int ignoring_writer(int, char **) {
	struct sigaction ignore {};
	ignore.sa_handler = SIG_IGN;
	if (px::sigaction(SIGPIPE, &ignore, nullptr) == -ENOSYS) {
		signals_missing = true;
		return 0;
	}
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_EQ(px::close(fds[0]), 0);
	EXPECT_EQ(px::write(fds[1], "x", 1), -EPIPE);
	EXPECT_EQ(px::counters().signals_sent, 1u);
	return 0;
}

int dying_writer(int, char **) {
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	EXPECT_EQ(px::close(fds[0]), 0);
	px::write(fds[1], "x", 1); // SIG_DFL: the process ends here
	return 3;
}

// ppoll's mask is in force during the call and the old one is back after it. Needs
// sigprocmask (the signals part); skipped while it answers -ENOSYS.
int masked_poller(int, char **) {
	sigset_t before, during, after;
	if (px::sigprocmask(SIG_BLOCK, nullptr, &before) == -ENOSYS) {
		signals_missing = true;
		return 0;
	}
	sigemptyset(&during);
	sigaddset(&during, SIGUSR1);
	int fds[2];
	EXPECT_EQ(px::pipe(fds), 0);
	pollfd p{fds[0], POLLIN, 0};
	timespec zero{};
	EXPECT_EQ(px::ppoll(&p, 1, &zero, &during), 0);
	EXPECT_EQ(px::sigprocmask(SIG_BLOCK, nullptr, &after), 0);
	EXPECT_EQ(sigismember(&after, SIGUSR1), sigismember(&before, SIGUSR1));
	return 0;
}

TEST(PosixPoll, PpollRestoresTheMask) {
	signals_missing = false;
	run_each_seed(masked_poller, quiet(), 5);
	if (signals_missing)
		GTEST_SKIP() << "sigprocmask answers -ENOSYS: the signals part has not landed";
}

TEST(PosixSigpipe, IgnoredItIsEpipeAndByDefaultItKills) {
	signals_missing = false;
	run_each_seed(ignoring_writer, quiet(), 5);
	if (signals_missing)
		GTEST_SKIP() << "sigaction answers -ENOSYS: the signals part has not landed";
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				helsim::Machine machine{seeded(seed)};
				px::System system{machine, quiet()};
				system.add_program("/bin/writer", dying_writer);
				pid_t pid = system.spawn("/bin/writer", {"writer"});
				expect_clean(machine.run());
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGPIPE);
			},
			5);
}

} // namespace
