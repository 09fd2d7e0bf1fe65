// test/posix/signal_test.cpp tests src/posix/signals.cpp and client_signals.cpp: dispositions,
// masks, pending sets, delivery by frame and upcall, the restorer, and the signal calls, with
// supercalls and the thread page each on and off.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>

#include <helsim/posix.hpp>

#include "../../src/posix/signals.hpp"
#include "posix_support.hpp"

namespace protocol = helsim::posix::protocol;

namespace px = helsim::posix;
using namespace helsim::posix::test;

namespace {

// What handlers saw; a handler is a plain function, so it reports through globals (one
// process runs at a time in these tests, and reads happen after its run).
struct Seen {
	std::atomic<int> runs{0};
	std::atomic<int> last_signo{0};
	std::atomic<int> order[8]{};
	std::atomic<int> code{0};
	std::atomic<int> pid{0};
	std::atomic<std::uint64_t> mask{0};
	std::atomic<std::uintptr_t> context{0};
	void reset() {
		runs = 0;
		last_signo = 0;
		code = 0;
		pid = 0;
		mask = 0;
		context = 0;
		for (auto &o : order)
			o = 0;
	}
} seen;

std::uint64_t current_mask() {
	sigset_t old;
	EXPECT_EQ(px::sigprocmask(SIG_BLOCK, nullptr, &old), 0);
	std::uint64_t bits = 0;
	std::memcpy(&bits, &old, sizeof(bits));
	return bits;
}

constexpr std::uint64_t bit(int signo) { return std::uint64_t{1} << (signo - 1); }

void record(int signo) {
	int n = seen.runs.fetch_add(1);
	if (n < 8)
		seen.order[n] = signo;
	seen.last_signo = signo;
	seen.mask = current_mask();
}

void plain_handler(int signo) { record(signo); }

void info_handler(int signo, siginfo_t *info, void *context) {
	record(signo);
	seen.code = info->si_code;
	seen.pid = info->si_pid;
	seen.context = reinterpret_cast<std::uintptr_t>(context);
}

int install(int signo, void (*handler)(int), int flags = 0, std::uint64_t mask = 0) {
	struct sigaction action {};
	action.sa_handler = handler;
	action.sa_flags = flags;
	sigemptyset(&action.sa_mask);
	std::memcpy(&action.sa_mask, &mask, sizeof(mask));
	return px::sigaction(signo, &action, nullptr);
}

int install_info(int signo, int flags = 0) {
	struct sigaction action {};
	action.sa_sigaction = info_handler;
	action.sa_flags = SA_SIGINFO | flags;
	sigemptyset(&action.sa_mask);
	return px::sigaction(signo, &action, nullptr);
}

int block(std::uint64_t set, int how = SIG_BLOCK) {
	sigset_t s;
	sigemptyset(&s);
	std::memcpy(&s, &set, sizeof(set));
	return px::sigprocmask(how, &s, nullptr);
}

std::uint64_t pending() {
	sigset_t s;
	EXPECT_EQ(px::sigpending(&s), 0);
	std::uint64_t bits = 0;
	std::memcpy(&bits, &s, sizeof(bits));
	return bits;
}

struct Mode {
	bool supercalls;
	bool thread_page;
};
constexpr Mode kModes[] = {{true, true}, {true, false}, {false, true}, {false, false}};

// Runs one program as pid 1 in every mode (supercalls and thread page on and off) under
// `seeds` seeds and `threads_runs` threads-mode runs; `check` sees the System after the run.
void each_mode(const px::Main &main,
		const std::function<void(px::System &, pid_t, const Mode &)> &check,
		std::uint64_t seeds = 4, std::uint64_t threads_runs = 1,
		const std::function<void(px::System &)> &more = {}, std::size_t fiber_stack = 0) {
	for (const Mode &mode : kModes) {
		SCOPED_TRACE(testing::Message()
				<< "supercalls " << mode.supercalls << " thread_page " << mode.thread_page);
		for_each_mode(
				[&](helsim::MachineConfig config) {
					seen.reset();
					if (fiber_stack)
						config.stack_size = fiber_stack;
					helsim::Machine machine{config};
					px::Options options;
					options.supercalls = mode.supercalls;
					options.thread_page = mode.thread_page;
					px::System system{machine, quiet(options)};
					system.add_program("/bin/main", main);
					if (more)
						more(system);
					pid_t pid = system.spawn("/bin/main", {"main"});
					expect_clean(machine.run());
					check(system, pid, mode);
				},
				seeds, threads_runs);
	}
}

void expect_exit_zero(px::System &system, pid_t pid, const Mode &) {
	EXPECT_EQ(exit_code(system, pid), 0);
}

TEST(PosixSignals, KillSelfRunsTheHandlerBeforeKillReturns) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install_info(SIGUSR1), 0);
				EXPECT_EQ(px::kill(px::getpid(), SIGUSR1), 0);
				EXPECT_EQ(seen.runs.load(), 1);
				EXPECT_EQ(seen.last_signo.load(), SIGUSR1);
				EXPECT_EQ(seen.code.load(), SI_USER);
				EXPECT_EQ(seen.pid.load(), px::getpid());
				// Inside: the signal itself is blocked; after: the mask is back.
				EXPECT_EQ(seen.mask.load(), bit(SIGUSR1));
				EXPECT_EQ(current_mask(), 0u);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(seen.runs.load(), 2);
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &mode) {
				EXPECT_EQ(exit_code(system, pid), 0);
				auto c = system.counters();
				EXPECT_EQ(c.signals_sent, 2u);
				EXPECT_EQ(c.signals_delivered, 2u);
				// Taken at the kill supercall's own stop; a request needs one interrupt per kill.
				EXPECT_EQ(c.interrupts, mode.supercalls ? 0u : 2u);
				EXPECT_EQ(c.alerts, 0u);
			});
}

