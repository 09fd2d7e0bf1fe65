// POSIX benchmarks between processes and around signals: a pipe ping-pong between two
// processes, a signal sent to oneself, the latency of EINTR for a read blocked on an empty
// pipe, and fork + exit + wait with anonymous memory touched. Each with its acceleration
// strategy on and off, next to the host Linux equivalent. docs/benchmarks.md#posix has the
// command and the figures.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace {

namespace px = helsim::posix;
using helsim::bench_posix::run_process;

void no_programs(px::System &) {}

// ---------------------------------------------------------------- pipe ping-pong

// The child echoes every byte from fds[0] to fds[3] until its input ends. It closes the ends
// it inherited and does not use: while it held fds[1], its input would never end.
int echo_child(void *arg) {
	const int *fds = static_cast<const int *>(arg);
	px::close(fds[1]);
	px::close(fds[2]);
	char byte = 0;
	while (px::read(fds[0], &byte, 1) == 1)
		if (px::write(fds[3], &byte, 1) != 1)
			return 1;
	return 0;
}

void BM_Posix_PipePingPong(benchmark::State &state, px::Options options) {
	run_process(
			state, options,
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				// fds[0..1]: parent -> child, fds[2..3]: child -> parent.
				static int fds[4];
				if (px::pipe(fds) || px::pipe(fds + 2)) {
					++bad;
					return;
				}
				pid_t child = px::fork(echo_child, fds);
				if (child < 0) {
					++bad;
					return;
				}
				px::close(fds[0]);
				px::close(fds[3]);
				char byte = 'x';
				before = px::counters();
				for (auto _ : state)
					bad += px::write(fds[1], &byte, 1) != 1 || px::read(fds[2], &byte, 1) != 1;
				after = px::counters();
				px::close(fds[1]);
				int status = 0;
				bad += px::waitpid(child, &status, 0) != child || status != 0;
				px::close(fds[2]);
			},
			no_programs);
}
BENCHMARK_CAPTURE(BM_Posix_PipePingPong, accelerated, px::Options{});
BENCHMARK_CAPTURE(BM_Posix_PipePingPong, file_table_off, px::Options{.file_table = false});
BENCHMARK_CAPTURE(BM_Posix_PipePingPong, batching_off, px::Options{.batching = false});

void BM_PosixHost_PipePingPong(benchmark::State &state) {
	int down[2], up[2];
	if (::pipe(down) || ::pipe(up)) {
		state.SkipWithError("pipe failed");
		return;
	}
	pid_t child = ::fork();
	if (child == 0) {
		::close(down[1]); // else its reads would never see the end
		::close(up[0]);
		char byte = 0;
		while (::read(down[0], &byte, 1) == 1)
			if (::write(up[1], &byte, 1) != 1)
				::_exit(1);
		::_exit(0);
	}
	::close(down[0]);
	::close(up[1]);
	char byte = 'x';
	std::int64_t bad = 0;
	for (auto _ : state)
		bad += ::write(down[1], &byte, 1) != 1 || ::read(up[0], &byte, 1) != 1;
	::close(down[1]);
	::waitpid(child, nullptr, 0);
	::close(up[0]);
	if (bad)
		state.SkipWithError("ping-pong failed");
}
BENCHMARK(BM_PosixHost_PipePingPong);

// ---------------------------------------------------------------- kill(getpid()) to handler return

std::atomic<std::uint64_t> handled{0};
void count_signal(int) { handled.fetch_add(1, std::memory_order_relaxed); }

void BM_Posix_SignalSelf(benchmark::State &state, px::Options options) {
	run_process(
			state, options,
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				struct sigaction action {};
				action.sa_handler = count_signal;
				bad += px::sigaction(SIGUSR1, &action, nullptr) != 0;
				pid_t self = px::getpid();
				std::uint64_t start = handled.load();
				before = px::counters();
				for (auto _ : state)
					bad += px::kill(self, SIGUSR1) != 0;
				after = px::counters();
				// kill(getpid()) has run the handler before it returns: one per iteration.
				bad += handled.load() - start != static_cast<std::uint64_t>(state.iterations());
			},
			no_programs);
}
BENCHMARK_CAPTURE(BM_Posix_SignalSelf, supercalls, px::Options{});
BENCHMARK_CAPTURE(BM_Posix_SignalSelf, requests, px::Options{.supercalls = false});

