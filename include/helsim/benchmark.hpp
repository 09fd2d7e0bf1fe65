// Google Benchmark helpers: run a benchmark loop inside a simulated thread pinned to a CPU.
//
//   static void BM_MyCall(benchmark::State &state) {
//     helsim::bench::run_in_simulation(state, [](helsim::bench::Loop &loop) {
//       // set-up with hel calls, on the simulated thread, not timed
//       for (auto _ : loop)
//         helNop();
//     }, {.cpus = 1, .cpu = 0});
//   }
//   BENCHMARK(BM_MyCall);
//
// The loop runs on the simulated thread itself, so Google Benchmark starts and stops its timers
// on the host thread that runs it: the simulated CPU's host thread in threads mode, the
// benchmark thread (which drives every CPU) in deterministic mode. In deterministic mode the
// virtual time the loop took is reported per iteration as the counter "sim_ns/iter". A thread
// that panicked, threw, faulted or got stuck makes the case an error (SkipWithError with what
// the run report says) instead of a figure. docs/reference/benchmark.md describes every piece;
// docs/benchmarks.md says which time column to read. Header-only; needs Google Benchmark.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::bench {

// The name of the counter that holds the virtual nanoseconds per iteration.
inline constexpr const char *kSimTimeCounter = "sim_ns/iter";

struct Options {
	unsigned cpus = 1;         // simulated CPUs of the machine
	unsigned cpu = 0;          // the CPU the loop's thread is pinned to (below `cpus`)
	Mode mode = Mode::threads; // threads: real time; deterministic: one host thread, virtual time
	std::uint64_t seed = 1;    // deterministic mode's seed
	// Deterministic mode: set kSimTimeCounter (virtual ns per iteration of the loop).
	bool sim_time = true;
	std::string name = "bench"; // the loop thread's name (run reports, traces)
	// Any further setting (cost model, preemption rates, memory, tracing, ...), applied to the
	// MachineConfig built from the fields above.
	std::function<void(MachineConfig &)> configure{};
};

// The MachineConfig a Simulation with `options` builds.
inline MachineConfig machine_config(const Options &options) {
	MachineConfig config;
	config.cpus = options.cpus;
	config.mode = options.mode;
	config.seed = options.seed;
	if (options.configure)
		options.configure(config);
	return config;
}

namespace detail {
// Restricts the calling simulated thread to `cpu` and checks that it now runs there; throws
// (the thread then ends `threw`, which fails the case) when it cannot.
inline void pin(const std::string &name, unsigned cpus, unsigned cpu) {
	std::vector<std::uint8_t> mask((cpus + 7) / 8);
	mask[cpu / 8] = static_cast<std::uint8_t>(1u << (cpu % 8));
	int now = -1;
	if (HelError e = helSetAffinity(kHelThisThread, mask.data(), mask.size()); e != kHelErrNone)
		throw std::runtime_error("helsim::bench: helSetAffinity failed for " + name + ": error " +
				std::to_string(e));
	if (HelError e = helGetCurrentCpu(&now); e != kHelErrNone || now != static_cast<int>(cpu))
		throw std::runtime_error("helsim::bench: " + name + " did not move to CPU " +
				std::to_string(cpu) + " (it runs on " + std::to_string(now) + ")");
}

inline std::string join(std::string text, const std::string &more) {
	return text.empty() ? more : text + "; " + more;
}
} // namespace detail

// What went wrong in a run, as one line: a stuck machine and every thread that did not return
// (its name, outcome, message and what it waits on). Empty when every thread returned. Leaks
// are not listed: they do not make a figure wrong.
inline std::string failure(const RunReport &report) {
	std::string problem = report.stuck ? "the machine got stuck" : "";
	for (const ThreadReport &thread : report.threads) {
		if (thread.outcome == ThreadOutcome::returned)
			continue;
		std::string line = thread.name + " " + to_string(thread.outcome);
		if (!thread.message.empty())
			line += ": " + thread.message;
		if (!thread.waits_on.empty())
			line += " (waits on " + thread.waits_on + ")";
		problem = detail::join(std::move(problem), line);
	}
	return problem;
}