TEST(PosixSignals, HandlerMaskIsSaMaskAndSignoUnlessNodefer) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR1, plain_handler, 0, bit(SIGUSR2) | bit(SIGKILL)), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(seen.mask.load(), bit(SIGUSR1) | bit(SIGUSR2)); // SIGKILL never
				EXPECT_EQ(install(SIGUSR2, plain_handler, SA_NODEFER, bit(SIGHUP)), 0);
				EXPECT_EQ(px::raise(SIGUSR2), 0);
				EXPECT_EQ(seen.mask.load(), bit(SIGHUP));
				EXPECT_EQ(current_mask(), 0u);
				return 0;
			},
			expect_exit_zero);
}

TEST(PosixSignals, BlockedSignalStaysPendingAndRunsOnceWhenUnblocked) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR1, plain_handler), 0);
				EXPECT_EQ(install(SIGRTMIN, plain_handler), 0);
				EXPECT_EQ(block(bit(SIGUSR1) | bit(SIGRTMIN)), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0); // standard: not queued twice
				EXPECT_EQ(px::raise(SIGRTMIN), 0);
				EXPECT_EQ(px::raise(SIGRTMIN), 0); // realtime: queued
				EXPECT_EQ(seen.runs.load(), 0);
				EXPECT_EQ(pending(), bit(SIGUSR1) | bit(SIGRTMIN));
				EXPECT_EQ(block(bit(SIGUSR1) | bit(SIGRTMIN), SIG_UNBLOCK), 0);
				EXPECT_EQ(seen.runs.load(), 3);
				EXPECT_EQ(seen.order[0].load(), SIGUSR1); // standard signals first
				EXPECT_EQ(seen.order[1].load(), SIGRTMIN);
				EXPECT_EQ(seen.order[2].load(), SIGRTMIN);
				EXPECT_EQ(pending(), 0u);
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(system.counters().signals_delivered, 3u);
			});
}

TEST(PosixSignals, ResetHandIgnoreAndDefaultActions) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR1, plain_handler, SA_RESETHAND), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(seen.runs.load(), 1);
				struct sigaction old {};
				EXPECT_EQ(px::sigaction(SIGUSR1, nullptr, &old), 0);
				EXPECT_EQ(old.sa_handler, SIG_DFL);
				// Ignored: dropped; ignored by default: dropped.
				EXPECT_EQ(install(SIGUSR2, SIG_IGN), 0);
				EXPECT_EQ(px::raise(SIGUSR2), 0);
				EXPECT_EQ(px::raise(SIGCHLD), 0);
				EXPECT_EQ(px::raise(SIGTSTP), 0); // stop: not supported, ignored
				EXPECT_EQ(pending(), 0u);
				// Setting SIG_IGN discards a pending instance.
				EXPECT_EQ(install(SIGHUP, plain_handler), 0);
				EXPECT_EQ(block(bit(SIGHUP)), 0);
				EXPECT_EQ(px::raise(SIGHUP), 0);
				EXPECT_EQ(pending(), bit(SIGHUP));
				EXPECT_EQ(install(SIGHUP, SIG_IGN), 0);
				EXPECT_EQ(pending(), 0u);
				EXPECT_EQ(seen.runs.load(), 1);
				// SIG_DFL terminate: the process dies.
				px::raise(SIGUSR1);
				ADD_FAILURE() << "survived SIGUSR1 with SIG_DFL";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGUSR1);
			});
}