void BM_PosixHost_SignalSelf(benchmark::State &state) {
	struct sigaction action {
	}, old{};
	action.sa_handler = count_signal;
	::sigaction(SIGUSR1, &action, &old);
	pid_t self = ::getpid();
	std::uint64_t start = handled.load();
	for (auto _ : state)
		::kill(self, SIGUSR1);
	::sigaction(SIGUSR1, &old, nullptr);
	if (handled.load() - start != static_cast<std::uint64_t>(state.iterations()))
		state.SkipWithError("a handler did not run");
}
BENCHMARK(BM_PosixHost_SignalSelf);

// ---------------------------------------------------------------- EINTR latency
// A reader blocks in read() on an empty pipe; the timed part is from the kill until the reader
// has reported its -EINTR on a second pipe. Untimed before each kill: the parent lets the
// reader get back into its read (in the simulation, a short sleep hands the one CPU to it; on
// the host, it waits until the thread sleeps). A signal that still lands before the read only
// runs the handler, so the parent sends it again if no report comes within 10 ms.

void ignore_signal(int) {}

int eintr_child(void *arg) {
	const int *fds = static_cast<const int *>(arg);
	px::close(fds[1]); // else the parent's close would not end the read
	px::close(fds[2]);
	struct sigaction action {};
	action.sa_handler = ignore_signal; // no SA_RESTART: the read ends with -EINTR
	if (px::sigaction(SIGUSR1, &action, nullptr) || px::write(fds[3], "r", 1) != 1)
		return 1;
	char byte = 0;
	for (;;) {
		ssize_t n = px::read(fds[0], &byte, 1);
		if (n == 0)
			return 0; // the parent closed the pipe: done
		if (n != -EINTR || px::write(fds[3], &byte, 1) != 1)
			return 2;
	}
}

void BM_Posix_EintrLatency(benchmark::State &state, px::Options options) {
	run_process(
			state, options,
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				static int fds[4]; // [0..1]: stays empty until closed; [2..3]: the reports
				if (px::pipe(fds) || px::pipe(fds + 2)) {
					++bad;
					return;
				}
				pid_t child = px::fork(eintr_child, fds);
				if (child < 0) {
					++bad;
					return;
				}
				px::close(fds[0]);
				px::close(fds[3]);
				pollfd report{fds[2], POLLIN, 0};
				char byte = 0;
				bad += px::read(fds[2], &byte, 1) != 1; // the handler is installed
				before = px::counters();
				for (auto _ : state) {
					state.PauseTiming();
					timespec tick{0, 1000};
					px::nanosleep(&tick, nullptr);
					state.ResumeTiming();
					do
						bad += px::kill(child, SIGUSR1) != 0;
					while (px::poll(&report, 1, 10) == 0);
					bad += px::read(fds[2], &byte, 1) != 1;
				}
				after = px::counters();
				px::close(fds[1]);
				int status = 0;
				bad += px::waitpid(child, &status, 0) != child || status != 0;
				px::close(fds[2]);
			},
			no_programs);
}
BENCHMARK_CAPTURE(BM_Posix_EintrLatency, thread_page, px::Options{});
BENCHMARK_CAPTURE(BM_Posix_EintrLatency, interrupt_only, px::Options{.thread_page = false});

struct HostEintr {
	int empty[2];
	int reports[2];
	std::atomic<pid_t> tid{0};
};

void *host_eintr_thread(void *arg) {
	auto *h = static_cast<HostEintr *>(arg);
	h->tid = static_cast<pid_t>(::syscall(SYS_gettid));
	char byte = 0;
	for (;;) {
		ssize_t n = ::read(h->empty[0], &byte, 1);
		if (n == 0)
			return nullptr;
		if (n < 0 && errno == EINTR && ::write(h->reports[1], &byte, 1) != 1)
			return nullptr;
	}
}

