// Deterministic mode (Mode::deterministic): what it costs in real time to drive every
// simulated CPU from one host thread with seeded scheduling and virtual time. Compare
// BM_Det_IpcRoundTrip with BM_Ipc_RoundTrip_SameCpu (ipc_bench.cpp), the same workload in
// threads mode; see docs/benchmarks.md.
#include <benchmark/benchmark.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

namespace ipc = helsim::ipc;

namespace {

constexpr std::size_t kMessage = 64; // as in ipc_bench.cpp
constexpr std::int64_t kWarmup = 64;

void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

void expect(bool ok, const char *what) {
	if (!ok)
		throw std::runtime_error(what);
}

helsim::MachineConfig deterministic(unsigned cpus) {
	helsim::MachineConfig config;
	config.cpus = cpus;
	config.mode = helsim::Mode::deterministic;
	config.seed = 1;
	return config;
}

void finish(benchmark::State &state, helsim::Machine &machine) {
	auto report = machine.run();
	std::string problem;
	if (report.stuck)
		problem = "the machine got stuck";
	for (const auto &thread : report.threads)
		if (thread.outcome != helsim::ThreadOutcome::returned)
			problem += (problem.empty() ? "" : "; ") + thread.name + " " +
					helsim::to_string(thread.outcome) + ": " + thread.message;
	if (!problem.empty())
		state.SkipWithError(problem.c_str());
}

// The same-CPU round trip of BM_Ipc_RoundTrip_SameCpu (SQ submission, 64-byte request sent
// from a buffer, 64-byte reply received inline), on a one-CPU deterministic machine. Attached
// threads are not available in deterministic mode, so a setup fiber creates the stream and
// spawns both sides.
void BM_Det_IpcRoundTrip(benchmark::State &state) {
	helsim::Machine machine{deterministic(1)};
	const std::int64_t rounds = kWarmup + static_cast<std::int64_t>(state.max_iterations);
	machine.spawn("setup", [&, rounds](std::span<const HelHandle>) {
		HelHandle client_lane = kHelNullHandle, server_lane = kHelNullHandle;
		check(helCreateStream(&client_lane, &server_lane, 0), "helCreateStream");
		machine.spawn("server",
				[rounds](std::span<const HelHandle> h) {
					helsim::Dispatcher dispatcher;
					std::array<char, kMessage> reply;
					reply.fill('r');
					for (std::int64_t i = 0; i < rounds; ++i) {
						auto request = ipc::exchange_sync(dispatcher, h[0], ipc::recv_inline());
						auto &[text] = request.results;
						check(text.error, "receive request");
						expect(text.data.size() == kMessage, "short request");
						auto sent = ipc::exchange_sync(dispatcher, h[0],
								ipc::send_buffer(reply.data(), kMessage));
						check(std::get<0>(sent.results).error, "send reply");
					}
				},
				{server_lane});
		machine.spawn("client",
				[&](std::span<const HelHandle> h) {
					helsim::Dispatcher dispatcher;
					std::array<char, kMessage> message;
					message.fill('q');
					auto round_trip = [&] {
						auto exchange = ipc::exchange_sync(dispatcher, h[0],
								ipc::send_buffer(message.data(), kMessage), ipc::recv_inline());
						auto &[sent, reply] = exchange.results;
						check(sent.error, "send request");
						check(reply.error, "receive reply");
						expect(reply.data.size() == kMessage, "short reply");
					};
					for (std::int64_t i = 0; i < kWarmup; ++i)
						round_trip();
					for (auto _ : state)
						round_trip();
				},
				{client_lane});
		check(helCloseDescriptor(kHelThisUniverse, client_lane), "close");
		check(helCloseDescriptor(kHelThisUniverse, server_lane), "close");
	});
	finish(state, machine);
	state.SetItemsProcessed(state.iterations()); // round trips per second
}
BENCHMARK(BM_Det_IpcRoundTrip)->UseRealTime();

// helNop from a fiber of a deterministic machine: syscalls per second of real time, with the
// cost model charging each one to virtual time.
void BM_Det_SyscallsPerSecond(benchmark::State &state) {
	helsim::Machine machine{deterministic(1)};
	HelError failed = kHelErrNone;
	machine.spawn("bench", [&](std::span<const HelHandle>) {
		for (auto _ : state) {
			HelError e = helNop();
			benchmark::DoNotOptimize(e);
			failed |= e;
		}
	});
	finish(state, machine);
	if (failed != kHelErrNone)
		state.SkipWithError("helNop failed");
	state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Det_SyscallsPerSecond);

} // namespace
