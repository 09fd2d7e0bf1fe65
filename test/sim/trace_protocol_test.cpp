// A handle-passing protocol in a trace (sim/trace.cpp, docs/tracing.md): a client in a universe of
// its own pushes a memory handle to a server, which pulls it. The trace must show the transfer
// that put the client's lane into its universe, the push and the pull joined by a flow from the
// client's track to the server's, syscall slices with their arguments and results, and the
// run's metadata; and Perfetto's importer rules must hold for it in both modes on 1, 2 and 4 CPUs.
#include "trace_support.hpp"

namespace {

using namespace helsim::trace_test;

// What the protocol's threads saw, to compare with what the trace says.
struct Seen {
	HelHandle universe = kHelNullHandle;    // the client's universe, in the server's
	HelHandle client_lane = kHelNullHandle; // the client's lane, in the server's universe
	HelHandle remote_lane = kHelNullHandle; // the same lane, in the client's universe
	HelHandle pushed = kHelNullHandle;      // the memory handle, in the client's universe
	HelHandle pulled = kHelNullHandle;      // the memory handle, in the server's universe
};

struct Handoff {
	RunReport report;
	std::string json;
	Seen seen;
};

// Universe ids (Universe::id, in order of creation): 1 the root, 2 the server's (spawn),
// 3 the client's (helCreateUniverse).
constexpr double kServerUniverse = 2, kClientUniverse = 3;

Handoff handoff(MachineConfig config) {
	Machine machine{config};
	auto seen = std::make_shared<Seen>();
	machine.spawn("server", [seen](std::span<const HelHandle>) {
		HelHandle server_lane = kHelNullHandle;
		ASSERT_EQ(helCreateStream(&server_lane, &seen->client_lane, 0), kHelErrNone);
		seen->universe = test::make_universe();
		ASSERT_EQ(helTransferDescriptor(seen->client_lane, seen->universe,
						  kHelTransferDescriptorOut, kHelRightsMax, 0, &seen->remote_lane),
				kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, seen->client_lane), kHelErrNone);
		// A call that fails, for its result in the trace.
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, 999), kHelErrNoDescriptor);

		auto done = std::make_shared<int>(0);
		auto *client = new std::function<void()>([seen, done] {
			HelHandle memory = kHelNullHandle;
			EXPECT_EQ(helAllocateMemory(4096, 0, nullptr, &memory), kHelErrNone);
			seen->pushed = memory;
			{
				Dispatcher d;
				auto sent = ipc::exchange_sync(d, seen->remote_lane, ipc::push_descriptor(memory));
				EXPECT_EQ(std::get<0>(sent.results).error, kHelErrNone);
			}
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, seen->remote_lane), kHelErrNone);
			test::set_and_wake(done.get(), 1);
		});
		auto trampoline = +[](std::uintptr_t argument) {
			std::unique_ptr<std::function<void()>> f{
					reinterpret_cast<std::function<void()> *>(argument)};
			(*f)();
		};
		HelHandle thread = kHelNullHandle;
		ASSERT_EQ(helCreateThread(seen->universe, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(trampoline), client, 0, &thread),
				kHelErrNone);
		{
			Dispatcher d;
			auto got = ipc::exchange_sync(d, server_lane, ipc::pull_descriptor());
			EXPECT_EQ(std::get<0>(got.results).error, kHelErrNone);
			seen->pulled = std::get<0>(got.results).handle;
		}
		EXPECT_TRUE(test::wait_for(done.get(), 1));
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, seen->pulled), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, server_lane), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, thread), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, seen->universe), kHelErrNone);
	});
	Handoff out;
	out.report = machine.run();
	out.json = machine.trace_json();
	out.seen = *seen;
	return out;
}

struct Found {
	const Json *event = nullptr;
	std::size_t index = 0;
};

// The events named `name` (with phase `ph`).
std::vector<Found> find_all(const JsonArray &events, const std::string &ph,
		const std::string &name) {
	std::vector<Found> out;
	for (std::size_t i = 0; i < events.size(); ++i)
		if (text_of(events[i], "ph") == ph && text_of(events[i], "name") == name)
			out.push_back({&events[i], i});
	return out;
}

double number_of(const Json &object, const char *key) {
	const Json *v = member(object, key);
	return v && v->is_number() ? v->number() : -1e300;
}