TEST(PosixSignals, BadArgumentsAreRefused) {
	each_mode(
			[](int, char **) {
				struct sigaction action {};
				action.sa_handler = plain_handler;
				EXPECT_EQ(px::sigaction(SIGKILL, &action, nullptr), -EINVAL);
				EXPECT_EQ(px::sigaction(SIGSTOP, &action, nullptr), -EINVAL);
				EXPECT_EQ(px::sigaction(0, &action, nullptr), -EINVAL);
				EXPECT_EQ(px::sigaction(65, &action, nullptr), -EINVAL);
				EXPECT_EQ(px::kill(px::getpid(), 65), -EINVAL);
				EXPECT_EQ(px::kill(px::getpid(), -1), -EINVAL);
				EXPECT_EQ(px::kill(px::getpid(), 0), 0);
				EXPECT_EQ(px::kill(4242, 0), -ESRCH);
				EXPECT_EQ(px::kill(4242, SIGUSR1), -ESRCH);
				sigset_t set;
				sigemptyset(&set);
				EXPECT_EQ(px::sigprocmask(42, &set, nullptr), -EINVAL);
				// SIGKILL and SIGSTOP cannot be blocked.
				EXPECT_EQ(block(bit(SIGKILL) | bit(SIGSTOP) | bit(SIGUSR1)), 0);
				EXPECT_EQ(current_mask(), bit(SIGUSR1));
				timespec bad{0, 2'000'000'000};
				EXPECT_EQ(px::sigtimedwait(&set, nullptr, &bad), -EINVAL);
				return 0;
			},
			expect_exit_zero, 2, 0);
}

TEST(PosixSignals, SigkillKillsEvenWhenBlockedOrIgnoredElsewhere) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(block(~std::uint64_t{0}), 0);
				px::raise(SIGKILL);
				ADD_FAILURE() << "survived SIGKILL";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGKILL);
			},
			2, 1);
}

TEST(PosixSignals, NestedSignalRunsInsideTheFirstHandler) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR2, plain_handler), 0);
				EXPECT_EQ(install(SIGUSR1,
								  [](int signo) {
									  record(signo);
									  EXPECT_EQ(px::raise(SIGUSR2), 0);
									  EXPECT_EQ(seen.runs.load(), 2);
								  }),
						0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(seen.runs.load(), 2);
				EXPECT_EQ(seen.order[0].load(), SIGUSR1);
				EXPECT_EQ(seen.order[1].load(), SIGUSR2);
				EXPECT_EQ(seen.mask.load(), bit(SIGUSR1) | bit(SIGUSR2)); // inside both
				EXPECT_EQ(current_mask(), 0u);
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(system.counters().signals_delivered, 2u);
			});
}

