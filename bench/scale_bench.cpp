// Scale benchmarks (issue 16, requirement 6): each family grows the work by orders of magnitude
// and reports the cost per operation, which should stay flat. docs/benchmarks.md ("Scale") has
// the command and the figures.
//
// Names are exactly BM_Scale_<Family>/<N>: a plotting script keys on them. That is why no case
// calls Iterations(), MinTime() or UseRealTime(), which Google Benchmark would append to the
// name ("/iterations:1", "/real_time"). One iteration is one whole cycle at size N (grow,
// measure, tear down), so `--benchmark_min_time=0` runs each case exactly once; without it
// Google Benchmark repeats the cycle until it has its usual half second of CPU time, and every
// figure is then the mean over the iterations.
//
// The figures are counters, computed around each phase from std::chrono::steady_clock (wall
// time) whatever time column Google Benchmark reads:
//   ns_per_op       wall ns per operation of the family's main phase (each case says which)
//   cpu_ns_per_op   the same phase in CPU time of the machine's one CPU (one-CPU families)
//   bytes_per_item  host memory per item, from the growth of the resident set (an estimate)
//   (more)          further per-item phase costs where one phase does not say it all
//
// Everything but BM_Scale_RoundTripCpus runs on a one-CPU machine in threads mode, so the
// phase's work is done on one host thread: the figure is what helsim costs, not how fast this
// VM hands a wake-up to another vCPU (see the IPC section of docs/benchmarks.md for how much
// that varies). Simulated stacks are 64 KiB.
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

#include "bench_support.hpp"

