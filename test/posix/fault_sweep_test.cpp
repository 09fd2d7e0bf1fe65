// Fault sweeps of the POSIX layer's common path, device files and processes (docs/testing.md,
// "Fault sweeps"; what a clean run is: fault_sweep_support.hpp).
#include "fault_sweep_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <helsim/posix.hpp>
#include <helsim/posix_device.hpp>

namespace {

using namespace helsim::posix_sweep;
using helsim::FaultPoint;

constexpr std::size_t kPage = 4096;

// ---------------------------------------------------------------- files

// The common path of one process: ids and clocks, a pipe, a tmpfs file, dup, anonymous memory.
int files(Seen &seen) {
	posix_ok(seen, px::getpid(), "getpid");
	posix_ok(seen, px::gettid(), "gettid");
	timespec now{};
	posix_ok(seen, px::clock_gettime(CLOCK_REALTIME, &now), "clock_gettime");

	int fds[2];
	if (posix_ok(seen, px::pipe(fds), "pipe")) {
		if (posix_ok(seen, px::write(fds[1], "ping", 4), "write")) {
			char buffer[8] = {};
			if (posix_ok(seen, px::read(fds[0], buffer, sizeof buffer), "read")) {
				EXPECT_EQ(std::string_view(buffer), "ping");
			}
		}
		close_fd(seen, fds[1]);
		close_fd(seen, fds[0]);
	}

	int fd = px::open("/tmp/sweep", O_CREAT | O_RDWR, 0644);
	if (posix_ok(seen, fd, "open")) {
		if (posix_ok(seen, px::write(fd, "hello", 5), "write") &&
				posix_ok(seen, px::lseek(fd, 0, SEEK_SET), "lseek")) {
			char buffer[8] = {};
			if (posix_ok(seen, px::read(fd, buffer, sizeof buffer), "read")) {
				EXPECT_EQ(std::string_view(buffer), "hello");
			}
		}
		struct stat status {};
		posix_ok(seen, px::fstat(fd, &status), "fstat");
		int copy = px::dup(fd);
		if (posix_ok(seen, copy, "dup"))
			close_fd(seen, copy);
		close_fd(seen, fd);
		posix_ok(seen, px::unlink("/tmp/sweep"), "unlink");
	}

	void *memory = px::mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (!px::mmap_failed(memory))
		posix_ok(seen, px::munmap(memory, 2 * kPage), "munmap");
	else
		posix_ok(seen, reinterpret_cast<std::intptr_t>(memory), "mmap");
	return 0;
}

TEST(FaultSweep, PosixFiles) {
	sweep_posix("posix files",
			{{"/bin/files", [](Seen &seen, int, char **) { return files(seen); }}});
}

// The paths before the acceleration strategies: requests instead of supercalls, file calls
// forwarded by the server, no pages, one submission per action.
TEST(FaultSweep, PosixFilesWithoutAcceleration) {
	sweep_posix("posix files without acceleration",
			{{"/bin/files", [](Seen &seen, int, char **) { return files(seen); }}},
			{.supercalls = false,
					.file_table = false,
					.thread_page = false,
					.clock_page = false,
					.batching = false});
}

// ---------------------------------------------------------------- readiness

// An eventfd, and poll and epoll on a pipe.
int readiness(Seen &seen) {
	int event = px::eventfd(0, 0);
	if (posix_ok(seen, event, "eventfd")) {
		std::uint64_t one = 1, got = 0;
		if (posix_ok(seen, px::write(event, &one, sizeof one), "write")) {
			EXPECT_EQ(again(seen, "read", [&] { return px::read(event, &got, sizeof got); }), 8);
		}
		close_fd(seen, event);
	}
	int fds[2];
	if (posix_ok(seen, px::pipe(fds), "pipe")) {
		if (posix_ok(seen, px::write(fds[1], "p", 1), "write")) {
			pollfd watched{fds[0], POLLIN, 0};
			if (posix_ok(seen, px::poll(&watched, 1, -1), "poll")) {
				EXPECT_EQ(watched.revents & POLLIN, POLLIN);
			}
			int epoll = px::epoll_create1(0);
			if (posix_ok(seen, epoll, "epoll_create1")) {
				epoll_event interest{};
				interest.events = EPOLLIN;
				if (posix_ok(seen, px::epoll_ctl(epoll, EPOLL_CTL_ADD, fds[0], &interest),
							"epoll_ctl")) {
					epoll_event ready{};
					posix_ok(seen, px::epoll_wait(epoll, &ready, 1, -1), "epoll_wait");
				}
				close_fd(seen, epoll);
			}
		}
		close_fd(seen, fds[0]);
		close_fd(seen, fds[1]);
	}
	return 0;
}

TEST(FaultSweep, PosixReadiness) {
	sweep_posix("posix readiness",
			{{"/bin/readiness", [](Seen &seen, int, char **) { return readiness(seen); }}});
}

// ---------------------------------------------------------------- device files

std::shared_ptr<px::QueueDevice> queue; // the device of the run in progress

// A fresh /dev/queue for each run.
void add_queue(px::System &system) {
	queue = std::make_shared<px::QueueDevice>();
	system.add_device("/dev/queue", queue);
}

// /bin/pusher: Device::changed() from another process, which wakes a wait blocked on it.
int pusher(Seen &, int, char **) {
	queue->push("x");
	return 0;
}

// Reads one byte that must be there.
void read_byte(Seen &seen, int fd, char expected) {
	char byte = 0;
	EXPECT_EQ(again(seen, "read", [&] { return px::read(fd, &byte, 1); }), 1);
	EXPECT_EQ(byte, expected);
}

// Polls fd for POLLIN until the pusher's byte arrives (the pusher pushes while the poll
// waits, or before). The first poll's timeout is long in virtual time, which advances only by
// the work done: it ends the wait only when nothing else can run, a pusher that could not
// start; then we push.
void poll_for_push(Seen &seen, int fd) {
	constexpr int kIdle = 10'000;
	const char *argv[] = {"pusher", nullptr};
	pid_t pid = px::spawn("/bin/pusher", argv);
	if (!posix_ok(seen, pid, "spawn", {-ENOMEM, -EAGAIN}))
		queue->push("x");
	pollfd watched{fd, POLLIN, 0};
	std::int64_t ready = again(seen, "poll", [&] { return px::poll(&watched, 1, kIdle); });
	int status = 0;
	if (pid > 0) {
		EXPECT_EQ(again(seen, "waitpid", [&] { return px::waitpid(pid, &status, 0); }), pid);
		if (status == W_EXITCODE(127, 0))
			++seen.failures; // it could not be started
		else
			EXPECT_EQ(status, 0);
	}
	if (ready == 0) {
		EXPECT_EQ(status, W_EXITCODE(127, 0)) << "only a pusher that never ran leaves it idle";
		queue->push("x");
		ready = again(seen, "poll", [&] { return px::poll(&watched, 1, -1); });
	}
	EXPECT_EQ(ready, 1);
	EXPECT_EQ(watched.revents, POLLIN);
	read_byte(seen, fd, 'x');
}

// A device opened (its server started by the first open, again by the next if it could not
// start), read empty and after a write, polled while another process pushes, waited on with
// epoll, opened a second time, closed.
int devices(Seen &seen) {
	int fd = static_cast<int>(again(seen, "open", [] { return px::open("/dev/queue", O_RDWR); }));
	if (fd < 0) {
		ADD_FAILURE() << "open: " << fd;
		return 0;
	}
	char byte = 0;
	EXPECT_EQ(again(seen, "read", [&] { return px::read(fd, &byte, 1); }), -EAGAIN);
	EXPECT_EQ(again(seen, "write", [&] { return px::write(fd, "a", 1); }), 1);
	read_byte(seen, fd, 'a');
	poll_for_push(seen, fd);

	int epoll = px::epoll_create1(0);
	if (posix_ok(seen, epoll, "epoll_create1")) {
		epoll_event interest{};
		interest.events = EPOLLIN;
		if (posix_ok(seen, px::epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &interest), "epoll_ctl")) {
			queue->push("y");
			epoll_event ready{};
			EXPECT_EQ(again(seen, "epoll_wait",
							  [&] { return px::epoll_wait(epoll, &ready, 1, -1); }),
					1);
			read_byte(seen, fd, 'y');
		}
		close_fd(seen, epoll);
	}

