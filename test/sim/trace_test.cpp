// Tracing (sim/trace.cpp) and the per-kind counters: a stream echo between two threads over SQ
// operations, traced in both modes; the JSON must parse strictly, hold the tracks, slices and
// flows docs/tracing.md promises, and equal seeds must give byte-identical traces.
#include "trace_support.hpp"

namespace {

using namespace helsim::trace_test;

TEST(TraceJsonParser, IsStrict) {
	EXPECT_NO_THROW(Parser{R"({"a":[1,-2.5e3,"x\n",true,null,{}]})"}.document());
	EXPECT_THROW(Parser{"[1,]"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1,}"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"[01]"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1}x"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1,\"a\":2}"}.document(), std::runtime_error);
}

// Every structural promise of docs/tracing.md.
void check_trace(const std::string &json, unsigned cpus) {
	Json doc;
	ASSERT_NO_THROW(doc = Parser{json}.document()) << json.substr(0, 2000);
	ASSERT_TRUE(doc.is_object());
	const Json *events = member(doc, "traceEvents");
	ASSERT_TRUE(events);
	std::set<std::string> cpu_tracks; // the CPU tracks' names
	std::size_t running = 0, syscalls = 0;
	std::map<std::string, std::map<double, int>> flows; // category -> id -> s(+1)/f(+2)
	std::map<std::pair<double, double>, std::vector<std::string>> open; // track -> B stack
	std::set<std::string> syscall_names;
	double last_ts = -1;
	for (const Json &e : events->array()) {
		ASSERT_TRUE(e.is_object());
		std::string ph = text_of(e, "ph");
		ASSERT_FALSE(ph.empty());
		ASSERT_TRUE(member(e, "pid"));
		double pid = member(e, "pid")->number();
		if (ph == "M") {
			if (text_of(e, "name") == "thread_name" && pid == 1)
				cpu_tracks.insert(text_of(*member(e, "args"), "name"));
			continue;
		}
		ASSERT_TRUE(member(e, "tid") && member(e, "ts"));
		double ts = member(e, "ts")->number();
		EXPECT_GE(ts, last_ts) << "events are written in time order";
		last_ts = ts;
		auto track = std::make_pair(pid, member(e, "tid")->number());
		std::string name = text_of(e, "name");
		if (ph == "B") {
			open[track].push_back(name);
			if (pid == 1)
				++running;
			if (text_of(e, "cat") == "syscall") {
				++syscalls;
				syscall_names.insert(name);
			}
		} else if (ph == "E") {
			ASSERT_FALSE(open[track].empty()) << "E without B on a track";
			EXPECT_EQ(open[track].back(), name) << "slices nest";
			open[track].pop_back();
		} else if (ph == "s" || ph == "f") {
			ASSERT_TRUE(member(e, "id"));
			EXPECT_FALSE(open[track].empty()) << "a flow point binds to an enclosing slice";
			flows[text_of(e, "cat")][member(e, "id")->number()] |= ph == "s" ? 1 : 2;
			if (ph == "f") {
				EXPECT_EQ(text_of(e, "bp"), "e");
			}
		} else {
			EXPECT_EQ(ph, "i");
		}
	}
	EXPECT_EQ(cpu_tracks.size(), cpus);
	for (unsigned cpu = 0; cpu < cpus; ++cpu)
		EXPECT_TRUE(cpu_tracks.contains("CPU " + std::to_string(cpu)));
	EXPECT_GT(running, 0u);
	EXPECT_GT(syscalls, 0u);
	EXPECT_TRUE(syscall_names.contains("helCreateStream"));
	EXPECT_TRUE(syscall_names.contains("helDriveQueue"));
	auto paired = [&](const std::string &category) {
		std::size_t n = 0;
		for (auto &[id, bits] : flows[category])
			n += bits == 3;
		return n;
	};
	EXPECT_GE(paired("operation"), 12u) << "submission -> completion flows";
	EXPECT_GE(paired("ipc"), 6u) << "send -> receive flows";
	for (auto &[category, ids] : flows)
		for (auto &[id, bits] : ids)
			EXPECT_NE(bits, 2) << category << " flow " << id << " ends without a start";
}

TEST(Trace, DeterministicRunHasTracksSlicesAndFlows) {
	auto out = echo(traced(Mode::deterministic));
	EXPECT_FALSE(out.report.stuck) << out.report.to_string();
	EXPECT_GT(out.events, 0u);
	check_trace(out.json, 2);
}

TEST(Trace, ThreadsRunHasTracksSlicesAndFlows) {
	auto out = echo(traced(Mode::threads));
	EXPECT_FALSE(out.report.stuck) << out.report.to_string();
	EXPECT_GT(out.events, 0u);
	check_trace(out.json, 2);
}

