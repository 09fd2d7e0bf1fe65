// The fault sweep of signal delivery (docs/testing.md, "Fault sweeps"; what a clean run is:
// fault_sweep_support.hpp). A frame that cannot be placed (the lazily allocated signal stack,
// or a page of the stack the frame goes on) kills the process with SIGSEGV, as Linux does; its
// parent's waitpid must see that death, which is then the run's one failure.
#include "fault_sweep_support.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <helsim/posix.hpp>

namespace {

using namespace helsim::posix_sweep;

constexpr std::size_t kAltStackSize = 16384;

// What the handlers of /bin/handlers saw: a handler is a plain function, and one run is in
// progress at a time.
struct Handled {
	Seen *seen = nullptr;
	std::uintptr_t altstack = 0;
	std::atomic<int> plain{0}, nested{0}, restarting{0};
	std::atomic<bool> on_altstack{false};
} handled;

// SIGUSR2, SA_ONSTACK: runs nested inside SIGUSR1's handler, on the alternate stack.
void nested_handler(int, siginfo_t *, void *context) {
	auto at = reinterpret_cast<std::uintptr_t>(context);
	handled.on_altstack = at >= handled.altstack && at < handled.altstack + kAltStackSize;
	++handled.nested;
}

// SIGUSR1: raises SIGUSR2, whose handler runs before the raise returns.
void plain_handler(int) {
	++handled.plain;
	EXPECT_EQ(again(*handled.seen, "raise", [] { return px::raise(SIGUSR2); }), 0);
	EXPECT_EQ(handled.nested.load(), 1);
}

// SIGINT, SA_RESTART: interrupts the blocked read, which goes on.
void restarting_handler(int) { ++handled.restarting; }

int install(Seen &seen, int signo, void (*handler)(int), void (*action)(int, siginfo_t *, void *),
		int flags) {
	struct sigaction wanted {};
	if (action)
		wanted.sa_sigaction = action;
	else
		wanted.sa_handler = handler;
	wanted.sa_flags = flags | (action ? SA_SIGINFO : 0);
	sigemptyset(&wanted.sa_mask);
	return static_cast<int>(
			again(seen, "sigaction", [&] { return px::sigaction(signo, &wanted, nullptr); }));
}

// Nothing is blocked: each handler's mask went with its frame.
void expect_unblocked(Seen &seen) {
	sigset_t mask;
	EXPECT_EQ(again(seen, "sigprocmask",
					  [&] { return px::sigprocmask(SIG_BLOCK, nullptr, &mask); }),
			0);
	EXPECT_TRUE(sigisemptyset(&mask));
}

// /bin/handlers READY DATA: a plain handler, an SA_ONSTACK one on a sigaltstack and an
// SA_RESTART one; raises SIGUSR1 to itself (whose handler nests SIGUSR2's), writes to READY, and
// reads DATA while its parent sends SIGINT and then writes.
int handlers(Seen &seen, int argc, char **argv) {
	if (argc < 3)
		return 2;
	int ready = std::atoi(argv[1]), data = std::atoi(argv[2]);
	handled.seen = &seen;
	void *area = nullptr;
	again(seen, "mmap", [&] {
		area = px::mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0);
		return px::mmap_failed(area) ? reinterpret_cast<std::intptr_t>(area) : 0;
	});
	if (px::mmap_failed(area))
		return 3;
	handled.altstack = reinterpret_cast<std::uintptr_t>(area);
	stack_t alt{area, 0, kAltStackSize};
	EXPECT_EQ(again(seen, "sigaltstack", [&] { return px::sigaltstack(&alt, nullptr); }), 0);
	EXPECT_EQ(install(seen, SIGUSR1, plain_handler, nullptr, 0), 0);
	EXPECT_EQ(install(seen, SIGUSR2, nullptr, nested_handler, SA_ONSTACK), 0);
	EXPECT_EQ(install(seen, SIGINT, restarting_handler, nullptr, SA_RESTART), 0);

	EXPECT_EQ(again(seen, "raise", [] { return px::raise(SIGUSR1); }), 0);
	EXPECT_EQ(handled.plain.load(), 1);
	EXPECT_EQ(handled.nested.load(), 1);
	EXPECT_TRUE(handled.on_altstack.load());
	expect_unblocked(seen); // both handlers returned through the restorer