namespace {

// The round trip both files measure, and the checks around it (bench_support.hpp).
using namespace helsim::bench;

constexpr std::size_t kStackSize = std::size_t{64} << 10;

using Clock = std::chrono::steady_clock;

double ns_between(Clock::time_point from, Clock::time_point to) {
	return std::chrono::duration<double, std::nano>(to - from).count();
}

// A point in time on both clocks: the wall clock and the calling host thread's CPU time. On a
// one-CPU machine every simulated thread runs on the CPU's one host thread, so its CPU time is
// all the simulated work; unlike wall time it leaves out the time this shared VM gives to
// other jobs.
struct Stamp {
	Clock::time_point wall;
	std::int64_t cpu_ns;
};

Stamp stamp() {
	timespec cpu{};
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
	return {Clock::now(), std::int64_t{cpu.tv_sec} * 1'000'000'000 + cpu.tv_nsec};
}

// ---------------------------------------------------------------- host memory

// The resident set of the whole process, in bytes (/proc/self/statm, second field). Read with
// plain open/read into a stack buffer: stdio would allocate the very memory being measured.
std::int64_t resident_bytes() {
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	std::array<char, 128> text{};
	ssize_t n = read(fd, text.data(), text.size() - 1);
	close(fd);
	if (n <= 0)
		return -1;
	char *at = nullptr;
	std::strtoull(text.data(), &at, 10); // total program size
	const unsigned long long pages = std::strtoull(at, nullptr, 10);
	return static_cast<std::int64_t>(pages) * sysconf(_SC_PAGESIZE);
}

// Resident-set growth across one phase, an estimate of what the phase's items cost in host
// memory. RSS is an approximation:
// - it counts pages, not bytes: at a few bytes per item, small N reads in page-sized steps, or
//   0 when the items fit in memory allocated before the phase;
// - malloc keeps freed memory, and the phase reuses what is still resident without growing the
//   set. malloc_trim first gives back what it can: free chunks inside every arena and the top of
//   the main arena, but not the top of another thread's arena, and the simulated CPU's host
//   thread inherits the arena of an earlier one. Run with MALLOC_ARENA_MAX=1 (every thread in
//   the main arena) and each repetition starts from the same state; without it a repetition
//   reuses what an earlier case left and reads low;
// - caches that outlive a cycle (a stack pool, the packet cache) cost memory only in the cycle
//   that fills them: each case reports its first iteration;
// - the other host threads (idle simulated CPUs) are meant to be idle meanwhile.
class ResidentGrowth {
public:
	void start() {
		malloc_trim(0);
		before_ = resident_bytes();
	}
	void stop() { after_ = resident_bytes(); }
	bool valid() const { return before_ >= 0 && after_ >= 0; }
	// Per item, once the phase is over.
	double per(std::size_t items) const {
		return static_cast<double>(after_ - before_) / static_cast<double>(items);
	}

private:
	std::int64_t before_ = -1, after_ = -1;
};

// Accumulates the per-item cost of one phase over the iterations of a run; the counters are the
// means per item.
struct PhaseTotals {
	double wall_ns = 0, cpu_ns = 0;
	std::int64_t items = 0;
	void add(const Stamp &from, const Stamp &to, std::size_t n) {
		wall_ns += ns_between(from.wall, to.wall);
		cpu_ns += static_cast<double>(to.cpu_ns - from.cpu_ns);
		items += static_cast<std::int64_t>(n);
	}
	double wall_per_item() const { return items ? wall_ns / static_cast<double>(items) : 0.0; }
	double cpu_per_item() const { return items ? cpu_ns / static_cast<double>(items) : 0.0; }
};

helsim::bench::Options one_cpu() {
	helsim::bench::Options options{.cpus = 1, .cpu = 0, .name = "scale"};
	options.configure = [](helsim::MachineConfig &config) { config.stack_size = kStackSize; };
	return options;
}

// A Simulation with `options` running `body`; then the case fails if any operation is still
// pending in the kernel (a completion that never came).
bool run_checked(benchmark::State &state, helsim::bench::Options options,
		const helsim::bench::Body &body) {
	helsim::bench::Simulation simulation{state, std::move(options)};
	if (!simulation.run(body))
		return false;
	if (const auto pending = simulation.report().operations_pending(); pending != 0) {
		const std::string problem =
				"helsim: " + std::to_string(pending) + " operations still pending after the run";
		state.SkipWithError(problem.c_str());
		return false;
	}
	return true;
}

// ---------------------------------------------------------------- futex words

int load(const int &word) { return __atomic_load_n(&word, __ATOMIC_ACQUIRE); }

// Waits until `word` holds `target`; the word only moves towards it.
void wait_until(int &word, int target) {
	for (int seen; (seen = load(word)) != target;) {
		HelError e = helFutexWait(&word, seen, kHelWaitInfinite);
		if (e != kHelErrFutexRace)
			check(e, "helFutexWait");
	}
}

// Adds one to `word` and wakes its waiter once it reaches `target`.
void arrive(int &word, int target) {
	if (__atomic_add_fetch(&word, 1, __ATOMIC_ACQ_REL) == target)
		check(helFutexWake(&word, 1), "helFutexWake");
}

// ---------------------------------------------------------------- threads alive at once

// Shared by the spawning thread and its children (host memory, so a futex keyed by address).
struct Gate {
	int arrived = 0; // children that reached their wait
	int release = 0; // 1 lets them go
	int left = 0;    // children past their wait
	int n = 0;
};

// A child: report in, block until released, report out. Nothing after the last arrive() can
// block, so once `left` reaches n every child has returned or is returning (closing a handle
// then cannot turn its outcome into `killed`: only a blocking call is a cancellation point).
// `n` is read each time: a failed spawn lowers it (release_early).
void child(std::uintptr_t argument) {
	Gate &gate = *reinterpret_cast<Gate *>(argument);
	arrive(gate.arrived, load(gate.n));
	wait_until(gate.release, 1);
	arrive(gate.left, load(gate.n));
}

// After helCreateThread failed: lets the children created so far go, waits until they have
// left and closes their handles, so that the case ends with that error alone instead of a stuck
// machine whose report lists every blocked child (tens of thousands of them when a host runs
// out of stacks).
void release_early(Gate &gate, std::span<const HelHandle> created) {
	const int n = static_cast<int>(created.size());
	__atomic_store_n(&gate.n, n, __ATOMIC_RELEASE);
	__atomic_store_n(&gate.release, 1, __ATOMIC_RELEASE);
	check(helFutexWake(&gate.release, UINT_MAX), "helFutexWake");
	wait_until(gate.left, n);
	for (HelHandle thread : created)
		check(helCloseDescriptor(kHelThisUniverse, thread), "helCloseDescriptor");
}

// One iteration: the loop's thread creates N threads with helCreateThread (same universe and
// space, so nothing but the thread itself is created) and waits until every one of them is
// blocked on the futex word; then one helFutexWake releases all, it waits until all have left,
// and closes the N thread handles.
//   ns_per_op: the spawn phase per thread: helCreateThread, the first switch to the fiber and
//     its run up to its futex wait (on one CPU the children run once the spawner waits).
//   exit_ns: release, wake-up, return, end of the fiber and the close of its handle.
//   bytes_per_item: resident growth over the spawn phase (thread object, its handle, the
//     touched part of its 64 KiB stack, the futex waiter), first iteration.
void BM_Scale_ThreadsAlive(benchmark::State &state) {
	const auto n = static_cast<std::size_t>(state.range(0));
	PhaseTotals spawn, leave;
	double bytes_per_item = 0;
	bool first = true;
	// Outside the spawner's stack: if the spawner fails, children still blocked on it are
	// unwound at teardown, after the spawner's stack is gone.
	Gate gate;
	run_checked(state, one_cpu(), [&](helsim::bench::Loop &loop) {
		// Written by index, allocated and touched before the phase: its pages are not the
		// threads'.
		std::vector<HelHandle> threads(n, kHelNullHandle);
		for (auto _ : loop) {
			gate = Gate{.n = static_cast<int>(n)};
			ResidentGrowth memory;
			memory.start();
			const auto t0 = stamp();
			for (std::size_t i = 0; i < n; ++i) {
				HelHandle thread = kHelNullHandle;
				HelError e = helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						reinterpret_cast<void *>(&child), reinterpret_cast<void *>(&gate), 0,
						&thread);
				if (e != kHelErrNone) {
					release_early(gate, std::span{threads}.first(i));
					throw std::runtime_error{"helCreateThread failed with HelError " +
							std::to_string(e) + " (" + _helErrorString(e) + ") after " +
							std::to_string(i) + " threads alive at once"};
				}
				threads[i] = thread;
			}
			wait_until(gate.arrived, gate.n);
			const auto t1 = stamp();
			memory.stop();
			__atomic_store_n(&gate.release, 1, __ATOMIC_RELEASE);
			check(helFutexWake(&gate.release, UINT_MAX), "helFutexWake");
			wait_until(gate.left, gate.n);
			for (HelHandle thread : threads)
				check(helCloseDescriptor(kHelThisUniverse, thread), "helCloseDescriptor");
			const auto t2 = stamp();
			spawn.add(t0, t1, n);
			leave.add(t1, t2, n);
			if (first && memory.valid())
				bytes_per_item = memory.per(n);
			first = false;
		}
	});
	state.counters["ns_per_op"] = spawn.wall_per_item();
	state.counters["cpu_ns_per_op"] = spawn.cpu_per_item();
	state.counters["exit_ns"] = leave.wall_per_item();
	state.counters["bytes_per_item"] = bytes_per_item;
}
// 100k threads alive at once rely on the fiber stack pool (sim/stack_pool.cpp): with two
// mappings per stack, Linux's vm.max_map_count (65530) stopped helCreateThread near 32k.
BENCHMARK(BM_Scale_ThreadsAlive)->Arg(1000)->Arg(10000)->Arg(100000);

// ---------------------------------------------------------------- handles in one universe

constexpr std::size_t kLookups = std::size_t{1} << 16;

// One iteration: N handles in the loop thread's universe, each a copy of one oneshot event's
// descriptor made by helTransferDescriptor into the same universe (the cheapest real handle: a
// slot and a reference, no new object), then kLookups helDescriptorInfo calls on handles picked
// at random among the N (each resolves its handle through the universe's table and checks the
// type), then every copy closed.
//   ns_per_op: helTransferDescriptor per handle.
//   lookup_ns: helDescriptorInfo per call, at N live handles.
//   close_ns: helCloseDescriptor per handle.
//   bytes_per_item: resident growth while the N handles were created, first iteration.
void BM_Scale_Handles(benchmark::State &state) {
	const auto n = static_cast<std::size_t>(state.range(0));
	PhaseTotals create, lookup, closing;
	double bytes_per_item = 0;
	bool first = true;
	run_checked(state, one_cpu(), [&](helsim::bench::Loop &loop) {
		HelHandle event = kHelNullHandle;
		check(helCreateOneshotEvent(&event), "helCreateOneshotEvent");
		std::vector<HelHandle> handles(n, kHelNullHandle); // touched before the phase
		std::mt19937_64 random{16};
		std::uniform_int_distribution<std::size_t> pick{0, n - 1};
		std::vector<std::size_t> picks(kLookups);
		for (auto &p : picks)
			p = pick(random);
		for (auto _ : loop) {
			ResidentGrowth memory;
			memory.start();
			const auto t0 = stamp();
			for (std::size_t i = 0; i < n; ++i) {
				HelHandle copy = kHelNullHandle;
				check(helTransferDescriptor(event, kHelThisUniverse, kHelTransferDescriptorOut,
							  kHelRightsMax, 0, &copy),
						"helTransferDescriptor");
				handles[i] = copy;
			}
			const auto t1 = stamp();
			memory.stop();
			bool right_type = true;
			for (std::size_t p : picks) {
				HelDescriptorInfo info{};
				check(helDescriptorInfo(handles[p], &info), "helDescriptorInfo");
				right_type &= info.type == kHelDescOneshotEvent;
			}
			const auto t2 = stamp();
			expect(right_type, "helDescriptorInfo reported another type than a oneshot event");
			for (HelHandle h : handles)
				check(helCloseDescriptor(kHelThisUniverse, h), "helCloseDescriptor");
			const auto t3 = stamp();
			create.add(t0, t1, n);
			lookup.add(t1, t2, kLookups);
			closing.add(t2, t3, n);
			if (first && memory.valid())
				bytes_per_item = memory.per(n);
			first = false;
		}
		check(helCloseDescriptor(kHelThisUniverse, event), "helCloseDescriptor");
	});
	state.counters["ns_per_op"] = create.wall_per_item();
	state.counters["cpu_ns_per_op"] = create.cpu_per_item();
	state.counters["lookup_ns"] = lookup.wall_per_item();
	state.counters["close_ns"] = closing.wall_per_item();
	state.counters["bytes_per_item"] = bytes_per_item;
}
BENCHMARK(BM_Scale_Handles)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);

