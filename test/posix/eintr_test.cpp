// EINTR: a handled signal ends a blocked read, nanosleep, waitpid or poll with -EINTR, through
// the thread page's SignalGuard and helAlertQueue, or (thread_page off) through the interrupt
// path; the call is cancelled at its server, so nothing is lost; SA_RESTART restarts read and
// waitpid. Every case runs with supercalls, thread_page and file_table on and off, under seeds
// and in threads mode (docs/posix-eintr.md).
#include <gtest/gtest.h>

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <functional>

#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace {

namespace px = helsim::posix;
using namespace helsim::posix::test;

std::atomic<int> handled{0};
void count(int) { handled.fetch_add(1); }

int install(int signo, int flags) {
	struct sigaction action {};
	action.sa_handler = count;
	action.sa_flags = flags;
	return px::sigaction(signo, &action, nullptr);
}

struct Mode {
	bool supercalls;
	bool thread_page;
	bool file_table;
};

// Runs `main` as pid 1 with every combination of the three switches, under `seeds` seeds and
// one threads-mode run; `check` sees the System's counters afterwards.
void each_mode(const px::Main &main,
		const std::function<void(const px::Counters &, const Mode &)> &check = {},
		std::uint64_t seeds = 4) {
	for (int bits = 0; bits < 8; ++bits) {
		Mode mode{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0};
		SCOPED_TRACE(testing::Message() << "supercalls " << mode.supercalls << " thread_page "
										<< mode.thread_page << " file_table " << mode.file_table);
		for_each_mode(
				[&](const helsim::MachineConfig &config) {
					handled = 0;
					helsim::Machine machine{config};
					px::Options options;
					options.supercalls = mode.supercalls;
					options.thread_page = mode.thread_page;
					options.file_table = mode.file_table;
					px::System system{machine, quiet(options)};
					system.add_program("/bin/main", main);
					pid_t pid = system.spawn("/bin/main", {"main"});
					expect_clean(machine.run());
					EXPECT_EQ(exit_code(system, pid), 0);
					auto counters = system.counters();
					// The thread page's path alerts the queue; without the page only the
					// interrupt can reach a blocked thread.
					if (!mode.thread_page) {
						EXPECT_EQ(counters.alerts, 0u);
					}
					if (check)
						check(counters, mode);
				},
				seeds, 1);
	}
}

// The call was cancelled at its server.
void cancelled(const px::Counters &counters, const Mode &) {
	EXPECT_GE(counters.cancellations, 1u);
}

// Pipes shared by parent and child (fd numbers; the file table is cloned at the same fds).
struct Pipes {
	int blocked[2]; // the child blocks reading this one
	int report[2];  // the child reports on this one
};

// The child's side: its handler is installed (a signal before that would kill it).
void ready(const Pipes &p) { EXPECT_EQ(px::write(p.report[1], "r", 1), 1); }

// The parent's side of every case: once the child is ready, signals it until it reports (a
// signal that lands before the child blocks only runs the handler), and reads the report.
char signal_until_report(pid_t child, const Pipes &p) {
	char ready = 0;
	EXPECT_EQ(px::read(p.report[0], &ready, 1), 1);
	EXPECT_EQ(ready, 'r');
	pollfd report{p.report[0], POLLIN, 0};
	do
		EXPECT_EQ(px::kill(child, SIGUSR1), 0);
	while (px::poll(&report, 1, 5) == 0);
	char byte = 0;
	EXPECT_EQ(px::read(p.report[0], &byte, 1), 1);
	return byte;
}

// Forks `child` with fresh pipes, then closes the ends the parent does not use.
pid_t fork_with_pipes(Pipes &p, int (*child)(void *)) {
	EXPECT_EQ(px::pipe(p.blocked), 0);
	EXPECT_EQ(px::pipe(p.report), 0);
	pid_t pid = px::fork(child, &p);
	EXPECT_GT(pid, 0);
	px::close(p.blocked[0]);
	px::close(p.report[1]);
	return pid;
}