	EXPECT_EQ(again(seen, "write", [&] { return px::write(ready, "r", 1); }), 1);
	char byte = 0;
	EXPECT_EQ(again(seen, "read", [&] { return px::read(data, &byte, 1); }), 1);
	EXPECT_EQ(byte, 'd');
	EXPECT_EQ(handled.restarting.load(), 1);
	return 0;
}

// /bin/victim HOLD: blocks reading HOLD, which nobody writes, until SIGTERM's default action
// ends it.
int victim(Seen &seen, int argc, char **argv) {
	if (argc < 2)
		return 2;
	char byte = 0;
	std::int64_t n = again(seen, "read", [&] { return px::read(std::atoi(argv[1]), &byte, 1); });
	ADD_FAILURE() << "the read of a victim returned " << n;
	return 3;
}

// Waits for `pid`, which must end `expected`, or with a documented failure (the run's one):
// W_EXITCODE(127, 0) if it could not be started, SIGSEGV if a frame could not be placed.
void reap(Seen &seen, pid_t pid, int expected) {
	int status = 0;
	ASSERT_EQ(again(seen, "waitpid", [&] { return px::waitpid(pid, &status, 0); }), pid);
	if (status == expected)
		return;
	if (status == W_EXITCODE(127, 0) || (WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV))
		++seen.failures;
	else
		ADD_FAILURE() << "pid " << pid << " ended with status " << status;
}

pid_t spawn(Seen &seen, const char *const argv[]) {
	pid_t pid = px::spawn((std::string{"/bin/"} + argv[0]).c_str(), argv);
	posix_ok(seen, pid, "spawn", {-ENOMEM, -EAGAIN});
	return pid;
}

int make_pipe(Seen &seen, int fds[2]) {
	return static_cast<int>(again(seen, "pipe", [&] { return px::pipe(fds); }));
}

// Spawns /bin/NAME READY DATA and, once it is about to block in its read of DATA, sends it
// SIGINT and writes its byte; reaps it.
void signal_child(Seen &seen, const char *name) {
	handled.plain = handled.nested = handled.restarting = 0;
	handled.on_altstack = false;
	int ready[2], data[2];
	if (make_pipe(seen, ready) != 0 || make_pipe(seen, data) != 0) {
		ADD_FAILURE() << "pipe";
		return;
	}
	std::string ready_fd = std::to_string(ready[1]), data_fd = std::to_string(data[0]);
	const char *argv[] = {name, ready_fd.c_str(), data_fd.c_str(), nullptr};
	pid_t child = spawn(seen, argv);
	// The read of READY ends at the child's byte, or at its end (it died, or never started).
	close_fd(seen, ready[1]);
	char byte = 0;
	if (again(seen, "read", [&] { return px::read(ready[0], &byte, 1); }) == 1) {
		EXPECT_EQ(again(seen, "kill", [&] { return px::kill(child, SIGINT); }), 0);
	}
	EXPECT_EQ(again(seen, "write", [&] { return px::write(data[1], "d", 1); }), 1);
	if (child > 0)
		reap(seen, child, W_EXITCODE(0, 0));
	for (int fd : {ready[0], data[0], data[1]})
		close_fd(seen, fd);
}

// /bin/signals: /bin/handlers as signal_child() runs it, then spawns /bin/victim and kills it
// with SIGTERM, and reaps it.
int signals(Seen &seen, int, char **) {
	signal_child(seen, "handlers");
	int hold[2];
	if (make_pipe(seen, hold) != 0) {
		ADD_FAILURE() << "pipe";
		return 0;
	}
	std::string hold_fd = std::to_string(hold[0]);
	const char *victim_argv[] = {"victim", hold_fd.c_str(), nullptr};
	pid_t killed = spawn(seen, victim_argv);
	if (killed > 0) {
		EXPECT_EQ(again(seen, "kill", [&] { return px::kill(killed, SIGTERM); }), 0);
		reap(seen, killed, SIGTERM);
	}
	close_fd(seen, hold[0]);
	close_fd(seen, hold[1]);
	return 0;
}

const std::vector<std::pair<std::string, Program>> kPrograms{{"/bin/signals", signals},
		{"/bin/handlers", handlers}, {"/bin/victim", victim}};

