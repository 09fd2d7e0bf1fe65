// What the POSIX benchmarks share: running a benchmark loop inside a POSIX process, with the
// subsystem's counters per operation next to the time.
#pragma once

#include <benchmark/benchmark.h>

#include <sys/wait.h>

#include <cstdint>
#include <string>
#include <string_view>

#include <helsim/machine.hpp>
#include <helsim/posix.hpp>

namespace helsim::bench_posix {

namespace px = helsim::posix;

// Counters per operation, from posix::counters() taken around the loop.
inline void report_per_op(benchmark::State &state, const px::Counters &before,
		const px::Counters &after) {
	auto per_op = [&](std::uint64_t a, std::uint64_t b) {
		return static_cast<double>(b - a) / static_cast<double>(state.iterations());
	};
	state.counters["server_req"] = per_op(before.server_requests, after.server_requests);
	state.counters["supercalls"] = per_op(before.supercalls, after.supercalls);
	state.counters["passthrough"] = per_op(before.passthrough_requests, after.passthrough_requests);
	state.counters["forwarded"] = per_op(before.forwarded_requests, after.forwarded_requests);
	state.counters["submissions"] = per_op(before.client_submissions, after.client_submissions);
	state.counters["upcalls"] = per_op(before.signals_delivered, after.signals_delivered);
}

// Runs `body(bad, before, after)` as the main of one POSIX process on a one-CPU threads-mode
// machine: the body runs the benchmark loop and takes the counters around it. `programs`
// registers further programs the body may start. Skips the case with the reason when the run
// fails.
template <typename Body, typename Programs>
void run_process(benchmark::State &state, px::Options options, Body body, Programs programs,
		unsigned cpus = 1) {
	helsim::MachineConfig config;
	config.cpus = cpus;
	helsim::Machine machine{config};
	options.console = [](std::string_view) {};
	px::System system{machine, options};
	std::int64_t bad = 0;
	px::Counters before{}, after{};
	programs(system);
	system.add_program("/bin/bench", [&](int, char **) {
		body(bad, before, after);
		return 0;
	});
	pid_t pid = system.spawn("/bin/bench", {"bench"});
	helsim::RunReport report = machine.run();
	if (report.stuck || !system.has_exited(pid)) {
		state.SkipWithError(("the machine got stuck: " + report.to_string()).c_str());
		return;
	}
	int status = system.exit_status(pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || bad) {
		state.SkipWithError(("status " + std::to_string(status) + ", " + std::to_string(bad) +
				" failed operations")
									.c_str());
		return;
	}
	report_per_op(state, before, after);
}

// Runs the benchmark loop inside a POSIX process. `setup` runs first, in the process (not
// timed), and returns the operation: a callable that returns whether it worked.
template <typename Setup>
void in_process(benchmark::State &state, px::Options options, Setup setup) {
	run_process(
			state, options,
			[&](std::int64_t &bad, px::Counters &before, px::Counters &after) {
				auto op = setup(bad);
				before = px::counters();
				for (auto _ : state)
					bad += !op();
				after = px::counters();
			},
			[](px::System &) {});
}

} // namespace helsim::bench_posix