// Whether the thread is asleep (state S in /proc: here, blocked in its read).
bool sleeping(pid_t tid) {
	char path[64], stat[256] = {};
	std::snprintf(path, sizeof(path), "/proc/self/task/%d/stat", static_cast<int>(tid));
	int fd = ::open(path, O_RDONLY);
	if (fd < 0)
		return true; // no /proc: the 10 ms retry still bounds a miss
	ssize_t n = ::read(fd, stat, sizeof(stat) - 1);
	::close(fd);
	const char *end = n > 0 ? std::strrchr(stat, ')') : nullptr;
	return !end || end[2] == 'S';
}

void BM_PosixHost_EintrLatency(benchmark::State &state) {
	struct sigaction action {
	}, old{};
	action.sa_handler = ignore_signal;
	::sigaction(SIGUSR1, &action, &old);
	HostEintr h{};
	if (::pipe(h.empty) || ::pipe(h.reports)) {
		state.SkipWithError("pipe failed");
		return;
	}
	pthread_t thread;
	pthread_create(&thread, nullptr, host_eintr_thread, &h);
	while (!h.tid)
		sched_yield();
	pollfd report{h.reports[0], POLLIN, 0};
	char byte = 0;
	for (auto _ : state) {
		state.PauseTiming();
		while (!sleeping(h.tid))
			sched_yield();
		state.ResumeTiming();
		do
			pthread_kill(thread, SIGUSR1);
		while (::poll(&report, 1, 10) == 0);
		if (::read(h.reports[0], &byte, 1) != 1)
			state.SkipWithError("no report");
	}
	::close(h.empty[1]);
	pthread_join(thread, nullptr);
	::close(h.empty[0]);
	::close(h.reports[0]);
	::close(h.reports[1]);
	::sigaction(SIGUSR1, &old, nullptr);
}
BENCHMARK(BM_PosixHost_EintrLatency);

// ---------------------------------------------------------------- fork + exit + wait

int exit_at_once(void *) { return 0; }

void BM_Posix_ForkExitWait(benchmark::State &state, px::Options options) {
	auto bytes = static_cast<std::size_t>(state.range(0));
	run_process(
			state, options,
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				void *memory = nullptr;
				if (bytes) {
					memory = px::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
							MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
					if (px::mmap_failed(memory)) {
						++bad;
						return;
					}
					std::memset(memory, 0x5a, bytes); // every page touched
				}
				before = px::counters();
				for (auto _ : state) {
					pid_t child = px::fork(exit_at_once, nullptr);
					int status = -1;
					bad += child < 0 || px::waitpid(child, &status, 0) != child || status != 0;
				}
				after = px::counters();
				if (memory)
					px::munmap(memory, bytes);
			},
			no_programs);
}
BENCHMARK_CAPTURE(BM_Posix_ForkExitWait, cow, px::Options{})
		->Arg(0)
		->Arg(1 << 20)
		->Arg(16 << 20)
		->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Posix_ForkExitWait, eager_copy, px::Options{.fork_cow = false})
		->Arg(0)
		->Arg(1 << 20)
		->Arg(16 << 20)
		->Unit(benchmark::kMicrosecond);

void BM_PosixHost_ForkExitWait(benchmark::State &state) {
	auto bytes = static_cast<std::size_t>(state.range(0));
	void *memory = nullptr;
	if (bytes) {
		memory = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		std::memset(memory, 0x5a, bytes);
	}
	for (auto _ : state) {
		pid_t child = ::fork();
		if (child == 0)
			::_exit(0);
		::waitpid(child, nullptr, 0);
	}
	if (memory)
		::munmap(memory, bytes);
}
BENCHMARK(BM_PosixHost_ForkExitWait)
		->Arg(0)
		->Arg(1 << 20)
		->Arg(16 << 20)
		->Unit(benchmark::kMicrosecond);

} // namespace
