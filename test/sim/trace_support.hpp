// Shared by the trace tests: the traced workload, a stream echo between two threads. The strict
// JSON parser and Perfetto's importer rules come from the trace checker (sim/trace_check.hpp).
#pragma once

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#include "../support.hpp"
#include "sim/trace_check.hpp"

namespace helsim::trace_test {

using namespace helsim;
// The strict parser and the importer's rules live in the checker (sim/trace_check.hpp).
using namespace helsim::trace_check;

// ------------------------------------------------------------------ the workload

struct Outcome {
	RunReport report;
	std::string json;
	std::size_t events = 0;
};

// A server fiber creates a stream, starts a client thread (helCreateThread, same universe)
// and answers its message; both sides use Dispatchers, so every exchange is an SQ operation.
inline Outcome echo(MachineConfig config, const std::string &path = {}) {
	Machine machine{config};
	machine.spawn("server", [](std::span<const HelHandle>) {
		HelHandle server_lane = kHelNullHandle, client_lane = kHelNullHandle;
		ASSERT_EQ(helCreateStream(&server_lane, &client_lane, 0), kHelErrNone);
		auto done = std::make_shared<int>(0);
		HelHandle client = test::start_thread([client_lane, done] {
			Dispatcher d;
			for (int round = 0; round < 3; ++round) {
				auto sent = ipc::exchange_sync(d, client_lane, ipc::send_buffer("ping"));
				EXPECT_EQ(std::get<0>(sent.results).error, kHelErrNone);
				auto reply = ipc::exchange_sync(d, client_lane, ipc::recv_inline());
				EXPECT_EQ(std::get<0>(reply.results).text(), "pong");
			}
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, client_lane), kHelErrNone);
			test::set_and_wake(done.get(), 1);
		});
		{
			Dispatcher d;
			for (int round = 0; round < 3; ++round) {
				auto got = ipc::exchange_sync(d, server_lane, ipc::recv_inline());
				EXPECT_EQ(std::get<0>(got.results).text(), "ping");
				auto sent = ipc::exchange_sync(d, server_lane, ipc::send_buffer("pong"));
				EXPECT_EQ(std::get<0>(sent.results).error, kHelErrNone);
			}
		}
		EXPECT_TRUE(test::wait_for(done.get(), 1));
		EXPECT_EQ(helShutdownLane(server_lane), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, server_lane), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, client), kHelErrNone);
	});
	Outcome out;
	out.report = machine.run();
	out.json = machine.trace_json();
	out.events = machine.trace_event_count();
	if (!path.empty())
		machine.write_trace(path);
	return out;
}

inline MachineConfig traced(Mode mode, std::uint64_t seed = 7) {
	MachineConfig config;
	config.mode = mode;
	config.cpus = 2;
	config.seed = seed;
	config.trace = true;
	return config;
}

inline bool read_file(const std::string &path, std::string &out) {
	std::FILE *file = std::fopen(path.c_str(), "rb");
	if (!file)
		return false;
	char buffer[4096];
	for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;)
		out.append(buffer, n);
	return std::fclose(file) == 0;
}

} // namespace helsim::trace_test