TEST(Trace, WriteTraceWritesTheJson) {
	// HELSIM_TRACE_OUT keeps the file, to open it in the Perfetto UI.
	const char *keep = std::getenv("HELSIM_TRACE_OUT");
	std::string path = keep ? keep : ::testing::TempDir() + "helsim_trace_test.json";
	auto out = echo(traced(Mode::deterministic), path);
	std::string read;
	ASSERT_TRUE(read_file(path, read));
	if (!keep)
		std::remove(path.c_str());
	EXPECT_EQ(read, out.json);
	EXPECT_THROW(Machine{}.write_trace("/nonexistent-dir/trace.json"), std::runtime_error);
}

TEST(Trace, OffRecordsNothing) {
	for (Mode mode : {Mode::deterministic, Mode::threads}) {
		MachineConfig config = traced(mode);
		config.trace = false;
		auto out = echo(config);
		EXPECT_EQ(out.events, 0u);
		Json doc;
		ASSERT_NO_THROW(doc = Parser{out.json}.document());
		EXPECT_TRUE(member(doc, "traceEvents")->array().empty());
	}
}

TEST(Trace, EqualSeedsGiveIdenticalTraces) {
	auto first = echo(traced(Mode::deterministic, 42));
	auto second = echo(traced(Mode::deterministic, 42));
	EXPECT_EQ(first.report.trace_hash, second.report.trace_hash);
	EXPECT_NE(first.report.trace_hash, 0u);
	EXPECT_EQ(first.json.size(), second.json.size());
	EXPECT_TRUE(first.json == second.json) << "traces of equal seeds differ";
}

TEST(Trace, CountersTableNamesSyscallsAndObjectKinds) {
	MachineConfig config = traced(Mode::deterministic);
	config.trace = false; // counters do not depend on tracing
	auto out = echo(config);
	const Counters &c = out.report.counters;
	std::map<std::string, ObjectCount> kinds;
	for (const ObjectCount &o : c.objects)
		kinds[o.kind] = o;
	EXPECT_GE(kinds["queue"].created, 2u);
	EXPECT_GE(kinds["lane"].created, 2u);
	EXPECT_GE(kinds["stream"].created, 1u);
	EXPECT_GE(kinds["thread"].created, 2u);
	EXPECT_EQ(kinds["stream"].live, 0u);
	EXPECT_GT(c.context_switches, 0u);
	EXPECT_GT(c.completions_posted, 0u);
	std::string table = c.to_table();
	for (const char *needle : {"helCreateStream", "helCreateQueue", "helDriveQueue",
				 "helShutdownLane", "queue", "lane", "stream", "thread", "context switches",
				 "page faults (host)", "page faults (kernel)", "completions posted"})
		EXPECT_NE(table.find(needle), std::string::npos) << needle << " missing from\n" << table;
}

// An SQ operation that completes at once (the async nop) on a traced machine takes the traced
// path of its completion: every nop's flow starts at its submission and ends at its completion.
TEST(Trace, AsyncNopsThroughTheSqStartAndEndTheirFlows) {
	constexpr std::uintptr_t kNops = 4;
	for (Mode mode : {Mode::deterministic, Mode::threads}) {
		Machine machine{traced(mode)};
		machine.spawn("nops", [](std::span<const HelHandle>) {
			Dispatcher d;
			for (std::uintptr_t i = 0; i < kNops; ++i)
				d.submit(kHelSubmitAsyncNop, i, std::span<const std::byte>{});
			d.flush();
			for (std::uintptr_t i = 0; i < kNops; ++i) {
				auto element = d.wait();
				ASSERT_TRUE(element);
				EXPECT_EQ(element->error(), kHelErrNone);
				EXPECT_EQ(element->context(), i);
			}
		});
		RunReport report = machine.run();
		EXPECT_FALSE(report.stuck) << report.to_string();
		EXPECT_TRUE(report.leaks.empty()) << report.to_string();
		EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
		EXPECT_EQ(report.counters.operations_submitted, kNops);
		Json doc;
		ASSERT_NO_THROW(doc = Parser{machine.trace_json()}.document());
		std::map<double, int> flows; // id -> s(+1)/f(+2)
		for (const Json &e : member(doc, "traceEvents")->array()) {
			std::string ph = text_of(e, "ph");
			if (text_of(e, "cat") == "operation" && (ph == "s" || ph == "f")) {
				ASSERT_TRUE(member(e, "id"));
				flows[member(e, "id")->number()] |= ph == "s" ? 1 : 2;
			}
		}
		EXPECT_EQ(flows.size(), kNops);
		for (auto &[id, bits] : flows)
			EXPECT_EQ(bits, 3) << "operation flow " << id;
	}
}

} // namespace