TEST(PosixSignals, AlternateStackHoldsTheFrameWithSaOnstack) {
	each_mode(
			[](int, char **) {
				constexpr std::size_t kSize = 16384;
				void *area = px::mmap(nullptr, kSize, PROT_READ | PROT_WRITE,
						MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
				EXPECT_NE(area, MAP_FAILED);
				stack_t small{area, 0, 1024};
				EXPECT_EQ(px::sigaltstack(&small, nullptr), -ENOMEM);
				stack_t flags{area, 0x40, kSize};
				EXPECT_EQ(px::sigaltstack(&flags, nullptr), -EINVAL);
				stack_t alt{area, 0, kSize}, old{};
				EXPECT_EQ(px::sigaltstack(&alt, &old), 0);
				EXPECT_EQ(old.ss_flags, SS_DISABLE);
				EXPECT_EQ(install_info(SIGUSR1, SA_ONSTACK), 0);
				struct sigaction action {};
				action.sa_sigaction = [](int signo, siginfo_t *info, void *context) {
					info_handler(signo, info, context);
					stack_t now{};
					EXPECT_EQ(px::sigaltstack(nullptr, &now), 0);
					EXPECT_EQ(now.ss_flags, SS_ONSTACK);
					stack_t other{now.ss_sp, 0, now.ss_size};
					EXPECT_EQ(px::sigaltstack(&other, nullptr), -EPERM);
				};
				action.sa_flags = SA_SIGINFO | SA_ONSTACK;
				EXPECT_EQ(px::sigaction(SIGUSR2, &action, nullptr), 0);
				EXPECT_EQ(px::raise(SIGUSR2), 0);
				auto at = seen.context.load();
				auto base = reinterpret_cast<std::uintptr_t>(area);
				EXPECT_GE(at, base);
				EXPECT_LT(at, base + kSize);
				// Without SA_ONSTACK the frame is elsewhere.
				EXPECT_EQ(install_info(SIGUSR1), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				at = seen.context.load();
				EXPECT_TRUE(at < base || at >= base + kSize);
				stack_t off{nullptr, SS_DISABLE, 0};
				EXPECT_EQ(px::sigaltstack(&off, &old), 0);
				EXPECT_EQ(old.ss_sp, area);
				EXPECT_EQ(old.ss_flags, 0);
				return 0;
			},
			expect_exit_zero);
}

TEST(PosixSignals, CorruptedFrameKillsTheProcessWithSigsegvAndTheServerGoesOn) {
	each_mode(
			[](int, char **) {
				struct sigaction action {};
				action.sa_sigaction = [](int, siginfo_t *, void *context) {
					auto *frame = reinterpret_cast<px::detail::SignalFrame *>(
							static_cast<char *>(context) -
							offsetof(px::detail::SignalFrame, context));
					frame->magic = 0;
				};
				action.sa_flags = SA_SIGINFO;
				EXPECT_EQ(px::sigaction(SIGUSR1, &action, nullptr), 0);
				const char *argv[] = {"ok", nullptr};
				EXPECT_GT(px::spawn("/bin/ok", argv), 0);
				px::raise(SIGUSR1);
				ADD_FAILURE() << "survived a corrupted frame";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGSEGV);
				EXPECT_EQ(exit_code(system, pid + 1), 7);
			},
			4, 1,
			[](px::System &system) {
				system.add_program("/bin/ok", [](int, char **) {
					EXPECT_EQ(px::raise(SIGCHLD), 0); // the server still serves signals
					return 7;
				});
			});
}

// A child that is ready once it wrote a byte to fd 1 of a pipe its parent reads.
constexpr int kReadyFd = 4;

void ready() { EXPECT_EQ(px::write(kReadyFd, "r", 1), 1); }

// The parent: spawns /bin/child with a pipe, waits until it is ready, then runs `then`.
px::Main parent(void (*then)(pid_t)) {
	return [then](int, char **) {
		int fds[2];
		EXPECT_EQ(px::pipe(fds), 0);
		EXPECT_EQ(fds[1], kReadyFd);
		const char *argv[] = {"child", nullptr};
		pid_t child = px::spawn("/bin/child", argv);
		EXPECT_GT(child, 0);
		char byte = 0;
		EXPECT_EQ(px::read(fds[0], &byte, 1), 1);
		then(child);
		// Reaped by its parent (the pause test reaps it itself): an orphan's ppid would change.
		px::waitpid(child, nullptr, 0);
		return 0;
	};
}

void each_pair(const px::Main &child, void (*then)(pid_t), int child_code, std::uint64_t seeds,
		std::uint64_t threads_runs) {
	each_mode(
			parent(then),
			[child_code](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(exit_code(system, pid + 1), child_code);
			},
			seeds, threads_runs,
			[child](px::System &system) { system.add_program("/bin/child", child); });
}

TEST(PosixSignals, SigsuspendIsWokenByAnotherProcessWithoutLostWakeUps) {
	each_pair(
			[](int, char **) {
				EXPECT_EQ(install_info(SIGUSR1), 0);
				EXPECT_EQ(block(bit(SIGUSR1)), 0);
				ready();
				sigset_t none;
				sigemptyset(&none);
				EXPECT_EQ(px::sigsuspend(&none), -EINTR);
				EXPECT_EQ(seen.runs.load(), 1);
				EXPECT_EQ(seen.pid.load(), px::getppid());
				EXPECT_EQ(current_mask(), bit(SIGUSR1));
				return 3;
			},
			[](pid_t child) { EXPECT_EQ(px::kill(child, SIGUSR1), 0); }, 3, 40, 4);
}

TEST(PosixSignals, PauseIsWokenByAnotherProcess) {
	each_pair(
			[](int, char **) {
				// It may run while _exit's request is in flight (supercalls off): it calls nothing.
				EXPECT_EQ(install(SIGUSR1, [](int) { seen.runs.fetch_add(1); }), 0);
				ready();
				EXPECT_EQ(px::pause(), -EINTR);
				EXPECT_GE(seen.runs.load(), 1);
				return 4;
			},
			[](pid_t child) {
				// pause has no mask to close the window: signal until the child is gone, paced
				// (a flood nests handlers inside waits without bound: docs/posix-signals.md).
				int status = 0;
				for (int yields = 0; px::waitpid(child, &status, WNOHANG) == 0; ++yields) {
					if (yields % 64 == 0)
						px::kill(child, SIGUSR1); // a zombie takes none
					helYield();
				}
			},
			4, 20, 2);
}

TEST(PosixSignals, SigtimedwaitTakesImmediateWokenAndTimesOut) {
	each_pair(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR2, plain_handler), 0);
				EXPECT_EQ(block(bit(SIGUSR1) | bit(SIGUSR2)), 0);
				sigset_t set;
				sigemptyset(&set);
				sigaddset(&set, SIGUSR1);
				timespec zero{0, 0}, short_wait{0, 1'000'000};
				EXPECT_EQ(px::sigtimedwait(&set, nullptr, &zero), -EAGAIN);
				EXPECT_EQ(px::sigtimedwait(&set, nullptr, &short_wait), -EAGAIN);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				siginfo_t info{};
				EXPECT_EQ(px::sigtimedwait(&set, &info, &zero), SIGUSR1);
				EXPECT_EQ(info.si_signo, SIGUSR1);
				EXPECT_EQ(info.si_pid, px::getpid());
				ready();
				EXPECT_EQ(px::sigtimedwait(&set, &info, nullptr), SIGUSR1); // woken
				EXPECT_EQ(info.si_pid, px::getppid());
				EXPECT_EQ(seen.runs.load(), 0); // taken, no handler ran
				EXPECT_EQ(pending(), 0u);
				return 5;
			},
			[](pid_t child) { EXPECT_EQ(px::kill(child, SIGUSR1), 0); }, 5, 10, 2);
}