// The name of the thread track an event is on.
std::string track_name(const JsonArray &events, const Json &event) {
	for (const Json &e : events)
		if (text_of(e, "ph") == "M" && text_of(e, "name") == "thread_name" &&
				number_of(e, "pid") == number_of(event, "pid") &&
				number_of(e, "tid") == number_of(event, "tid"))
			return text_of(*member(e, "args"), "name");
	return {};
}

void check_handoff(const Handoff &out) {
	ASSERT_FALSE(out.report.stuck) << out.report.to_string();
	Json doc;
	ASSERT_NO_THROW(doc = Parser{out.json}.document());
	const JsonArray &events = member(doc, "traceEvents")->array();
	const Seen &seen = out.seen;

	// The transfer: the client's lane went from the server's universe into the client's.
	auto transfers = find_all(events, "i", "transfer descriptor");
	ASSERT_EQ(transfers.size(), 1u);
	const Json &transfer = *member(*transfers[0].event, "args");
	EXPECT_EQ(text_of(transfer, "kind"), "lane");
	EXPECT_EQ(number_of(transfer, "from_universe"), kServerUniverse);
	EXPECT_EQ(number_of(transfer, "from_handle"), seen.client_lane);
	EXPECT_EQ(number_of(transfer, "universe"), kClientUniverse);
	EXPECT_EQ(number_of(transfer, "handle"), seen.remote_lane);
	EXPECT_EQ(track_name(events, *transfers[0].event), "server");

	// The push, on the client's track: a slice holding the flow's start.
	auto pushes = find_all(events, "B", "push descriptor");
	ASSERT_EQ(pushes.size(), 1u);
	const Json &push = *member(*pushes[0].event, "args");
	EXPECT_EQ(text_of(push, "kind"), "memory");
	EXPECT_EQ(number_of(push, "universe"), kClientUniverse);
	EXPECT_EQ(number_of(push, "handle"), seen.pushed);
	const Json &start = events[pushes[0].index + 1];
	EXPECT_EQ(text_of(start, "ph"), "s");
	EXPECT_EQ(text_of(start, "cat"), "descriptor");
	EXPECT_EQ(number_of(start, "id"), number_of(push, "flow"));
	EXPECT_NE(track_name(events, *pushes[0].event), "server");

	// The pull, on the server's track whichever thread made the pair: the flow's end.
	auto pulls = find_all(events, "B", "pull descriptor");
	ASSERT_EQ(pulls.size(), 1u);
	const Json &pull = *member(*pulls[0].event, "args");
	EXPECT_EQ(text_of(pull, "kind"), "memory");
	EXPECT_EQ(number_of(pull, "from_universe"), kClientUniverse);
	EXPECT_EQ(number_of(pull, "from_handle"), seen.pushed);
	EXPECT_EQ(number_of(pull, "universe"), kServerUniverse);
	EXPECT_EQ(number_of(pull, "handle"), seen.pulled);
	EXPECT_EQ(text_of(pull, "error"), "kHelErrNone");
	EXPECT_EQ(number_of(pull, "flow"), number_of(push, "flow"));
	const Json &end = events[pulls[0].index + 1];
	EXPECT_EQ(text_of(end, "ph"), "f");
	EXPECT_EQ(text_of(end, "cat"), "descriptor");
	EXPECT_EQ(text_of(end, "name"), text_of(start, "name"));
	EXPECT_EQ(number_of(end, "id"), number_of(start, "id"));
	EXPECT_EQ(text_of(end, "bp"), "e");
	EXPECT_EQ(track_name(events, *pulls[0].event), "server");
	EXPECT_LT(pushes[0].index, pulls[0].index);

	// Syscall slices carry their arguments, by hel's names, and their results.
	auto transfer_calls = find_all(events, "B", "helTransferDescriptor");
	ASSERT_EQ(transfer_calls.size(), 1u);
	const Json *call = member(*transfer_calls[0].event, "args");
	ASSERT_TRUE(call);
	EXPECT_EQ(text_of(*transfer_calls[0].event, "cat"), "syscall");
	EXPECT_EQ(number_of(*call, "handle"), seen.client_lane);
	EXPECT_EQ(number_of(*call, "universeHandle"), seen.universe);
	EXPECT_EQ(text_of(*call, "flags"), "0x1"); // kHelTransferDescriptorOut
	EXPECT_EQ(text_of(*call, "requiredRights"), "0x0");
	EXPECT_EQ(text_of(*call, "error"), "kHelErrNone");
	ASSERT_TRUE(member(*call, "out"));
	EXPECT_EQ(number_of(*member(*call, "out"), "outHandle"), seen.remote_lane);

	bool failed_close = false;
	for (const Found &f : find_all(events, "B", "helCloseDescriptor")) {
		const Json &args = *member(*f.event, "args");
		EXPECT_EQ(number_of(args, "universeHandle"), kHelThisUniverse);
		if (number_of(args, "handle") == 999) {
			failed_close = true;
			EXPECT_EQ(text_of(args, "error"), "kHelErrNoDescriptor");
			EXPECT_FALSE(member(args, "out")) << "no outputs for a call that failed";
		}
	}
	EXPECT_TRUE(failed_close);
	// Every syscall slice has its result.
	for (const Json &e : events)
		if (text_of(e, "ph") == "B" && text_of(e, "cat") == "syscall") {
			ASSERT_TRUE(member(e, "args")) << text_of(e, "name");
			EXPECT_EQ(text_of(*member(e, "args"), "error").rfind("kHelErr", 0), 0u)
					<< text_of(e, "name");
		}
}