void reap(pid_t child) {
	int status = -1;
	EXPECT_EQ(px::waitpid(child, &status, 0), child);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(PosixEintr, ABlockedPipeReadReturnsEintrAndLosesNothing) {
	static Pipes p;
	each_mode(
			[](int, char **) {
				pid_t child = fork_with_pipes(p, [](void *) {
					px::close(p.blocked[1]);
					px::close(p.report[0]);
					EXPECT_EQ(install(SIGUSR1, 0), 0);
					ready(p);
					char byte = 0;
					EXPECT_EQ(px::read(p.blocked[0], &byte, 1), -EINTR);
					EXPECT_GE(handled.load(), 1); // the handler ran before read returned
					EXPECT_EQ(px::write(p.report[1], "e", 1), 1);
					// Written after the cancelled read: the next read gets it. (A signal the
					// parent sent again before it saw the report may interrupt that read too.)
					ssize_t n = 0;
					while ((n = px::read(p.blocked[0], &byte, 1)) == -EINTR) {
					}
					EXPECT_EQ(n, 1);
					EXPECT_EQ(byte, 'x');
					return 0;
				});
				EXPECT_EQ(signal_until_report(child, p), 'e');
				EXPECT_EQ(px::write(p.blocked[1], "x", 1), 1);
				reap(child);
				return 0;
			},
			[](const px::Counters &counters, const Mode &mode) {
				cancelled(counters, mode);
				if (mode.thread_page) {
					EXPECT_GE(counters.alerts, 1u);
				} else {
					EXPECT_GE(counters.interrupts, 1u);
				}
			});
}

TEST(PosixEintr, SaRestartRestartsABlockedRead) {
	static Pipes p;
	each_mode([](int, char **) {
		pid_t child = fork_with_pipes(p, [](void *) {
			px::close(p.blocked[1]);
			px::close(p.report[0]);
			EXPECT_EQ(install(SIGUSR1, SA_RESTART), 0);
			ready(p);
			char byte = 0;
			EXPECT_EQ(px::read(p.blocked[0], &byte, 1), 1); // never -EINTR
			EXPECT_EQ(byte, 'x');
			EXPECT_GE(handled.load(), 1);
			return 0;
		});
		char byte = 0;
		EXPECT_EQ(px::read(p.report[0], &byte, 1), 1); // the handler is installed
		// Signals until one has run the handler (inside the read, or before it).
		while (handled.load() == 0) {
			EXPECT_EQ(px::kill(child, SIGUSR1), 0);
			timespec tick{0, 1'000'000};
			px::nanosleep(&tick, nullptr);
		}
		EXPECT_EQ(px::write(p.blocked[1], "x", 1), 1);
		reap(child);
		return 0;
	});
}

TEST(PosixEintr, NanosleepReturnsEintrWithTheTimeLeft) {
	static Pipes p;
	each_mode(
			[](int, char **) {
				pid_t child = fork_with_pipes(p, [](void *) {
					px::close(p.blocked[1]);
					px::close(p.report[0]);
					EXPECT_EQ(install(SIGUSR1, SA_RESTART), 0); // nanosleep is never restarted
					ready(p);
					timespec request{3600, 0}, left{};
					EXPECT_EQ(px::nanosleep(&request, &left), -EINTR);
					EXPECT_GT(to_ns(left), 0);
					EXPECT_LE(to_ns(left), to_ns(request));
					EXPECT_GE(handled.load(), 1);
					EXPECT_EQ(px::write(p.report[1], "s", 1), 1);
					return 0;
				});
				EXPECT_EQ(signal_until_report(child, p), 's');
				reap(child);
				return 0;
			},
			// The kernel cancels the clock's wait: no server sees it.
			[](const px::Counters &counters, const Mode &) {
				EXPECT_EQ(counters.cancellations, 0u);
			});
}

TEST(PosixEintr, WaitpidReturnsEintrThenReapsTheChild) {
	static Pipes p;
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR1, 0), 0);
				// The child signals its parent until it is released (the parent may not be blocked
				// in waitpid yet when the first signal lands).
				pid_t child = fork_with_pipes(p, [](void *) {
					px::close(p.blocked[1]);
					px::close(p.report[0]);
					pollfd release{p.blocked[0], POLLIN, 0};
					do
						EXPECT_EQ(px::kill(px::getppid(), SIGUSR1), 0);
					while (px::poll(&release, 1, 5) == 0);
					return 0;
				});
				int status = -1;
				EXPECT_EQ(px::waitpid(child, &status, 0), -EINTR);
				EXPECT_GE(handled.load(), 1);
				px::close(p.blocked[1]); // releases the child: its poll sees POLLHUP
				// The child may signal again before it sees that.
				pid_t reaped = 0;
				while ((reaped = px::waitpid(child, &status, 0)) == -EINTR) {
				}
				EXPECT_EQ(reaped, child);
				EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
				px::close(p.report[0]);
				return 0;
			},
			cancelled);
}

