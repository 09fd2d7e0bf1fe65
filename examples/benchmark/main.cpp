// benchmark: a Google Benchmark binary with helsim cases and the host baseline they are
// compared with, in one run (a figure is only ever read as a ratio to a baseline measured in the
// same run, on the same machine, at the same load).
//
// helFutexWake on a word nobody waits on, from a simulated thread, against the same
// FUTEX_WAKE made to the host kernel. The helsim cases run their loop inside the simulated
// thread with helsim::bench::run_in_simulation; the deterministic one also reports the virtual
// time per call (sim_ns/iter). Exits 1 if any case ended in an error.
//
//   ./benchmark                                 # the figures
//   ./benchmark --benchmark_min_time=0.01       # a quick check (what ctest runs)
#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/hel.h>

namespace {

// helFutexWake with no waiter, in a fiber pinned to CPU 0 of a one-CPU machine in `mode`.
void futex_wake(benchmark::State &state, helsim::Mode mode) {
	HelError failed = kHelErrNone;
	bool ran = helsim::bench::run_in_simulation(state,
			[&](helsim::bench::Loop &loop) {
				int word = 0; // set-up runs on the simulated thread too, untimed
				for (auto _ : loop)
					failed |= helFutexWake(&word, 1);
			},
			{.cpus = 1, .cpu = 0, .mode = mode});
	if (ran && failed != kHelErrNone)
		state.SkipWithError("helFutexWake failed");
}

void BM_Helsim_FutexWake(benchmark::State &state) { futex_wake(state, helsim::Mode::threads); }
BENCHMARK(BM_Helsim_FutexWake);

// Deterministic mode: the real time it costs to simulate, and sim_ns/iter, what the cost model
// says one call takes.
void BM_Helsim_FutexWake_Det(benchmark::State &state) {
	futex_wake(state, helsim::Mode::deterministic);
}
BENCHMARK(BM_Helsim_FutexWake_Det);

// The host baseline: FUTEX_WAKE on a private word nobody waits on.
void BM_Host_FutexWake(benchmark::State &state) {
	int word = 0;
	for (auto _ : state)
		benchmark::DoNotOptimize(
				syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0));
}
BENCHMARK(BM_Host_FutexWake);

// The console reporter, remembering whether a case ended in an error.
class Reporter : public benchmark::ConsoleReporter {
public:
	void ReportRuns(const std::vector<Run> &runs) override {
		for (const Run &run : runs)
			failed = failed || run.error_occurred;
		ConsoleReporter::ReportRuns(runs);
	}
	bool failed = false;
};

} // namespace

int main(int argc, char **argv) {
	benchmark::Initialize(&argc, argv);
	if (benchmark::ReportUnrecognizedArguments(argc, argv))
		return 2;
	Reporter reporter;
	benchmark::RunSpecifiedBenchmarks(&reporter);
	benchmark::Shutdown();
	return reporter.failed ? 1 : 0;
}