// The benchmark loop as a range: `for (auto _ : loop)` iterates the benchmark's State, so the
// timers start and stop on the simulated thread, and around it reads the simulated CPU and, in
// deterministic mode, the virtual clock. Made by Simulation::run for its body; iterate it at
// most once, on the thread that received it.
class Loop {
public:
	class Sentinel {
	public:
		explicit Sentinel(benchmark::State::StateIterator end) : end_{end} {}

	private:
		friend class Loop;
		benchmark::State::StateIterator end_;
	};

	class Iterator {
	public:
		Iterator(benchmark::State::StateIterator it, Loop *loop) : it_{it}, loop_{loop} {}
		benchmark::State::StateIterator::Value operator*() const { return *it_; }
		Iterator &operator++() {
			++it_;
			return *this;
		}
		bool operator!=(const Sentinel &end) const {
			if (it_ != end.end_) [[likely]]
				return true;
			loop_->finish(); // the State has stopped its timers
			return false;
		}

	private:
		benchmark::State::StateIterator it_;
		Loop *loop_;
	};

	Loop(const Loop &) = delete;
	Loop &operator=(const Loop &) = delete;

	Iterator begin() { return Iterator{state_.begin(), this}; }
	// Called once by a range-for, after begin(): reads the CPU and the clock, then starts the
	// State's timers.
	Sentinel end() {
		start();
		return Sentinel{state_.end()};
	}

	benchmark::State &state() const { return state_; }
	// The handles passed to Simulation::run, as they are in the loop thread's universe.
	std::span<const HelHandle> handles() const { return handles_; }
	// The CPU the loop's thread is pinned to.
	unsigned cpu() const { return cpu_; }

	// After the loop ended: whether it ran to its end, and the virtual clock (helGetClock)
	// just before the first and just after the last iteration. Deterministic mode only (0 in
	// threads mode). The span includes one helGetClock, CostModel::syscall_ns.
	bool finished() const { return finished_; }
	std::uint64_t sim_start_ns() const { return sim_start_; }
	std::uint64_t sim_end_ns() const { return sim_end_; }

private:
	friend class Simulation;
	Loop(benchmark::State &state, unsigned cpu, bool read_clock, bool check_cpu)
	: state_{state}, cpu_{cpu}, read_clock_{read_clock}, check_cpu_{check_cpu} {}

	void start() {
		if (read_clock_ && helGetClock(&sim_start_) != kHelErrNone)
			clock_failed_ = true;
		if (check_cpu_ && helGetCurrentCpu(&start_cpu_) != kHelErrNone)
			start_cpu_ = -1;
	}
	void finish() {
		if (read_clock_ && helGetClock(&sim_end_) != kHelErrNone)
			clock_failed_ = true;
		if (check_cpu_ && helGetCurrentCpu(&end_cpu_) != kHelErrNone)
			end_cpu_ = -1;
		finished_ = true;
	}

	benchmark::State &state_;
	std::span<const HelHandle> handles_;
	unsigned cpu_;
	bool read_clock_;
	bool check_cpu_;
	bool finished_ = false;
	bool clock_failed_ = false;
	int start_cpu_ = -1, end_cpu_ = -1;
	std::uint64_t sim_start_ = 0, sim_end_ = 0;
};

using Body = std::function<void(Loop &)>;

// A Machine for one run of a benchmark function (one State): peers first, then run() spawns
// the loop's thread, runs the machine to its end and checks the report.
class Simulation {
public:
	// Throws std::invalid_argument when options.cpu is not below options.cpus (and whatever
	// Machine's constructor throws for a bad configuration).
	Simulation(benchmark::State &state, Options options = {})
	: state_{state}, options_{checked(std::move(options))}, machine_{machine_config(options_)} {}
	Simulation(const Simulation &) = delete;
	Simulation &operator=(const Simulation &) = delete;

	// For set-up from the host before run(): attach() to create objects in the root universe,
	// ext::set_supercall_handler, ...
	Machine &machine() { return machine_; }
	const Options &options() const { return options_; }