TEST(PosixSignals, ThreadPageDefersASignalInsideAGuardAndAlertsTheQueue) {
	// The client's half of the guard written by hand (Managarm's SignalGuard): flag 1, wait
	// for the alert, exchange the flag with 0, raise what was deferred.
	px::Main child = [](int, char **) {
		EXPECT_EQ(install(SIGUSR1, plain_handler), 0);
		protocol::ProcessData data{};
		EXPECT_EQ(raw_process_data(data), kHelErrNone);
		std::atomic_ref<std::uint32_t> flag{data.thread_page->global_signal_flag};
		flag.store(1);
		ready();
		HelHandle queue = data.thread_page->queue_handle;
		while (flag.load() != 2)
			EXPECT_EQ(helDriveQueue(queue, kHelDriveWait,
							  ~static_cast<std::uint32_t>(kHelUserNotifyAlert)),
					kHelErrNone);
		EXPECT_EQ(seen.runs.load(), 0);
		EXPECT_EQ(flag.exchange(0), 2u);
		EXPECT_EQ(raw_supercall(protocol::kSuperSigRaise).error, kHelErrNone);
		EXPECT_EQ(seen.runs.load(), 1);
		return 6;
	};
	for_each_mode(
			[&](const helsim::MachineConfig &config) {
				seen.reset();
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/main",
						parent([](pid_t child) { EXPECT_EQ(px::kill(child, SIGUSR1), 0); }));
				system.add_program("/bin/child", child);
				pid_t pid = system.spawn("/bin/main", {"main"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(exit_code(system, pid + 1), 6);
				auto c = system.counters();
				EXPECT_EQ(c.alerts, 1u);
				EXPECT_EQ(c.signals_delivered, 1u);
			},
			10, 2);
}

TEST(PosixSignals, WithoutTheThreadPageAnotherProcessInterrupts) {
	px::Options options;
	options.thread_page = false;
	for_each_mode(
			[&](const helsim::MachineConfig &config) {
				seen.reset();
				helsim::Machine machine{config};
				px::System system{machine, quiet(options)};
				system.add_program("/bin/main",
						parent([](pid_t child) { EXPECT_EQ(px::kill(child, SIGUSR1), 0); }));
				system.add_program("/bin/child", [](int, char **) {
					EXPECT_EQ(install(SIGUSR1, plain_handler), 0);
					EXPECT_EQ(block(bit(SIGUSR1)), 0);
					ready();
					sigset_t none;
					sigemptyset(&none);
					EXPECT_EQ(px::sigsuspend(&none), -EINTR);
					return 0;
				});
				pid_t pid = system.spawn("/bin/main", {"main"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid + 1), 0);
				auto c = system.counters();
				EXPECT_EQ(c.alerts, 0u);
				EXPECT_EQ(c.signals_delivered, 1u);
			},
			10, 2);
}

TEST(PosixSignals, SigtimedwaitEndsWithEintrForAHandledSignalOutsideItsSet) {
	each_pair(
			[](int, char **) {
				// It may also run before sigtimedwait waits: the parent signals until it is gone.
				EXPECT_EQ(install(SIGUSR2,
								  [](int signo) {
									  seen.runs.fetch_add(1);
									  seen.last_signo = signo;
								  }),
						0);
				EXPECT_EQ(block(bit(SIGUSR1)), 0);
				sigset_t set;
				sigemptyset(&set);
				sigaddset(&set, SIGUSR1);
				ready();
				EXPECT_EQ(px::sigtimedwait(&set, nullptr, nullptr), -EINTR);
				EXPECT_GE(seen.runs.load(), 1);
				EXPECT_EQ(seen.last_signo.load(), SIGUSR2);
				return 8;
			},
			[](pid_t child) {
				int status = 0;
				for (int yields = 0; px::waitpid(child, &status, WNOHANG) == 0; ++yields) {
					if (yields % 64 == 0)
						px::kill(child, SIGUSR2); // a zombie takes none
					helYield();
				}
			},
			8, 10, 2);
}

TEST(PosixSignals, HandlerMayChangeTheMaskItReturnsTo) {
	each_mode(
			[](int, char **) {
				struct sigaction action {};
				action.sa_sigaction = [](int, siginfo_t *, void *context) {
					sigaddset(&static_cast<ucontext_t *>(context)->uc_sigmask, SIGUSR2);
				};
				action.sa_flags = SA_SIGINFO;
				EXPECT_EQ(px::sigaction(SIGUSR1, &action, nullptr), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(current_mask(), bit(SIGUSR2));
				return 0;
			},
			expect_exit_zero, 2, 1);
}

TEST(PosixSignals, BlockedSignalsAreQueuedEvenWhenIgnoredOrFatal) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGUSR1, SIG_IGN), 0);
				EXPECT_EQ(block(bit(SIGUSR1) | bit(SIGTERM)), 0);
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(px::raise(SIGTERM), 0); // SIG_DFL, fatal, but blocked
				EXPECT_EQ(pending(), bit(SIGUSR1) | bit(SIGTERM));
				sigset_t set;
				sigemptyset(&set);
				sigaddset(&set, SIGUSR1);
				timespec zero{0, 0};
				EXPECT_EQ(px::sigtimedwait(&set, nullptr, &zero), SIGUSR1);
				// An info the server cannot write: -EFAULT, and the signal is consumed.
				EXPECT_EQ(px::raise(SIGUSR1), 0);
				EXPECT_EQ(px::sigtimedwait(&set, reinterpret_cast<siginfo_t *>(16), &zero),
						-EFAULT);
				EXPECT_EQ(pending(), bit(SIGTERM));
				EXPECT_EQ(px::sigaltstack(reinterpret_cast<stack_t *>(16), nullptr), -EFAULT);
				EXPECT_EQ(block(bit(SIGTERM), SIG_UNBLOCK), 0); // now it kills
				ADD_FAILURE() << "survived SIGTERM";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGTERM);
			},
			2, 1);
}