	int second = px::open("/dev/queue", O_RDWR);
	if (posix_ok(seen, second, "open")) {
		EXPECT_EQ(again(seen, "write", [&] { return px::write(second, "b", 1); }), 1);
		read_byte(seen, fd, 'b');
		close_fd(seen, second);
	}
	close_fd(seen, fd);
	return 0;
}

const std::vector<std::pair<std::string, Program>>
		kDevicePrograms{{"/bin/devices", [](Seen &seen, int, char **) { return devices(seen); }},
				{"/bin/pusher", pusher}};

TEST(FaultSweep, PosixDeviceFiles) {
	sweep_posix("posix device files", kDevicePrograms, {}, kAllPoints, add_queue);
	sweep_posix("posix device files without status pages", kDevicePrograms, {.status_page = false},
			kAllPoints, add_queue);
}

// ---------------------------------------------------------------- processes

// /bin/child FD writes "child" to FD: exits 0, or 1 if the write failed with -ENOMEM.
int child(Seen &seen, int argc, char **argv) {
	if (argc < 2)
		return 2;
	return posix_ok(seen, px::write(std::atoi(argv[1]), "child", 5), "write") ? 0 : 1;
}

// Reads what the children wrote until every write end is closed.
std::string drain(Seen &seen, int fd) {
	std::string text;
	char buffer[16];
	for (;;) {
		std::int64_t n = again(seen, "read", [&] { return px::read(fd, buffer, sizeof buffer); });
		if (n <= 0) {
			EXPECT_EQ(n, 0);
			return text;
		}
		text.append(buffer, static_cast<std::size_t>(n));
	}
}