	// A thread next to the loop's (a server, a partner), spawned as Machine::spawn does and
	// pinned to `cpu` before `entry` runs (on a one-CPU machine everything runs on CPU 0 and no
	// call is made). It must end by itself: learn the iteration count from
	// state.max_iterations, fixed before the loop starts.
	void peer(std::string name, unsigned cpu, Entry entry,
			std::initializer_list<HelHandle> handles = {}) {
		peer(std::move(name), cpu, std::move(entry),
				std::span<const HelHandle>{handles.begin(), handles.size()});
	}
	void peer(std::string name, unsigned cpu, Entry entry, std::span<const HelHandle> handles) {
		if (cpu >= options_.cpus)
			throw std::invalid_argument("helsim::bench: peer " + name + " pinned to CPU " +
					std::to_string(cpu) + " of a " + std::to_string(options_.cpus) +
					"-CPU machine");
		const unsigned cpus = options_.cpus;
		machine_.spawn(
				name,
				[name, cpus, cpu, entry = std::move(entry)](std::span<const HelHandle> h) {
					if (cpus > 1)
						detail::pin(name, cpus, cpu);
					entry(h);
				},
				handles);
	}

	// Spawns the loop's thread (Options::name, pinned to Options::cpu) with `handles` copied
	// into its universe, runs `body` there and the machine to its end. Then the case fails
	// (State::SkipWithError) if a thread did not return, the machine got stuck, the loop did
	// not run to its end or moved to another CPU; otherwise, in deterministic mode, it sets
	// kSimTimeCounter. Returns whether the case still stands. Call it once.
	bool run(const Body &body, std::initializer_list<HelHandle> handles = {}) {
		return run(body, std::span<const HelHandle>{handles.begin(), handles.size()});
	}
	bool run(const Body &body, std::span<const HelHandle> handles) {
		if (ran_)
			throw std::logic_error("helsim::bench: Simulation::run called twice");
		ran_ = true;
		const bool deterministic = options_.mode == Mode::deterministic;
		// Only a threads-mode machine with several CPUs can move the loop's thread (and its
		// timers) to another host thread.
		const bool several = options_.cpus > 1;
		Loop loop{state_, options_.cpu, deterministic && options_.sim_time,
				several && !deterministic};
		machine_.spawn(
				options_.name,
				[&](std::span<const HelHandle> h) {
					if (several)
						detail::pin(options_.name, options_.cpus, options_.cpu);
					loop.handles_ = h;
					body(loop);
				},
				handles);
		report_ = machine_.run();
		return check(loop);
	}

	// The report of run() (empty before).
	const RunReport &report() const { return report_; }

private:
	static Options checked(Options options) {
		if (options.cpu >= options.cpus)
			throw std::invalid_argument("helsim::bench: Options::cpu (" +
					std::to_string(options.cpu) + ") must be below Options::cpus (" +
					std::to_string(options.cpus) + ")");
		return options;
	}

	bool check(const Loop &loop) {
		std::string problem = failure(report_);
		if (loop.finished_ && loop.start_cpu_ != loop.end_cpu_)
			problem = detail::join(std::move(problem),
					"the loop started on CPU " + std::to_string(loop.start_cpu_) +
							" and ended on CPU " + std::to_string(loop.end_cpu_) +
							": its timers read two host threads");
		if (loop.clock_failed_)
			problem = detail::join(std::move(problem), "helGetClock failed around the loop");
		if (problem.empty() && !state_.error_occurred() &&
				state_.iterations() < state_.max_iterations)
			problem = "the benchmark loop did not run to its end";
		if (!problem.empty()) {
			state_.SkipWithError(("helsim: " + problem).c_str());
			return false;
		}
		if (state_.error_occurred())
			return false;
		if (loop.finished_ && loop.read_clock_ && state_.iterations() > 0)
			state_.counters[kSimTimeCounter] =
					static_cast<double>(loop.sim_end_ - loop.sim_start_) /
					static_cast<double>(state_.iterations());
		return true;
	}

	benchmark::State &state_;
	Options options_;
	Machine machine_;
	RunReport report_;
	bool ran_ = false;
};

// The one-call form: a Simulation with `options` and no peers, running `body`.
inline bool run_in_simulation(benchmark::State &state, const Body &body, Options options = {}) {
	Simulation simulation{state, std::move(options)};
	return simulation.run(body);
}

} // namespace helsim::bench
