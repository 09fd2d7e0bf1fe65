// include/helsim/benchmark.hpp: the benchmark loop on a simulated thread pinned to its CPU,
// the virtual-time counter, peers, and failed runs reported as errors. Each test registers one
// Google Benchmark case with a fixed iteration count and runs it through a reporter that keeps
// the result.
#include <gtest/gtest.h>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <helsim/benchmark.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

namespace hb = helsim::bench;
using Result = benchmark::BenchmarkReporter::Run;

class KeepRuns : public benchmark::BenchmarkReporter {
public:
	bool ReportContext(const Context &) override { return true; }
	void ReportRuns(const std::vector<Result> &runs) override {
		this->runs.insert(this->runs.end(), runs.begin(), runs.end());
	}
	std::vector<Result> runs;
};

// Registers `body` as the only case, runs it `iterations` times and returns its result.
Result run_case(const std::function<void(benchmark::State &)> &body,
		benchmark::IterationCount iterations) {
	benchmark::ClearRegisteredBenchmarks();
	benchmark::RegisterBenchmark("helsim_case", body)->Iterations(iterations);
	KeepRuns reporter;
	EXPECT_EQ(benchmark::RunSpecifiedBenchmarks(&reporter, "^helsim_case/"), 1u);
	benchmark::ClearRegisteredBenchmarks();
	if (reporter.runs.size() != 1) {
		ADD_FAILURE() << reporter.runs.size() << " runs reported";
		return Result{};
	}
	return reporter.runs.front();
}

TEST(Benchmark, TheLoopRunsOnASimulatedThreadPinnedToItsCpu) {
	HelError nop = kHelErrIllegalState;
	std::vector<int> cpus;
	std::thread::id loop_thread;
	std::int64_t counted = 0;
	Result run = run_case(
			[&](benchmark::State &state) {
				hb::run_in_simulation(state,
						[&](hb::Loop &loop) {
							nop = helNop(); // kHelErrIllegalState off a simulated thread
							for (auto _ : loop) {
								int cpu = -1;
								helGetCurrentCpu(&cpu);
								cpus.push_back(cpu);
								++counted;
							}
							loop_thread = std::this_thread::get_id();
						},
						{.cpus = 3, .cpu = 2});
			},
			37);
	EXPECT_FALSE(run.error_occurred) << run.error_message;
	EXPECT_EQ(nop, kHelErrNone);
	EXPECT_EQ(run.iterations, 37);
	EXPECT_EQ(counted, 37);
	EXPECT_EQ(cpus, std::vector<int>(37, 2));
	// Threads mode: the loop ran on the simulated CPU's host thread, not the benchmark's.
	EXPECT_NE(loop_thread, std::this_thread::get_id());
	EXPECT_EQ(run.counters.count(hb::kSimTimeCounter), 0u) << "virtual time is deterministic only";
}

TEST(Benchmark, DeterministicModeReportsVirtualTimePerIteration) {
	std::uint64_t start = 0, end = 0;
	std::thread::id loop_thread;
	int cpu = -1;
	constexpr benchmark::IterationCount kIterations = 50;
	Result run = run_case(
			[&](benchmark::State &state) {
				hb::run_in_simulation(state,
						[&](hb::Loop &loop) {
							for (auto _ : loop)
								helNop();
							start = loop.sim_start_ns();
							end = loop.sim_end_ns();
							helGetCurrentCpu(&cpu);
							loop_thread = std::this_thread::get_id();
						},
						{.cpus = 2,
								.cpu = 1,
								.mode = helsim::Mode::deterministic,
								.configure = [](helsim::MachineConfig &config) {
									config.preempt_at_syscall_ppm = 0;
									config.preempt_at_wake_ppm = 0;
								}});
			},
			kIterations);
	ASSERT_FALSE(run.error_occurred) << run.error_message;
	EXPECT_EQ(cpu, 1);
	// Deterministic mode: the benchmark thread drives every CPU.
	EXPECT_EQ(loop_thread, std::this_thread::get_id());
	ASSERT_EQ(run.counters.count(hb::kSimTimeCounter), 1u);
	double per_iteration = run.counters.at(hb::kSimTimeCounter).value;
	EXPECT_GT(per_iteration, 0);
	EXPECT_DOUBLE_EQ(per_iteration, static_cast<double>(end - start) / kIterations);
	// One helNop is CostModel::syscall_ns; the closing helGetClock adds one more, spread over
	// the iterations.
	const double syscall = static_cast<double>(helsim::CostModel{}.syscall_ns);
	EXPECT_DOUBLE_EQ(per_iteration, syscall + syscall / kIterations);
}