// A child made by spawn, and one made by fork that execs /bin/child: each writes to a pipe
// the parent reads, and the parent waits for both.
int processes(Seen &seen) {
	int fds[2];
	if (!posix_ok(seen, px::pipe(fds), "pipe"))
		return 0;
	std::string fd = std::to_string(fds[1]);
	const char *argv[] = {"child", fd.c_str(), nullptr};
	pid_t spawned = px::spawn("/bin/child", argv);
	posix_ok(seen, spawned, "spawn", {-ENOMEM, -EAGAIN});
	// The forked child runs on host memory it shares with the parent: `exec` is not translated.
	struct Exec {
		Seen *seen;
		char *fd;
	} exec{&seen, fd.data()};
	pid_t forked = px::fork(
			[](void *arg) {
				auto *exec = static_cast<Exec *>(arg);
				char *args[] = {const_cast<char *>("child"), exec->fd, nullptr};
				// execve returns only on failure: the child exits 1 as /bin/child's write would.
				posix_ok(*exec->seen, px::execve("/bin/child", args, nullptr), "execve");
				return 1;
			},
			&exec);
	posix_ok(seen, forked, "fork");
	close_fd(seen, fds[1]);
	std::string text = drain(seen, fds[0]);
	int expected = 0;
	for (pid_t pid : {spawned, forked}) {
		if (pid <= 0)
			continue;
		int status = 0;
		if (again(seen, "waitpid", [&] { return px::waitpid(pid, &status, 0); }) != pid) {
			ADD_FAILURE() << "waitpid";
			continue;
		}
		EXPECT_TRUE(WIFEXITED(status)) << "status " << status;
		if (WEXITSTATUS(status) == 0)
			++expected;
		else if (WEXITSTATUS(status) == 127)
			++seen.failures; // it could not be started
		else
			EXPECT_EQ(WEXITSTATUS(status), 1) << "a child fails only with -ENOMEM";
	}
	EXPECT_EQ(text.size(), expected * std::string_view("child").size()) << text;
	close_fd(seen, fds[0]);
	return 0;
}

