// helsim microbenchmarks (Google Benchmark). docs/benchmarks.md has the command, the figures
// and the goals they are measured against.
//
// Cases that run on a simulated thread either attach the benchmark thread to a Machine created
// once per benchmark run, or run the benchmark loop itself inside a fiber with
// helsim::bench::run_in_simulation (include/helsim/benchmark.hpp) while the benchmark thread
// waits in Machine::run(): the timer then reads the simulated CPU's host thread, which is the
// thread the loop runs on from start to end (a one-CPU machine has one).
#include <benchmark/benchmark.h>

#include <liburing.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <utility>

#include <boost/context/fiber.hpp>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

helsim::MachineConfig one_cpu() {
	helsim::MachineConfig config;
	config.cpus = 1;
	return config;
}

// Per-operation time next to the per-iteration time: `n` operations make one iteration.
benchmark::Counter per(double n) {
	return benchmark::Counter{n,
			benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert};
}

// ---------------------------------------------------------------- syscalls

// helNop from an attached host thread: the cost of entering and leaving the kernel.
void BM_Syscall_Nop(benchmark::State &state) {
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	HelError failed = kHelErrNone;
	for (auto _ : state) {
		HelError e = helNop();
		benchmark::DoNotOptimize(e);
		failed |= e;
	}
	if (failed != kHelErrNone)
		state.SkipWithError("helNop failed");
}
BENCHMARK(BM_Syscall_Nop);

// helNop in a loop inside a fiber thread of a one-CPU machine in `mode`.
void nop_in_fiber(benchmark::State &state, helsim::Mode mode) {
	HelError failed = kHelErrNone;
	bool ran = helsim::bench::run_in_simulation(state,
			[&](helsim::bench::Loop &loop) {
				for (auto _ : loop) {
					HelError e = helNop();
					benchmark::DoNotOptimize(e);
					failed |= e;
				}
			},
			{.mode = mode});
	if (ran && failed != kHelErrNone)
		state.SkipWithError("helNop failed");
	state.SetItemsProcessed(state.iterations());
}

// The same from a fiber thread.
void BM_Syscall_Nop_Fiber(benchmark::State &state) { nop_in_fiber(state, helsim::Mode::threads); }
BENCHMARK(BM_Syscall_Nop_Fiber);

// The same in deterministic mode: each call is also charged to virtual time and is a seeded
// scheduling decision at entry and exit. items_per_second = syscalls per second; sim_ns/iter =
// virtual time per call (CostModel::syscall_ns plus the seeded yields' switches).
void BM_Det_SyscallsPerSecond(benchmark::State &state) {
	nop_in_fiber(state, helsim::Mode::deterministic);
}
BENCHMARK(BM_Det_SyscallsPerSecond);
// ---------------------------------------------------------------- completion rings

// A batch of kHelSubmitAsyncNop through the SQ, one helDriveQueue, then every completion
// reaped from the CQ (chunks are recycled as the elements are released).
void BM_Queue_AsyncNop(benchmark::State &state) {
	const auto batch = static_cast<std::uintptr_t>(state.range(0));
	helsim::Machine machine{one_cpu()};
	auto attached = machine.attach();
	std::int64_t bad = 0;
	{
		helsim::Dispatcher dispatcher;
		for (auto _ : state) {
			for (std::uintptr_t i = 0; i < batch; ++i)
				dispatcher.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
			dispatcher.flush();
			for (std::uintptr_t i = 0; i < batch; ++i) {
				auto element = dispatcher.wait();
				bad += !element || element->error() != kHelErrNone || element->context() != i;
			}
		}
	}
	state.SetItemsProcessed(state.iterations() * state.range(0));
	state.counters["per_op"] = per(static_cast<double>(batch));
	if (bad)
		state.SkipWithError("a completion was missing, failed or out of order");
}
BENCHMARK(BM_Queue_AsyncNop)->Arg(32)->Arg(256);