TEST(PosixEintr, PollReturnsEintr) {
	static Pipes p;
	each_mode(
			[](int, char **) {
				pid_t child = fork_with_pipes(p, [](void *) {
					px::close(p.blocked[1]);
					px::close(p.report[0]);
					EXPECT_EQ(install(SIGUSR1, SA_RESTART), 0); // poll is never restarted
					ready(p);
					pollfd empty{p.blocked[0], POLLIN, 0};
					EXPECT_EQ(px::poll(&empty, 1, -1), -EINTR);
					EXPECT_GE(handled.load(), 1);
					EXPECT_EQ(px::write(p.report[1], "p", 1), 1);
					return 0;
				});
				EXPECT_EQ(signal_until_report(child, p), 'p');
				px::close(p.blocked[1]);
				reap(child);
				return 0;
			},
			cancelled);
}

// ppoll's mask: a signal blocked before the call and pending when the mask unblocks it runs its
// handler, and ppoll returns -EINTR at once instead of waiting (Linux sets the mask atomically
// with the wait; here the wait counts handlers from before the mask was set).
TEST(PosixEintr, PpollEndsForASignalItsMaskUnblocks) {
	static Pipes p;
	each_mode([](int, char **) {
		EXPECT_EQ(px::pipe(p.blocked), 0);
		EXPECT_EQ(install(SIGUSR1, 0), 0);
		sigset_t usr1, none;
		sigemptyset(&usr1);
		sigaddset(&usr1, SIGUSR1);
		sigemptyset(&none);
		EXPECT_EQ(px::sigprocmask(SIG_BLOCK, &usr1, nullptr), 0);
		EXPECT_EQ(px::raise(SIGUSR1), 0); // pending
		EXPECT_EQ(handled.load(), 0);
		pollfd empty{p.blocked[0], POLLIN, 0};
		EXPECT_EQ(px::ppoll(&empty, 1, nullptr, &none), -EINTR);
		EXPECT_EQ(handled.load(), 1);
		sigset_t now;
		EXPECT_EQ(px::sigprocmask(SIG_BLOCK, nullptr, &now), 0);
		EXPECT_TRUE(sigismember(&now, SIGUSR1)); // the old mask is back
		px::close(p.blocked[0]);
		px::close(p.blocked[1]);
		return 0;
	});
}

// A process killed while its read waits: the read is cancelled with it, and the run ends clean
// (each_mode checks the report: nothing leaked or pending).
TEST(PosixEintr, AProcessKilledInABlockedReadLeaksNothing) {
	static Pipes p;
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/main", [](int, char **) {
					pid_t child = fork_with_pipes(p, [](void *) {
						px::close(p.blocked[1]);
						px::close(p.report[0]);
						EXPECT_EQ(px::write(p.report[1], "r", 1), 1);
						char byte = 0;
						px::read(p.blocked[0], &byte, 1);
						ADD_FAILURE() << "the read ended";
						return 1;
					});
					char byte = 0;
					EXPECT_EQ(px::read(p.report[0], &byte, 1), 1);
					EXPECT_EQ(px::kill(child, SIGKILL), 0);
					int status = 0;
					EXPECT_EQ(px::waitpid(child, &status, 0), child);
					EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
					return 0;
				});
				pid_t pid = system.spawn("/bin/main", {"main"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
			},
			8, 2);
}

} // namespace
