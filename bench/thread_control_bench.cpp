// Thread-control benchmarks: a supercall answered by a supervisor through a trap (observe,
// helLoadRegisters, helStoreRegisters, helResume) or by the inline handler, and the latency of
// helInterruptThread on a thread blocked in helFutexWait. docs/benchmarks.md has the command
// and the figures; BM_Syscall_Nop_Fiber (bench_main.cpp) is the baseline they are compared with.
//
// As in ipc_bench.cpp, the benchmark loop runs inside a simulated thread (the caller of the
// supercalls, or the supervisor that interrupts), pinned where a case has two CPUs, so that the
// timer starts and stops on one host thread; helsim::bench::Simulation
// (include/helsim/benchmark.hpp) builds the machine, runs it and turns a failed run into an
// error. The supervisor learns how many supercalls to serve from
// state.max_iterations plus the warm-up count. The supercall cases use wall-clock time
// (UseRealTime): the trap is a hand-off between two fibers, which on two CPUs are two host
// threads. BM_Interrupt_Latency times only the interrupt itself (UseManualTime).
#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

constexpr std::int64_t kWarmup = 64;
constexpr int kSuperAdd = 1; // (a, b) -> Out0 = a + b, Out1 = a * b
using Gprs = std::array<HelWord, kHelNumGprs>;

// One supercall and the check of its answer.
bool add_supercall(HelWord a, HelWord b) {
	HelWord sum = 0, product = 0;
	HelError e = helSyscall2_2(kHelCallSuper + kSuperAdd, a, b, &sum, &product);
	return e == kHelErrNone && sum == a + b && product == a * b;
}

void pin(HelHandle thread, int cpu) {
	std::uint8_t mask = static_cast<std::uint8_t>(1u << cpu);
	if (HelError e = helSetAffinity(thread, &mask, 1); e != kHelErrNone)
		throw helsim::HelException{"helSetAffinity", e}; // the thread ends with `threw`
}

// Submits an observe and waits for it: one helDriveQueue (drive, then wait) unless the thread
// is already stopped.
HelObserveResult observe(helsim::Dispatcher &d, HelHandle thread) {
	d.submit(kHelSubmitObserve, 1, HelSqObserve{thread});
	for (;;) {
		auto element = d.wait();
		if (element && (element->context() == 1 || element->context() == ~std::uintptr_t{0}))
			return element->as<HelObserveResult>(); // ~0: a submission error
	}
}

// Runs `body` as the loop's thread of `simulation` and turns a failed run (see
// helsim::bench::Simulation::run) or a failed check into a skipped case.
void finish(benchmark::State &state, helsim::bench::Simulation &simulation,
		const helsim::bench::Body &body, const std::int64_t &bad) {
	if (simulation.run(body) && bad)
		state.SkipWithError((std::to_string(bad) + " failed checks").c_str());
}

// ---------------------------------------------------------------- supercall traps

struct TrapRun {
	benchmark::State *state;
	int child_cpu; // < 0: no pinning
	std::int64_t bad = 0;
};

// The child: the benchmark loop, one trapped supercall per iteration. It is made with
// helCreateThread, so it iterates the State itself, pinned by the supervisor.
void trap_child(std::uintptr_t argument) {
	auto &run = *reinterpret_cast<TrapRun *>(argument);
	if (run.child_cpu >= 0) {
		int now = -1;
		run.bad += helGetCurrentCpu(&now) != kHelErrNone || now != run.child_cpu;
	}
	for (std::int64_t i = 0; i < kWarmup; ++i)
		run.bad += !add_supercall(20, 22);
	for (auto _ : *run.state)
		run.bad += !add_supercall(20, 22);
}

// A supervisor fiber starts the child stopped (in its own universe and space: where the child
// lives does not change the trap's path) and serves warm-up + max_iterations supercalls:
// observe, load General, answer, store, resume.
void supercall_trap(benchmark::State &state, unsigned cpus, unsigned supervisor_cpu,
		int child_cpu) {
	helsim::bench::Simulation simulation{state,
			{.cpus = cpus, .cpu = supervisor_cpu, .name = "supervisor"}};
	TrapRun run{&state, child_cpu};
	const std::int64_t rounds = kWarmup + static_cast<std::int64_t>(state.max_iterations);
	auto body = [&, rounds](helsim::bench::Loop &) {
		helsim::Dispatcher d;
		HelHandle universe = kHelNullHandle, space = kHelNullHandle, child = kHelNullHandle;
		run.bad += helCreateUniverse(&universe) != kHelErrNone;
		run.bad += helCreateSpace(&space) != kHelErrNone;
		run.bad += helCreateThread(universe, space, kHelAbiSystemV,
						   reinterpret_cast<void *>(&trap_child), &run, kHelThreadStopped,
						   &child) != kHelErrNone;
		if (child_cpu >= 0)
			pin(child, child_cpu);
		run.bad += observe(d, child).observation != kHelObserveInterrupt;
		run.bad += helResume(child) != kHelErrNone;
		for (std::int64_t i = 0; i < rounds; ++i) {
			run.bad += observe(d, child).observation != kHelObserveSuperCall + kSuperAdd;
			Gprs g{};
			run.bad += helLoadRegisters(child, kHelRegsGeneral, g.data()) != kHelErrNone;
			// Out0/Out1 are the registers of Arg0/Arg1: compute both before writing.
			HelWord a = g[kHelRegArg0], b = g[kHelRegArg1];
			g[kHelRegError] = kHelErrNone;
			g[kHelRegOut0] = a + b;
			g[kHelRegOut1] = a * b;
			run.bad += helStoreRegisters(child, kHelRegsGeneral, g.data()) != kHelErrNone;
			run.bad += helResume(child) != kHelErrNone;
		}
		run.bad += observe(d, child).error != kHelErrThreadTerminated;
		for (HelHandle h : {child, space, universe})
			run.bad += helCloseDescriptor(kHelThisUniverse, h) != kHelErrNone;
	};
	finish(state, simulation, body, run.bad);
	state.SetItemsProcessed(state.iterations()); // supercalls per second
}