// HELSIM_PROTOCOL_TRACE_OUT keeps the deterministic run's trace, to open it in the Perfetto UI.
TEST(TraceProtocol, PushAndPullAreJoinedByAFlowBetweenUniverses) {
	for (Mode mode : {Mode::deterministic, Mode::threads}) {
		SCOPED_TRACE(mode == Mode::threads ? "threads" : "deterministic");
		Handoff out = handoff(traced(mode));
		check_handoff(out);
		if (const char *keep = std::getenv("HELSIM_PROTOCOL_TRACE_OUT");
				keep && mode == Mode::deterministic)
			if (std::FILE *file = std::fopen(keep, "wb")) {
				std::fwrite(out.json.data(), 1, out.json.size(), file);
				std::fclose(file);
			}
	}
}

// Both orders of the pairing: on one CPU the server's pull usually waits for the push, and
// across seeds and CPUs either side may come second; the pull stays on the server's track.
TEST(TraceProtocol, PullIsOnTheReceiversTrackWhoeverPairs) {
	for (unsigned cpus : {1u, 2u, 4u})
		for (std::uint64_t seed : {1u, 7u, 42u}) {
			SCOPED_TRACE("cpus " + std::to_string(cpus) + ", seed " + std::to_string(seed));
			MachineConfig config = traced(Mode::deterministic, seed);
			config.cpus = cpus;
			check_handoff(handoff(config));
		}
}

TEST(TraceProtocol, ProtocolTracesImportIntoPerfetto) {
	for (Mode mode : {Mode::deterministic, Mode::threads})
		for (unsigned cpus : {1u, 2u, 4u}) {
			SCOPED_TRACE((mode == Mode::threads ? "threads, cpus " : "deterministic, cpus ") +
					std::to_string(cpus));
			MachineConfig config = traced(mode, 11);
			config.cpus = cpus;
			auto out = handoff(config);
			ImportCheck check = check_perfetto_import(out.json);
			EXPECT_TRUE(check.problems.empty()) << problems_of(check);
			EXPECT_EQ(check.unended_flows, 0u);
			EXPECT_EQ(check.open_slices, 0u);
			EXPECT_GE(check.flows, 3u) << "two operations and the push";
		}
}

// The metadata object: seed (exact, as a string), mode, CPUs and helsim's version; also in
// the document of a machine that records nothing.
TEST(TraceProtocol, MetadataNamesSeedModeCpusAndVersion) {
	for (bool trace : {true, false})
		for (Mode mode : {Mode::deterministic, Mode::threads}) {
			MachineConfig config = traced(mode, 0xfedcba9876543210u); // above 2^53
			config.cpus = 3;
			config.trace = trace;
			Machine machine{config};
			// The effective configuration: HELSIM_MODE may override mode and seed.
			const MachineConfig &effective = machine.config();
			Json doc;
			ASSERT_NO_THROW(doc = Parser{machine.trace_json()}.document());
			const Json *metadata = member(doc, "metadata");
			ASSERT_TRUE(metadata && metadata->is_object());
			EXPECT_EQ(text_of(*metadata, "seed"), std::to_string(effective.seed));
			EXPECT_EQ(text_of(*metadata, "mode"),
					effective.mode == Mode::threads ? "threads" : "deterministic");
			EXPECT_EQ(number_of(*metadata, "cpus"), 3);
			EXPECT_EQ(text_of(*metadata, "helsim_version"), HELSIM_EXPECTED_VERSION);
			ImportCheck check = check_perfetto_import(machine.trace_json());
			EXPECT_TRUE(check.problems.empty()) << problems_of(check);
		}
}

} // namespace