// ---------------------------------------------------------------- operations in flight

// The ring of the OpsInFlight case: 16 CQ chunks of 16 KiB hold 8192 event completions (32
// bytes each). Past that, the kernel keeps completions in its waiting list (IpcQueue::post)
// until reaped chunks come back, so at 10k and more most completions take that path.
constexpr helsim::QueueConfig kInFlightQueue{.cq_chunks = 16,
		.sq_chunks = 16,
		.chunk_size = std::size_t{16} << 10};

// One iteration: N kHelSubmitAwaitEvent on one oneshot event, sequence 1 (wait for the raise),
// appended to the SQ through a Dispatcher and handed to the kernel by its drives, so all N
// wait at once; then one helRaiseEvent completes them all and the N completions are reaped.
// Every completion must arrive exactly once (context seen once, below N), with kHelErrNone,
// sequence 2 and bit 0; none may arrive before the raise.
//   ns_per_op: the whole cycle per operation: submission, wait, completion, reaping.
//   submit_ns, complete_ns: the submission phase and the raise-to-last-reap phase per op.
//   bytes_per_item: resident growth while the N awaits were submitted (the kernel's record of
//     each waiting await), first iteration.
void BM_Scale_OpsInFlight(benchmark::State &state) {
	const auto n = static_cast<std::size_t>(state.range(0));
	PhaseTotals cycle, submit, complete;
	double bytes_per_item = 0;
	bool first = true;
	run_checked(state, one_cpu(), [&](helsim::bench::Loop &loop) {
		helsim::Dispatcher dispatcher{kInFlightQueue};
		std::vector<bool> seen(n);
		for (auto _ : loop) {
			HelHandle event = kHelNullHandle;
			check(helCreateOneshotEvent(&event), "helCreateOneshotEvent");
			seen.assign(n, false);
			ResidentGrowth memory;
			memory.start();
			const auto t0 = stamp();
			for (std::size_t i = 0; i < n; ++i)
				dispatcher.submit(kHelSubmitAwaitEvent, i, HelSqAwaitEvent{event, 1, 0});
			dispatcher.flush();
			const auto t1 = stamp();
			memory.stop();
			expect(!dispatcher.poll(), "an await completed before the raise");
			check(helRaiseEvent(event), "helRaiseEvent");
			for (std::size_t i = 0; i < n; ++i) {
				auto element = dispatcher.wait();
				expect(element.has_value(), "missing completion");
				const std::uintptr_t context = element->context();
				expect(context < n, "a completion with an unknown context");
				expect(!seen[context], "an await completed twice");
				seen[context] = true;
				const auto result = element->as<HelEventResult>();
				check(result.error, "await");
				expect(result.sequence == 2 && result.bitset == 1,
						"an await completed with another sequence or bits than the raise's");
			}
			const auto t2 = stamp();
			expect(!dispatcher.poll(), "a completion beyond the N awaits");
			check(helCloseDescriptor(kHelThisUniverse, event), "helCloseDescriptor");
			cycle.add(t0, t2, n);
			submit.add(t0, t1, n);
			complete.add(t1, t2, n);
			if (first && memory.valid())
				bytes_per_item = memory.per(n);
			first = false;
		}
	});
	state.counters["ns_per_op"] = cycle.wall_per_item();
	state.counters["cpu_ns_per_op"] = cycle.cpu_per_item();
	state.counters["submit_ns"] = submit.wall_per_item();
	state.counters["complete_ns"] = complete.wall_per_item();
	state.counters["bytes_per_item"] = bytes_per_item;
}
BENCHMARK(BM_Scale_OpsInFlight)->Arg(1000)->Arg(10000)->Arg(100000)->Arg(1000000);