TEST(FaultSweep, PosixProcesses) {
	sweep_posix("posix processes",
			{{"/bin/processes", [](Seen &seen, int, char **) { return processes(seen); }},
					{"/bin/child", child}});
}

// ---------------------------------------------------------------- what the sweeps found

// The server's queue, its clock tracker page and a process's client queue: a server that
// could not make its own threw out of its thread (and the host's spawn never ended), the
// server faulted on a shared page whose frame it could not allocate, and a client that could
// not make its queue threw (SIGABRT). Now the spawn ends with 127, as a program that could not
// be started.
TEST(FaultSweepFinding, PosixStartOfTheServerOrAProcessThatFailsEndsTheSpawnWith127) {
	sweep_posix("posix start", {{"/bin/true", [](Seen &, int, char **) { return 0; }}});
}

// The next spawn after a server that could not start starts a new one, which serves it.
TEST(FaultSweepFinding, PosixServerThatCouldNotStartIsStartedAgainByTheNextSpawn) {
	auto config = helsim::testing::deterministic(1);
	config.inject.at(FaultPoint::queue_chunks) = 1; // the server's queue, made first
	helsim::Machine machine{config};
	px::System system{machine, px::Options{.console = [](std::string_view) {}}};
	system.add_program("/bin/true", [](int, char **) { return 0; });
	pid_t first = system.spawn("/bin/true", {"true"});
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(system.exit_status(first), W_EXITCODE(127, 0));
	pid_t second = system.spawn("/bin/true", {"true"});
	helsim::test::expect_clean(machine.run());
	EXPECT_EQ(system.exit_status(second), W_EXITCODE(0, 0));
}

// Requests whose conversation the kernel could not make (an offer/accept pairing fails on both
// sides): the server's accept loop took the failure for the lane's end and stopped serving it,
// so that every later call on it was -EIO (POSIX lane) or -EBADF (a file's lane), and fstat,
// a forwarded file request and a file's lane said -EIO for the failure itself. Now each is
// -ENOMEM, and the next call is served; an _exit request asks again.
int served_on(Seen &seen) {
	again(seen, "getpid", [] { return px::getpid(); });
	struct stat status {};
	again(seen, "fstat", [&] { return px::fstat(1, &status); });
	int fds[2];
	if (again(seen, "pipe", [&] { return px::pipe(fds); }) == 0) {
		EXPECT_EQ(again(seen, "write", [&] { return px::write(fds[1], "x", 1); }), 1);
		char byte = 0;
		EXPECT_EQ(again(seen, "read", [&] { return px::read(fds[0], &byte, 1); }), 1);
		EXPECT_EQ(again(seen, "lseek", [&] { return px::lseek(fds[0], 0, SEEK_SET); }), -ESPIPE);
		close_fd(seen, fds[0]);
		close_fd(seen, fds[1]);
	}
	return 0;
}

TEST(FaultSweepFinding, PosixCallWhoseConversationCannotBeMadeIsENOMEMAndTheNextIsServed) {
	Program program = [](Seen &seen, int, char **) { return served_on(seen); };
	sweep_posix("posix conversations", {{"/bin/served", program}});
	sweep_posix("posix conversations, forwarded and unbatched", {{"/bin/served", program}},
			{.supercalls = false, .file_table = false, .batching = false});
}