// The host's own completion ring doing the same: N IORING_OP_NOP in the SQ, one io_uring_enter
// that submits them and waits for all N, then every CQE reaped. BM_Queue_AsyncNop is held
// against it per op. The ring is set up outside the loop, as the dispatcher's queue is.
void BM_Host_IoUringNop(benchmark::State &state) {
	const auto batch = static_cast<unsigned>(state.range(0));
	io_uring ring;
	// liburing returns -errno; seccomp or io_uring_disabled make it fail rather than the kernel
	// version alone, so the case is skipped instead of failing the binary.
	if (int e = io_uring_queue_init(batch, &ring, 0); e < 0) {
		const char *name = strerrorname_np(-e);
		std::string message = "io_uring_queue_init failed: ";
		message += name ? name : "errno " + std::to_string(-e);
		message += std::string{" ("} + std::strerror(-e) + ")";
		state.SkipWithError(message.c_str());
		return;
	}
	std::int64_t bad = 0;
	for (auto _ : state) {
		for (unsigned i = 0; i < batch; ++i) {
			io_uring_sqe *sqe = io_uring_get_sqe(&ring);
			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data64(sqe, i);
		}
		bad += io_uring_submit_and_wait(&ring, batch) != static_cast<int>(batch);
		unsigned head, reaped = 0;
		io_uring_cqe *cqe;
		// Only each CQE's result and range are checked, not their order: io_uring does not
		// promise that completions arrive in submission order (nops do today).
		io_uring_for_each_cqe(&ring, head, cqe) {
			bad += cqe->res != 0 || cqe->user_data >= batch;
			++reaped;
		}
		io_uring_cq_advance(&ring, reaped);
		bad += reaped != batch;
	}
	io_uring_queue_exit(&ring);
	state.SetItemsProcessed(state.iterations() * state.range(0));
	state.counters["per_op"] = per(static_cast<double>(batch));
	if (bad)
		state.SkipWithError("a submission or completion was missing or failed");
}
BENCHMARK(BM_Host_IoUringNop)->Arg(32)->Arg(256);

// ---------------------------------------------------------------- scheduling

// Two fibers on one simulated CPU yielding to each other. One iteration is a round trip:
// bench -> partner -> bench, i.e. two simulated context switches (per_switch is half of it).
void BM_Fiber_Switch(benchmark::State &state) {
	helsim::bench::Simulation simulation{state};
	std::atomic<bool> stop{false};
	simulation.peer("partner", 0, [&](std::span<const HelHandle>) {
		while (!stop.load(std::memory_order_relaxed))
			helYield();
	});
	simulation.run([&](helsim::bench::Loop &loop) {
		for (auto _ : loop)
			helYield();
		stop.store(true, std::memory_order_relaxed);
	});
	state.SetItemsProcessed(state.iterations() * 2);
	state.counters["per_switch"] = per(2);
}
BENCHMARK(BM_Fiber_Switch);

// ---------------------------------------------------------------- host baselines

// The cheapest real Linux syscall.
void BM_Host_Getppid(benchmark::State &state) {
	for (auto _ : state)
		benchmark::DoNotOptimize(syscall(SYS_getppid));
}
BENCHMARK(BM_Host_Getppid);

// Raw boost.context ping-pong: one iteration resumes a fiber and gets resumed back, i.e. two
// context switches, the same unit as BM_Fiber_Switch.
void BM_Host_ContextSwitch(benchmark::State &state) {
	namespace ctx = boost::context;
	bool stop = false;
	ctx::fiber partner{[&stop](ctx::fiber &&caller) {
		while (!stop)
			caller = std::move(caller).resume();
		return std::move(caller);
	}};
	for (auto _ : state)
		partner = std::move(partner).resume();
	stop = true;
	partner = std::move(partner).resume();
	if (partner)
		state.SkipWithError("the partner fiber did not finish");
	state.SetItemsProcessed(state.iterations() * 2);
	state.counters["per_switch"] = per(2);
}
BENCHMARK(BM_Host_ContextSwitch);

} // namespace

BENCHMARK_MAIN();