TEST(Benchmark, PeersRunPinnedToTheirCpus) {
	std::atomic<int> peer_cpu{-1};
	std::atomic<std::int64_t> peer_saw{0};
	int loop_cpu = -1;
	Result run = run_case(
			[&](benchmark::State &state) {
				hb::Simulation simulation{state, {.cpus = 2, .cpu = 0}};
				int word = 0;
				simulation.peer("peer", 1, [&](std::span<const HelHandle>) {
					int cpu = -1;
					helGetCurrentCpu(&cpu);
					peer_cpu = cpu;
					peer_saw = static_cast<std::int64_t>(state.max_iterations);
					std::atomic_ref<int>{word}.store(1);
					helFutexWake(&word, 1);
				});
				simulation.run([&](hb::Loop &loop) {
					while (std::atomic_ref<int>{word}.load() == 0)
						helFutexWait(&word, 0, kHelWaitInfinite);
					for (auto _ : loop)
						helGetCurrentCpu(&loop_cpu);
				});
			},
			11);
	EXPECT_FALSE(run.error_occurred) << run.error_message;
	EXPECT_EQ(peer_cpu, 1);
	EXPECT_EQ(peer_saw, 11);
	EXPECT_EQ(loop_cpu, 0);
}

TEST(Benchmark, APanicBeforeTheLoopIsAnError) {
	Result run = run_case(
			[](benchmark::State &state) {
				hb::run_in_simulation(state, [](hb::Loop &loop) {
					helPanic("no set-up today", 15);
					for (auto _ : loop) {
					}
				});
			},
			10);
	EXPECT_TRUE(run.error_occurred);
	EXPECT_NE(run.error_message.find("bench panicked"), std::string::npos) << run.error_message;
	EXPECT_NE(run.error_message.find("no set-up today"), std::string::npos) << run.error_message;
}

TEST(Benchmark, APanicInsideTheLoopIsAnError) {
	Result run = run_case(
			[](benchmark::State &state) {
				hb::run_in_simulation(state,
						[](hb::Loop &loop) {
							int i = 0;
							for (auto _ : loop)
								if (++i == 3)
									helPanic("third iteration", 15);
						},
						{.mode = helsim::Mode::deterministic});
			},
			10);
	EXPECT_TRUE(run.error_occurred);
	EXPECT_NE(run.error_message.find("third iteration"), std::string::npos) << run.error_message;
	EXPECT_EQ(run.counters.count(hb::kSimTimeCounter), 0u);
}

TEST(Benchmark, AThrowingPeerIsAnError) {
	Result run = run_case(
			[](benchmark::State &state) {
				hb::Simulation simulation{state, {.cpus = 2, .cpu = 1}};
				simulation.peer("server", 0, [](std::span<const HelHandle>) {
					throw std::runtime_error("bad request");
				});
				simulation.run([](hb::Loop &loop) {
					for (auto _ : loop)
						helNop();
				});
			},
			10);
	EXPECT_TRUE(run.error_occurred);
	EXPECT_NE(run.error_message.find("server threw: bad request"), std::string::npos)
			<< run.error_message;
}

TEST(Benchmark, AStuckMachineIsAnError) {
	Result run = run_case(
			[](benchmark::State &state) {
				hb::run_in_simulation(state, [](hb::Loop &loop) {
					for (auto _ : loop) {
					}
					int word = 0; // nobody wakes it
					helFutexWait(&word, 0, kHelWaitInfinite);
				});
			},
			10);
	EXPECT_TRUE(run.error_occurred);
	EXPECT_NE(run.error_message.find("stuck"), std::string::npos) << run.error_message;
	EXPECT_NE(run.error_message.find("bench blocked"), std::string::npos) << run.error_message;
}

TEST(Benchmark, ABodyThatSkipsTheLoopIsAnError) {
	Result run = run_case(
			[](benchmark::State &state) { hb::run_in_simulation(state, [](hb::Loop &) {}); }, 10);
	EXPECT_TRUE(run.error_occurred);
	EXPECT_NE(run.error_message.find("did not run to its end"), std::string::npos)
			<< run.error_message;
}

TEST(Benchmark, TheBodyMayIterateTheStateItself) {
	std::int64_t counted = 0;
	Result run = run_case(
			[&](benchmark::State &state) {
				hb::run_in_simulation(state,
						[&](hb::Loop &loop) {
							for (auto _ : loop.state())
								counted += helNop() == kHelErrNone;
						},
						{.mode = helsim::Mode::deterministic});
			},
			20);
	EXPECT_FALSE(run.error_occurred) << run.error_message;
	EXPECT_EQ(counted, 20);
	EXPECT_EQ(run.counters.count(hb::kSimTimeCounter), 0u) << "only the Loop reads the clock";
}

TEST(Benchmark, ACpuOutsideTheMachineIsRefused) {
	bool threw = false;
	Result run = run_case(
			[&](benchmark::State &state) {
				try {
					hb::Simulation simulation{state, {.cpus = 2, .cpu = 2}};
				} catch (const std::invalid_argument &) {
					threw = true;
				}
				state.SkipWithError("checked");
			},
			1);
	EXPECT_TRUE(threw);
	EXPECT_TRUE(run.error_occurred);
}

} // namespace