// ---------------------------------------------------------------- round trips on N CPUs

constexpr std::int64_t kRoundTrips = 50'000; // per pair and iteration
constexpr std::int64_t kWarmup = 64;         // per pair, before the start line

// Where the N clients meet before the clock starts, and where the clock stops.
struct StartLine {
	int arrived = 0;
	int go = 0;
	int finished = 0;
	int n = 0;
	Clock::time_point start, end; // written by the last client to arrive / to finish
};

// Waits until all n clients have arrived; the last one starts the clock and lets them go.
void line_up(StartLine &line) {
	if (__atomic_add_fetch(&line.arrived, 1, __ATOMIC_ACQ_REL) == line.n) {
		line.start = Clock::now();
		__atomic_store_n(&line.go, 1, __ATOMIC_RELEASE);
		check(helFutexWake(&line.go, UINT_MAX), "helFutexWake");
	}
	wait_until(line.go, 1);
}

// The last client to finish stops the clock.
void finish(StartLine &line) {
	const auto now = Clock::now();
	if (__atomic_add_fetch(&line.finished, 1, __ATOMIC_ACQ_REL) == line.n)
		line.end = now;
}

// N simulated CPUs, one client/server pair pinned to each (client i and server i on CPU i,
// on a lane of their own), every pair doing the same-CPU round trip of
// BM_Ipc_RoundTrip_SameCpu (bench_support.hpp). After a warm-up the clients meet at a start
// line; then each makes kRoundTrips round trips per iteration. The Google Benchmark loop runs
// in client 0; the others learn the iteration count from state.max_iterations.
//   ns_per_op: wall time per round trip of one pair, from the start line to the last client's
//     last reply: flat while every pair has a host core of its own, then growing with the
//     pairs each host core has to run.
//   round_trips_per_s: all pairs together.
void BM_Scale_RoundTripCpus(benchmark::State &state) {
	const auto cpus = static_cast<unsigned>(state.range(0));
	const std::int64_t rounds = kRoundTrips * static_cast<std::int64_t>(state.max_iterations);
	StartLine line;
	line.n = static_cast<int>(cpus);
	auto options = one_cpu();
	options.cpus = cpus;
	options.name = "client0";
	helsim::bench::Simulation simulation{state, options};
	std::vector<std::pair<HelHandle, HelHandle>> lanes;
	for (unsigned i = 0; i < cpus; ++i)
		lanes.push_back(make_stream(simulation.machine()));

	auto client = [&line](HelHandle lane, auto &&round_trips) {
		helsim::Dispatcher dispatcher;
		std::array<char, kMessage> message;
		message.fill('q');
		for (std::int64_t i = 0; i < kWarmup; ++i)
			client_round_trip<Submission::sq>(dispatcher, lane, message.data());
		line_up(line);
		round_trips([&] { client_round_trip<Submission::sq>(dispatcher, lane, message.data()); });
		finish(line);
	};
	for (unsigned i = 0; i < cpus; ++i) {
		simulation.peer("server" + std::to_string(i), i,
				[rounds](std::span<const HelHandle> h) {
					helsim::Dispatcher dispatcher;
					std::array<char, kMessage> reply;
					reply.fill('r');
					for (std::int64_t r = 0; r < kWarmup + rounds; ++r)
						server_round<Submission::sq>(dispatcher, h[0], reply.data());
				},
				{lanes[i].second});
	}
	for (unsigned i = 1; i < cpus; ++i) {
		simulation.peer("client" + std::to_string(i), i,
				[&client, rounds](std::span<const HelHandle> h) {
					client(h[0], [rounds](auto &&round_trip) {
						for (std::int64_t r = 0; r < rounds; ++r)
							round_trip();
					});
				},
				{lanes[i].first});
	}
	const bool ran = simulation.run(
			[&client](helsim::bench::Loop &loop) {
				client(loop.handles()[0], [&loop](auto &&round_trip) {
					for (auto _ : loop)
						for (std::int64_t r = 0; r < kRoundTrips; ++r)
							round_trip();
				});
			},
			{lanes[0].first});
	if (!ran)
		return;
	const double wall = ns_between(line.start, line.end);
	const auto per_pair = static_cast<double>(rounds);
	state.counters["ns_per_op"] = wall / per_pair;
	state.counters["round_trips_per_s"] = per_pair * cpus / wall * 1e9;
}
BENCHMARK(BM_Scale_RoundTripCpus)->Arg(1)->Arg(2)->Arg(4)->Arg(8);

} // namespace