TEST(FaultSweep, PosixSignalHandlers) {
	sweep_posix("posix signal handlers", kPrograms);
	// Every signal call a request (the restorer's too), with the thread page's deferral and
	// alert, and with a stop by helInterruptThread instead.
	sweep_posix("posix signal handlers without supercalls", kPrograms, {.supercalls = false});
	sweep_posix("posix signal handlers without supercalls or thread page", kPrograms,
			{.supercalls = false, .thread_page = false});
}

// ---------------------------------------------------------------- what the sweep found

// raise() is kill(getpid(), signo): a getpid whose request failed gave kill -ENOMEM as its
// pid, which kill took for process group 12 (-ESRCH, or a signal to another process). Now
// raise returns getpid's -ENOMEM. /bin/raise runs as a child: a frame that could not be placed
// kills it, and its parent must see that.
int raise_once(Seen &seen, int, char **) {
	handled.restarting = 0;
	EXPECT_EQ(install(seen, SIGINT, restarting_handler, nullptr, 0), 0);
	if (posix_ok(seen, px::raise(SIGINT), "raise")) {
		EXPECT_EQ(handled.restarting.load(), 1);
	}
	return 0;
}

TEST(FaultSweepFinding, PosixSignalRaiseWhoseGetpidFailsIsENOMEM) {
	constexpr helsim::FaultPoint kCreation[] = {helsim::FaultPoint::object_creation};
	Program parent = [](Seen &seen, int, char **) {
		const char *argv[] = {"raise", nullptr};
		if (pid_t child = spawn(seen, argv); child > 0)
			reap(seen, child, W_EXITCODE(0, 0));
		return 0;
	};
	sweep_posix("posix raise", {{"/bin/parent", parent}, {"/bin/raise", raise_once}}, {},
			kCreation);
}

// A process killed while it runs (not blocked) goes on to its next cancellation point
// (docs/fidelity.md, "Thread lifetime"). The server ended the process (closed its fds and its
// lane) before it killed the thread, and the thread could run in between: /bin/victim's read
// found its fd closed and returned -EBADF without a syscall, and its _exit request met the
// ended lane and threw "the server did not take the exit". Now the kill comes first, and a
// read that finds no fd passes a cancellation point, where the kill unwinds it. The sweep's
// workload without faults under many seeds (seed 45 did it).
TEST(FaultSweepFinding, PosixSignalProcessKilledWhileRunningNeverSeesItsFdsClosed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				PosixRun run;
				helsim::Machine machine{helsim::testing::deterministic(seed)};
				run.start(machine, kPrograms, {.supercalls = false, .thread_page = false}, {});
				helsim::test::expect_clean(machine.run(),
						{helsim::ThreadOutcome::returned, helsim::ThreadOutcome::killed});
				run.finish();
			},
			60);
}

// With supercalls off the restorer's return and the thread page's deferred raise are requests:
// one the kernel could not carry (-ENOMEM) was dropped, so the handler's mask stayed (SIGINT
// blocked for good) and its frame stayed recorded, or the deferred SIGINT was never
// delivered. Now each is made again. /bin/guarded raises SIGINT (a restore), then its parent
// sends it one inside the read's SignalGuard (a deferred raise).
int guarded(Seen &seen, int argc, char **argv) {
	if (argc < 3)
		return 2;
	EXPECT_EQ(install(seen, SIGINT, restarting_handler, nullptr, SA_RESTART), 0);
	EXPECT_EQ(again(seen, "raise", [] { return px::raise(SIGINT); }), 0);
	expect_unblocked(seen);
	EXPECT_EQ(again(seen, "write", [&] { return px::write(std::atoi(argv[1]), "r", 1); }), 1);
	char byte = 0;
	EXPECT_EQ(again(seen, "read", [&] { return px::read(std::atoi(argv[2]), &byte, 1); }), 1);
	EXPECT_EQ(handled.restarting.load(), 2);
	return 0;
}

TEST(FaultSweepFinding, PosixSignalRestoreOrDeferredRaiseWhoseRequestFailsIsMadeAgain) {
	constexpr helsim::FaultPoint kCreation[] = {helsim::FaultPoint::object_creation};
	Program parent = [](Seen &seen, int, char **) {
		signal_child(seen, "guarded");
		return 0;
	};
	sweep_posix("posix restore and deferred raise",
			{{"/bin/parent", parent}, {"/bin/guarded", guarded}}, {.supercalls = false}, kCreation);
}

} // namespace