// Supervisor and child on the one CPU of a one-CPU machine: each supercall is two simulated
// context switches on one host thread.
void BM_Supercall_Trap(benchmark::State &state) { supercall_trap(state, 1, 0, -1); }
BENCHMARK(BM_Supercall_Trap)->UseRealTime();

// Supervisor on CPU 0, child on CPU 1: each supercall is two cross-CPU hand-offs.
void BM_Supercall_Trap_CrossCpu(benchmark::State &state) { supercall_trap(state, 2, 0, 1); }
BENCHMARK(BM_Supercall_Trap_CrossCpu)->UseRealTime();

// ---------------------------------------------------------------- inline supercalls

// The same supercall answered by the inline handler (set_supercall_handler): no trap, no
// switch; the handler runs on the caller's stack like a built-in syscall.
void BM_Supercall_Inline(benchmark::State &state) {
	helsim::bench::Simulation simulation{state, {.name = "caller"}};
	helsim::ext::set_supercall_handler(simulation.machine(),
			[](helsim::ext::Caller &, std::uint32_t number, const HelWord *args, HelWord *outs) {
				if (number != static_cast<std::uint32_t>(kHelCallSuper + kSuperAdd))
					return kHelErrIllegalSyscall;
				outs[0] = args[0] + args[1];
				outs[1] = args[0] * args[1];
				return kHelErrNone;
			});
	std::int64_t bad = 0;
	auto body = [&](helsim::bench::Loop &loop) {
		for (std::int64_t i = 0; i < kWarmup; ++i)
			bad += !add_supercall(20, 22);
		for (auto _ : loop)
			bad += !add_supercall(20, 22);
	};
	finish(state, simulation, body, bad);
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Supercall_Inline)->UseRealTime();

// ---------------------------------------------------------------- interrupts

struct Sleeper {
	int word = 0; // 1: stop waiting
};

// The child: waits on the word until it is 1; interrupts cancel the waits in between.
void sleeper(std::uintptr_t argument) {
	auto &s = *reinterpret_cast<Sleeper *>(argument);
	while (std::atomic_ref<int>{s.word}.load(std::memory_order_acquire) == 0)
		(void)helFutexWait(&s.word, 0, kHelWaitInfinite);
}

// Manual time: from helInterruptThread on a child blocked in helFutexWait until the
// supervisor's observe has completed (the child woke, its wait returned kHelErrCancelled, it
// stopped and posted the observation). Then, untimed: the General check that the stop was the
// wait's exit, helResume, and a helYield that lets the child block again (on one CPU the child
// runs until it blocks before the supervisor continues).
void BM_Interrupt_Latency(benchmark::State &state) {
	helsim::bench::Simulation simulation{state, {.name = "supervisor"}};
	Sleeper s;
	std::int64_t bad = 0;
	auto body = [&](helsim::bench::Loop &loop) {
		helsim::Dispatcher d;
		HelHandle child = kHelNullHandle;
		bad += helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					   reinterpret_cast<void *>(&sleeper), &s, 0, &child) != kHelErrNone;
		auto one_interrupt = [&] {
			(void)helYield(); // the child blocks in helFutexWait
			auto start = std::chrono::steady_clock::now();
			bad += helInterruptThread(child) != kHelErrNone;
			bad += observe(d, child).observation != kHelObserveInterrupt;
			auto end = std::chrono::steady_clock::now();
			Gprs g{};
			bad += helLoadRegisters(child, kHelRegsGeneral, g.data()) != kHelErrNone;
			bad += g[kHelRegError] != static_cast<HelWord>(kHelErrCancelled); // not an entry stop
			bad += helResume(child) != kHelErrNone;
			return std::chrono::duration<double>(end - start).count();
		};
		for (std::int64_t i = 0; i < kWarmup; ++i)
			one_interrupt();
		for (auto _ : loop)
			state.SetIterationTime(one_interrupt());
		std::atomic_ref<int>{s.word}.store(1, std::memory_order_release);
		bad += helFutexWake(&s.word, 1) != kHelErrNone;
		// Closing the last handle would kill a child that has not returned yet: wait for its end.
		bad += observe(d, child).error != kHelErrThreadTerminated;
		bad += helCloseDescriptor(kHelThisUniverse, child) != kHelErrNone;
	};
	finish(state, simulation, body, bad);
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Interrupt_Latency)->UseManualTime();

} // namespace