TEST(PosixSignals, EndlessNestingOverflowsTheSignalStackWithSigsegv) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(
								  SIGUSR1,
								  [](int signo) {
									  seen.runs.fetch_add(1);
									  px::raise(signo);
								  },
								  SA_NODEFER),
						0);
				px::raise(SIGUSR1);
				ADD_FAILURE() << "survived an endless nesting";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGSEGV);
				// 64 KiB of frames of about 1.2 KiB each.
				EXPECT_GT(seen.runs.load(), 40);
				EXPECT_LT(seen.runs.load(), 64);
			},
			2, 1, {},
			// Each nested handler is an upcall on the thread's host stack as well: with a
			// sanitizer's larger frames, 256 KiB does not hold 64 of them.
			std::size_t{4} << 20);
}

TEST(PosixSignals, KillReachesGroupsAndEveryProcess) {
	each_pair(
			[](int, char **) {
				EXPECT_EQ(install(SIGRTMIN, plain_handler), 0);
				EXPECT_EQ(block(bit(SIGRTMIN)), 0);
				ready();
				sigset_t set;
				sigemptyset(&set);
				sigaddset(&set, SIGRTMIN);
				siginfo_t info{};
				// kill(-child) and kill(-1) from the parent, queued (realtime).
				EXPECT_EQ(px::sigtimedwait(&set, &info, nullptr), SIGRTMIN);
				EXPECT_EQ(px::sigtimedwait(&set, &info, nullptr), SIGRTMIN);
				EXPECT_EQ(info.si_pid, px::getppid());
				EXPECT_EQ(seen.runs.load(), 0);
				return 9;
			},
			[](pid_t child) {
				EXPECT_EQ(px::kill(-child, SIGRTMIN), 0);
				EXPECT_EQ(px::kill(-1, SIGRTMIN), 0); // not the caller (pid 1 anyway)
				EXPECT_EQ(px::kill(0, 0), 0);         // the caller's own group
				EXPECT_EQ(px::kill(-4242, 0), -ESRCH);
			},
			9, 6, 2);
}