// A universe's handle table grows a segment every 1024 handles, and handle values are not
// reused: a process that dup2s a thousand times grows its own and the server's. A passthrough
// lane the process's universe could not take was -EMFILE, and dup2 had already closed the fd it
// was to replace; now it is -ENOMEM and that fd stays open.
TEST(FaultSweepFinding, PosixDup2WhoseHandleCannotBeAttachedIsENOMEMAndKeepsTheFd) {
	constexpr FaultPoint kGrowth[] = {FaultPoint::handle_table_growth};
	sweep_posix("posix dup2",
			{{"/bin/dup2",
					[](Seen &seen, int, char **) {
						for (int i = 0; i < 1100; ++i) {
							std::int64_t fd = px::dup2(1, 10);
							if (!posix_ok(seen, fd, "dup2")) {
								struct stat status {};
								EXPECT_EQ(px::fstat(10, &status), i ? 0 : -EBADF) << i;
							}
						}
						return 0;
					}}},
			{}, kGrowth);
}

// ---------------------------------------------------------------- what the device sweep found

// An open whose device server could not start, or could not take the description: the device
// server threw when it could not make its queue, its doorbell's stream or queue, or the POSIX
// server the control lane ("helCreateStream failed (device control)"); it faulted writing a
// status page whose lazy frame could not be allocated; and the open returned an fd whose lane
// no device server served (its read waited for ever). Now the open is -ENOMEM, and the next
// open starts the server again and is served.
TEST(FaultSweepFinding, PosixDeviceOpenThatFailsIsENOMEMAndTheNextOpenIsServed) {
	Program program = [](Seen &seen, int, char **) {
		int fd = static_cast<int>(
				again(seen, "open", [] { return px::open("/dev/queue", O_RDWR); }));
		EXPECT_GE(fd, 0);
		if (fd >= 0) {
			EXPECT_EQ(again(seen, "write", [&] { return px::write(fd, "a", 1); }), 1);
			read_byte(seen, fd, 'a');
			close_fd(seen, fd);
		}
		return 0;
	};
	sweep_posix("posix device open", {{"/bin/open", program}}, {}, kAllPoints, add_queue);
}

// A poll blocked on a device wakes when another process pushes: the doorbell's ring and the
// POSIX server's long-poll are requests too. One the kernel could not make was dropped (the
// doorbell, or the long-poll, stopped), and the poll waited for ever. Now each is made again.
TEST(FaultSweepFinding, PosixDeviceWaitIsWokenWhenARingOrLongPollCannotBeMade) {
	Program program = [](Seen &seen, int, char **) {
		int fd = static_cast<int>(
				again(seen, "open", [] { return px::open("/dev/queue", O_RDWR); }));
		if (fd >= 0) {
			poll_for_push(seen, fd);
			close_fd(seen, fd);
		}
		return 0;
	};
	sweep_posix("posix device wake-up", {{"/bin/wait", program}, {"/bin/pusher", pusher}}, {},
			kAllPoints, add_queue);
}

// Without status pages, poll asks the device server: a request the kernel could not make
// was POLLERR for the device. Now the poll is -ENOMEM.
TEST(FaultSweepFinding, PosixDevicePollWhoseQueryCannotBeMadeIsENOMEM) {
	Program program = [](Seen &seen, int, char **) {
		int fd = static_cast<int>(
				again(seen, "open", [] { return px::open("/dev/queue", O_RDWR); }));
		for (int i = 0; fd >= 0 && i < 8; ++i) {
			pollfd watched{fd, POLLIN | POLLOUT, 0};
			if (posix_ok(seen, px::poll(&watched, 1, 0), "poll")) {
				EXPECT_EQ(watched.revents, POLLOUT);
			}
		}
		if (fd >= 0)
			close_fd(seen, fd);
		return 0;
	};
	sweep_posix("posix device poll", {{"/bin/poll", program}}, {.status_page = false}, kAllPoints,
			add_queue);
}

} // namespace
