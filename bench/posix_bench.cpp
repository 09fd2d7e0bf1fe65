// POSIX subsystem benchmarks: calls made inside a POSIX process (helsim::posix), each with its
// acceleration strategy on and off, next to the host Linux call it stands for, in one binary.
// docs/benchmarks.md#posix has the command, the figures and the ratios.
//
// A BM_Posix_* case builds a one-CPU threads-mode machine and a helsim::posix::System with the
// case's Options, and runs the benchmark loop as the main of one POSIX process: the loop's
// thread and the POSIX server share the simulated CPU, so every RPC is a same-CPU round trip,
// and the timers start and stop on that CPU's host thread (the CPU time column is all
// simulated work: client, kernel and server). Each case also reports, per operation, what the
// subsystem did (from posix::counters(), taken around the loop): requests the POSIX server
// served, supercalls, passthrough requests, forwarded requests and client IPC submissions.
// BM_PosixHost_* cases are the host baselines: the same operation as a Linux syscall.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <helsim/machine.hpp>
#include <helsim/posix.hpp>

#include "posix_support.hpp"

namespace {

namespace px = helsim::posix;
using helsim::bench_posix::in_process;

// ---------------------------------------------------------------- getpid: an RPC on the POSIX lane

void BM_Posix_Getpid(benchmark::State &state) {
	in_process(state, {}, [](std::int64_t &) { return [] { return px::getpid() == 1; }; });
}
BENCHMARK(BM_Posix_Getpid);

void BM_PosixHost_Getpid(benchmark::State &state) {
	for (auto _ : state)
		benchmark::DoNotOptimize(syscall(SYS_getpid));
}
BENCHMARK(BM_PosixHost_Getpid);

// ---------------------------------------------------------------- gettid: a supercall, or an RPC

void BM_Posix_Gettid(benchmark::State &state, bool supercalls) {
	in_process(state, {.supercalls = supercalls},
			[](std::int64_t &) { return [] { return px::gettid() == 1; }; });
}
BENCHMARK_CAPTURE(BM_Posix_Gettid, supercall, true);
BENCHMARK_CAPTURE(BM_Posix_Gettid, rpc, false);

// The ablation's third point: a host callback answers on the calling thread, no stop.
void BM_Posix_Gettid_Inline(benchmark::State &state) {
	in_process(state, {.inline_supercalls = true},
			[](std::int64_t &) { return [] { return px::gettid() == 1; }; });
}
BENCHMARK(BM_Posix_Gettid_Inline);

void BM_PosixHost_Gettid(benchmark::State &state) {
	for (auto _ : state)
		benchmark::DoNotOptimize(syscall(SYS_gettid));
}
BENCHMARK(BM_PosixHost_Gettid);

// ---------------------------------------------------------------- sigprocmask(query)

void BM_Posix_SigprocmaskQuery(benchmark::State &state, bool supercalls) {
	in_process(state, {.supercalls = supercalls}, [](std::int64_t &) {
		return [] {
			sigset_t old;
			return px::sigprocmask(SIG_BLOCK, nullptr, &old) == 0;
		};
	});
}
BENCHMARK_CAPTURE(BM_Posix_SigprocmaskQuery, supercall, true);
BENCHMARK_CAPTURE(BM_Posix_SigprocmaskQuery, rpc, false);

void BM_PosixHost_SigprocmaskQuery(benchmark::State &state) {
	sigset_t old;
	for (auto _ : state) {
		benchmark::DoNotOptimize(::sigprocmask(SIG_BLOCK, nullptr, &old));
		benchmark::ClobberMemory();
	}
}
BENCHMARK(BM_PosixHost_SigprocmaskQuery);

// ---------------------------------------------------------------- read 1 byte of /dev/zero

void BM_Posix_Read1_DevZero(benchmark::State &state, bool file_table) {
	in_process(state, {.file_table = file_table}, [](std::int64_t &bad) {
		int fd = px::open("/dev/zero", O_RDONLY);
		bad += fd < 0;
		return [fd] {
			char byte = 1;
			return px::read(fd, &byte, 1) == 1 && byte == 0;
		};
	});
}
BENCHMARK_CAPTURE(BM_Posix_Read1_DevZero, file_table, true);
BENCHMARK_CAPTURE(BM_Posix_Read1_DevZero, forwarded, false);

void BM_PosixHost_Read1_DevZero(benchmark::State &state) {
	int fd = ::open("/dev/zero", O_RDONLY);
	if (fd < 0) {
		state.SkipWithError("cannot open /dev/zero");
		return;
	}
	char byte = 1;
	for (auto _ : state) {
		benchmark::DoNotOptimize(::read(fd, &byte, 1));
		benchmark::ClobberMemory();
	}
	::close(fd);
}
BENCHMARK(BM_PosixHost_Read1_DevZero);

// ---------------------------------------------------------------- clock_gettime(CLOCK_REALTIME)

void BM_Posix_ClockRealtime(benchmark::State &state, bool clock_page) {
	in_process(state, {.clock_page = clock_page}, [](std::int64_t &) {
		return [] {
			timespec now{};
			return px::clock_gettime(CLOCK_REALTIME, &now) == 0 && now.tv_sec > 0;
		};
	});
}
BENCHMARK_CAPTURE(BM_Posix_ClockRealtime, page, true);
BENCHMARK_CAPTURE(BM_Posix_ClockRealtime, rpc, false);

// CLOCK_MONOTONIC is the fs-word lookup and helGetClock: the part of the page path's cost that
// is not the page.
void BM_Posix_ClockMonotonic(benchmark::State &state) {
	in_process(state, {}, [](std::int64_t &) {
		return [] {
			timespec now{};
			return px::clock_gettime(CLOCK_MONOTONIC, &now) == 0;
		};
	});
}
BENCHMARK(BM_Posix_ClockMonotonic);

void BM_PosixHost_ClockRealtime(benchmark::State &state) {
	timespec now{};
	for (auto _ : state) {
		benchmark::DoNotOptimize(::clock_gettime(CLOCK_REALTIME, &now));
		benchmark::ClobberMemory();
	}
}
BENCHMARK(BM_PosixHost_ClockRealtime);

// ---------------------------------------------------------------- a pipe: write 64 bytes, read
// them

constexpr std::size_t kPipeBytes = 64;

void BM_Posix_PipeWriteRead64(benchmark::State &state, bool file_table) {
	in_process(state, {.file_table = file_table}, [](std::int64_t &bad) {
		int fds[2] = {-1, -1};
		bad += px::pipe(fds) != 0;
		return [fds] {
			char out[kPipeBytes], in[kPipeBytes];
			std::memset(out, 'p', sizeof out);
			return px::write(fds[1], out, sizeof out) == static_cast<ssize_t>(kPipeBytes) &&
					px::read(fds[0], in, sizeof in) == static_cast<ssize_t>(kPipeBytes);
		};
	});
}
BENCHMARK_CAPTURE(BM_Posix_PipeWriteRead64, file_table, true);
BENCHMARK_CAPTURE(BM_Posix_PipeWriteRead64, forwarded, false);

void BM_PosixHost_PipeWriteRead64(benchmark::State &state) {
	int fds[2];
	if (::pipe(fds) != 0) {
		state.SkipWithError("pipe failed");
		return;
	}
	char out[kPipeBytes], in[kPipeBytes];
	std::memset(out, 'p', sizeof out);
	std::int64_t bad = 0;
	for (auto _ : state) {
		bad += ::write(fds[1], out, sizeof out) != static_cast<ssize_t>(kPipeBytes);
		bad += ::read(fds[0], in, sizeof in) != static_cast<ssize_t>(kPipeBytes);
	}
	::close(fds[0]);
	::close(fds[1]);
	if (bad)
		state.SkipWithError("short pipe transfer");
}
BENCHMARK(BM_PosixHost_PipeWriteRead64);

// ---------------------------------------------------------------- read sizes from a pipe
// Each iteration writes `size` bytes into a pipe and reads them back in one read: the read's
// cost by size, with every request one submission (batching) or one per action.

void BM_Posix_PipeReadSize(benchmark::State &state, bool batching) {
	auto size = static_cast<std::size_t>(state.range(0));
	in_process(state, {.batching = batching}, [size](std::int64_t &bad) {
		int fds[2] = {-1, -1};
		bad += px::pipe(fds) != 0;
		return [fds, size, out = std::string(size, 'r'), in = std::string(size, 0)]() mutable {
			auto n = static_cast<ssize_t>(size);
			return px::write(fds[1], out.data(), size) == n &&
					px::read(fds[0], in.data(), size) == n;
		};
	});
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK_CAPTURE(BM_Posix_PipeReadSize, batched, true)->Arg(1)->Arg(64)->Arg(4096)->Arg(65536);
BENCHMARK_CAPTURE(BM_Posix_PipeReadSize, unbatched, false)->Arg(1)->Arg(64)->Arg(4096)->Arg(65536);

void BM_PosixHost_PipeReadSize(benchmark::State &state) {
	auto size = static_cast<std::size_t>(state.range(0));
	int fds[2];
	if (::pipe(fds) != 0) {
		state.SkipWithError("pipe failed");
		return;
	}
	std::string out(size, 'r'), in(size, 0);
	std::int64_t bad = 0;
	for (auto _ : state) {
		bad += ::write(fds[1], out.data(), size) != static_cast<ssize_t>(size);
		bad += ::read(fds[0], in.data(), size) != static_cast<ssize_t>(size);
	}
	::close(fds[0]);
	::close(fds[1]);
	if (bad)
		state.SkipWithError("short pipe transfer");
	state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_PosixHost_PipeReadSize)->Arg(1)->Arg(64)->Arg(4096)->Arg(65536);

} // namespace