TEST(PosixSignals, ForkKeepsDispositionsAndMaskAndExecResetsHandlers) {
	px::detail::SignalState state;
	state.actions[SIGUSR1].handler = reinterpret_cast<std::uint64_t>(&plain_handler);
	state.actions[SIGUSR2].handler = reinterpret_cast<std::uint64_t>(SIG_IGN);
	state.blocked = bit(SIGHUP);
	state.altstack = stack_t{&state, 0, 4096};
	siginfo_t info{};
	info.si_signo = SIGHUP;
	state.add(info);
	auto child = state.inherit_for_fork();
	EXPECT_EQ(child.actions[SIGUSR1].handler, state.actions[SIGUSR1].handler);
	EXPECT_EQ(child.blocked, bit(SIGHUP));
	EXPECT_EQ(child.altstack.ss_sp, &state);
	EXPECT_EQ(child.pending(), 0u);
	state.reset_for_exec();
	EXPECT_EQ(state.actions[SIGUSR1].handler, reinterpret_cast<std::uint64_t>(SIG_DFL));
	EXPECT_EQ(state.actions[SIGUSR2].handler, reinterpret_cast<std::uint64_t>(SIG_IGN));
	EXPECT_EQ(state.blocked, bit(SIGHUP));
	EXPECT_EQ(state.pending(), bit(SIGHUP));
	EXPECT_EQ(state.altstack.ss_flags, SS_DISABLE);
}

TEST(PosixSignals, AFaultKillsEvenWithAHandlerInstalled) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGSEGV, plain_handler), 0);
				volatile std::uintptr_t null_page = 16;
				*reinterpret_cast<volatile int *>(null_page) = 1;
				ADD_FAILURE() << "survived a fault";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				int status = system.exit_status(pid);
				EXPECT_TRUE(WIFSIGNALED(status)) << status;
				EXPECT_EQ(WTERMSIG(status), SIGSEGV);
				EXPECT_EQ(seen.runs.load(), 0);
				EXPECT_EQ(system.counters().signals_sent, 1u);
				EXPECT_EQ(system.counters().signals_delivered, 0u);
			},
			2, 1);
}

TEST(PosixSignals, AStopInsideAGuardDefersUntilTheGuardRaises) {
	for_each_mode(
			[](const helsim::MachineConfig &config) {
				seen.reset();
				helsim::Machine machine{config};
				px::System system{machine, quiet()};
				system.add_program("/bin/main", [](int, char **) {
					EXPECT_EQ(install(SIGUSR1, plain_handler), 0);
					protocol::ProcessData data{};
					EXPECT_EQ(raw_process_data(data), kHelErrNone);
					std::atomic_ref<std::uint32_t> flag{data.thread_page->global_signal_flag};
					flag.store(1);
					EXPECT_EQ(px::raise(SIGUSR1), 0); // its stop is inside the guard
					EXPECT_EQ(seen.runs.load(), 0);
					EXPECT_EQ(flag.exchange(0), 2u);
					EXPECT_EQ(raw_supercall(protocol::kSuperSigRaise).error, kHelErrNone);
					EXPECT_EQ(seen.runs.load(), 1);
					return 0;
				});
				pid_t pid = system.spawn("/bin/main", {"main"});
				expect_clean(machine.run());
				EXPECT_EQ(exit_code(system, pid), 0);
				auto c = system.counters();
				EXPECT_EQ(c.alerts, 1u); // a wait of the guard's call would end
				EXPECT_EQ(c.interrupts, 0u);
				EXPECT_EQ(c.signals_delivered, 1u);
			},
			4, 1);
}

// A handler that runs inside another call's wait (the read's): the read goes on, or returns
// -EINTR once the blocking calls learn it (client_wait.cpp); either way no byte is lost.
constexpr int kDataRead = 5, kDataWrite = 6;

TEST(PosixSignals, AHandlerRunsInsideABlockedReadAndNothingIsLost) {
	auto main = [](int, char **) {
		int ready_fds[2], data_fds[2];
		EXPECT_EQ(px::pipe(ready_fds), 0);
		EXPECT_EQ(px::pipe(data_fds), 0);
		EXPECT_EQ(data_fds[0], kDataRead);
		const char *argv[] = {"child", nullptr};
		pid_t child = px::spawn("/bin/child", argv);
		char byte = 0;
		EXPECT_EQ(px::read(ready_fds[0], &byte, 1), 1);
		EXPECT_EQ(px::kill(child, SIGUSR1), 0);
		EXPECT_EQ(px::write(data_fds[1], "d", 1), 1);
		return 0;
	};
	px::Main child = [](int, char **) {
		EXPECT_EQ(install(SIGUSR1, plain_handler), 0);
		px::close(kDataWrite);
		ready();
		char byte = 0;
		int n = px::read(kDataRead, &byte, 1);
		if (n == -EINTR)
			n = px::read(kDataRead, &byte, 1);
		EXPECT_EQ(n, 1);
		EXPECT_EQ(byte, 'd');
		EXPECT_EQ(seen.runs.load(), 1);
		return 10;
	};
	each_mode(
			main,
			[](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(exit_code(system, pid + 1), 10);
				auto c = system.counters();
				EXPECT_EQ(c.signals_delivered, 1u);
				EXPECT_GE(c.interrupts + c.alerts, 1u);
			},
			20, 4, [&](px::System &system) { system.add_program("/bin/child", child); });
}

TEST(PosixSignals, AHandlerMayExit) {
	each_mode(
			[](int, char **) {
				EXPECT_EQ(install(SIGINT, [](int) { px::_exit(3); }), 0);
				px::raise(SIGINT);
				ADD_FAILURE() << "returned from a handler that exited";
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 3);
			},
			2, 1);
}

// Many queued signals from another process while the child's handlers make calls: every one
// runs exactly once, and the mask is the child's own at the end (restores racing stops with
// supercalls off, frames nesting with them on).
constexpr int kSignals = 30;

TEST(PosixSignals, AStreamOfQueuedSignalsRunsEachHandlerOnce) {
	each_mode(
			[](int, char **) {
				int ready_fds[2], done_fds[2];
				EXPECT_EQ(px::pipe(ready_fds), 0);
				EXPECT_EQ(px::pipe(done_fds), 0);
				const char *argv[] = {"child", nullptr};
				pid_t child = px::spawn("/bin/child", argv);
				char byte = 0;
				EXPECT_EQ(px::read(ready_fds[0], &byte, 1), 1);
				for (int i = 0; i < kSignals; ++i)
					EXPECT_EQ(px::kill(child, SIGRTMIN), 0);
				EXPECT_EQ(px::write(done_fds[1], "d", 1), 1);
				return 0;
			},
			[](px::System &system, pid_t pid, const Mode &) {
				EXPECT_EQ(exit_code(system, pid), 0);
				EXPECT_EQ(exit_code(system, pid + 1), 11);
				EXPECT_EQ(system.counters().signals_delivered, std::uint64_t{kSignals});
			},
			10, 4,
			[](px::System &system) {
				system.add_program("/bin/child", [](int, char **) {
					EXPECT_EQ(install(SIGRTMIN,
									  [](int) {
										  seen.runs.fetch_add(1);
										  EXPECT_GT(px::getpid(), 0);
									  }),
							0);
					ready();
					char byte = 0;
					int n = 0;
					do
						n = px::read(kDataRead, &byte, 1);
					while (n == -EINTR);
					EXPECT_EQ(n, 1);
					EXPECT_EQ(current_mask(), 0u); // every pending one drained at this stop
					EXPECT_EQ(seen.runs.load(), kSignals);
					return 11;
				});
			});
}

} // namespace
