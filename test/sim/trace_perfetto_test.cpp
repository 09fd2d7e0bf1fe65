// Traces against the rules of Perfetto's JSON importer (check_perfetto_import in
// sim/trace_check.cpp, the rules the installed helsim-trace-check applies): real recordings of
// both modes on one to four CPUs, and each rule shown to catch its own breach.
#include "trace_support.hpp"

namespace {

using namespace helsim::trace_test;

// A recorded trace: nothing the importer would drop or misplace, every slice ended, every flow
// (submissions all complete in the echo) drawn between enclosing slices.
void expect_perfetto_imports(const std::string &json) {
	ImportCheck check = check_perfetto_import(json);
	EXPECT_TRUE(check.problems.empty()) << problems_of(check);
	EXPECT_GT(check.slices, 0u);
	EXPECT_GE(check.flows, 18u) << "12 operations and 6 sends";
	EXPECT_EQ(check.unended_flows, 0u);
	EXPECT_EQ(check.open_slices, 0u);
}

// The importer's rules over real recordings: both modes, one to four CPUs, several seeds.
TEST(TracePerfetto, DeterministicTracesImport) {
	for (unsigned cpus : {1u, 2u, 4u})
		for (std::uint64_t seed : {1u, 7u, 42u}) {
			SCOPED_TRACE("cpus " + std::to_string(cpus) + ", seed " + std::to_string(seed));
			MachineConfig config = traced(Mode::deterministic, seed);
			config.cpus = cpus;
			auto out = echo(config);
			EXPECT_FALSE(out.report.stuck);
			expect_perfetto_imports(out.json);
		}
}

TEST(TracePerfetto, ThreadsTracesImport) {
	for (unsigned cpus : {1u, 2u, 4u}) {
		SCOPED_TRACE("cpus " + std::to_string(cpus));
		MachineConfig config = traced(Mode::threads);
		config.cpus = cpus;
		auto out = echo(config);
		EXPECT_FALSE(out.report.stuck);
		expect_perfetto_imports(out.json);
	}
}

TEST(TracePerfetto, EmptyTraceImports) {
	MachineConfig config = traced(Mode::deterministic);
	config.trace = false;
	ImportCheck check = check_perfetto_import(Machine{config}.trace_json());
	EXPECT_TRUE(check.problems.empty()) << problems_of(check);
}

// Any trace file, e.g. one a program wrote with Machine::write_trace: HELSIM_TRACE_CHECK names
// it (skipped otherwise). Only the importer's rules: unended slices and flows are allowed.
TEST(TracePerfetto, CheckFileFromEnvironment) {
	const char *path = std::getenv("HELSIM_TRACE_CHECK");
	if (!path)
		GTEST_SKIP() << "HELSIM_TRACE_CHECK names no trace file";
	std::string text;
	ASSERT_TRUE(read_file(path, text)) << path;
	ImportCheck check = check_perfetto_import(text);
	for (const std::string &problem : check.problems)
		std::printf("%s\n", problem.c_str());
	EXPECT_TRUE(check.problems.empty()) << check.problems.size() << " problems";
	std::printf("%zu slices, %zu flows, %zu flows without an end, %zu slices without an end\n",
			check.slices, check.flows, check.unended_flows, check.open_slices);
}

// The checker itself: a well-formed miniature passes, and each rule catches its breach.
TEST(TracePerfetto, CheckerCatchesWhatTheImporterMishandles) {
	const std::string head = R"j({"traceEvents":[
{"ph":"M","pid":1,"name":"process_name","args":{"name":"p"}},
{"ph":"M","pid":1,"tid":3,"name":"thread_name","args":{"name":"a"}},
{"ph":"M","pid":1,"tid":4,"name":"thread_name","args":{"name":"b"}},)j";
	const std::string good = R"j(
{"ph":"B","pid":1,"tid":3,"ts":1.000,"name":"call","cat":"c"},
{"ph":"B","pid":1,"tid":3,"ts":1.010,"name":"send","cat":"ipc"},
{"ph":"s","pid":1,"tid":3,"ts":1.020,"name":"ipc","cat":"ipc","id":1},
{"ph":"E","pid":1,"tid":3,"ts":1.030,"name":"send","cat":"ipc"},
{"ph":"i","pid":1,"tid":3,"ts":1.040,"name":"wake","cat":"c","s":"t"},
{"ph":"E","pid":1,"tid":3,"ts":1.050,"name":"call","cat":"c"},
{"ph":"B","pid":1,"tid":4,"ts":2,"name":"receive","cat":"ipc"},
{"ph":"f","pid":1,"tid":4,"ts":2.001,"name":"ipc","cat":"ipc","id":1,"bp":"e"},
{"ph":"E","pid":1,"tid":4,"ts":2.002,"name":"receive","cat":"ipc"})j";
	auto check = [&](const std::string &events) {
		return check_perfetto_import(head + events + "]}");
	};
	ImportCheck fine = check(good);
	EXPECT_TRUE(fine.problems.empty()) << problems_of(fine);
	EXPECT_EQ(fine.flows, 1u);
	EXPECT_EQ(fine.slices, 4u);

	// The problems found once each `from` in the good miniature is replaced by its `to`.
	using Edits = std::vector<std::pair<std::string, std::string>>;
	auto problems = [&](const Edits &edits) {
		std::string bad = good;
		for (auto &[from, to] : edits) {
			auto at = bad.find(from);
			EXPECT_NE(at, std::string::npos) << from;
			if (at != std::string::npos)
				bad.replace(at, from.size(), to);
		}
		return problems_of(check(bad));
	};
	auto finds = [&](const Edits &edits, const std::string &what) {
		std::string found = problems(edits);
		EXPECT_NE(found.find(what), std::string::npos) << "expected \"" << what << "\", got\n"
													   << found;
	};
	// tid 0 becomes the pid; a tid is a thread of one process; no tid is a pid.
	finds({{R"j("tid":4,"ts":2,)j", R"j("tid":0,"ts":2,)j"}}, "tid 0 (or none) is read as the pid");
	finds({{R"j("tid":4,"ts":2,)j", R"j("tid":"4","ts":2,)j"}}, "tid is not an integer");
	finds({{R"j("pid":1,"tid":4,"ts":2,)j", R"j("pid":2,"tid":4,"ts":2,)j"}},
			"used in two processes");
	finds({{R"j("tid":4,"ts":2,)j", R"j("tid":1,"ts":2,)j"}}, "is also a pid");
	finds({{R"j("tid":4,"ts":2,)j", R"j("tid":5,"ts":2,)j"}}, "has no thread_name");
	// Slices nest: an E closes the topmost slice, with its name and category.
	finds({{R"j("ts":1.030,"name":"send")j", R"j("ts":1.030,"name":"call")j"}}, "out of order");
	finds({{R"j("ts":1.030,"name":"send","cat":"ipc")j",
				  R"j("ts":1.030,"name":"send","cat":"x")j"}},
			"out of order");
	// Flow points: inside an open slice (an instant that has ended does not count), "bp":"e"
	// on the end, the same (id, cat, name) at both ends, integer ids, the end after the start.
	finds({{R"j({"ph":"s")j",
				  R"j({"ph":"i","pid":1,"tid":3,"ts":1.015,"name":"x","cat":"c","s":"t"},
{"ph":"s")j"}},
			"flow start has no enclosing open slice");
	finds({{R"j(,"bp":"e")j", ""}}, "without \"bp\":\"e\"");
	finds({{R"j("name":"ipc","cat":"ipc","id":1,"bp")j",
				  R"j("name":"ipc2","cat":"ipc","id":1,"bp")j"}},
			"ends before it starts");
	finds({{R"j("id":1,"bp")j", R"j("id":1.0,"bp")j"}}, "flow id is not an integer");
	finds({{R"j("id":1,"bp")j", R"j("id":"1","bp")j"}}, "flow id is not an integer");
	finds({{R"j("ts":2,)j", R"j("ts":1.011,)j"}, {R"j("ts":2.001,)j", R"j("ts":1.012,)j"},
				  {R"j("ts":2.002,)j", R"j("ts":1.013,)j"}},
			"ends before it starts");
	// Timestamps: nanosecond resolution, increasing on a track; names and scopes as read.
	finds({{R"j("ts":1.040,)j", R"j("ts":1.0401,)j"}}, "is imported as");
	finds({{R"j("ts":1.040,)j", R"j("ts":1.030,)j"}}, "does not increase");
	finds({{R"j("name":"wake")j", R"j("name":"")j"}}, "no name");
	finds({{R"j("s":"t")j", R"j("s":"x")j"}}, "instant scope");
	std::string scaled = head + good + R"j(],"displayTimeUnit":"ns"})j";
	EXPECT_NE(problems_of(check_perfetto_import(scaled)).find("displayTimeUnit"),
			std::string::npos);
	// Top-level members: metadata and otherData are dictionaries; older importers stop at any
	// other key. An array at an event's top level fails the whole import.
	auto whole = [&](const std::string &after) {
		return problems_of(check_perfetto_import(head + good + "]" + after + "}"));
	};
	EXPECT_EQ(whole(R"j(,"metadata":{"seed":"7"},"otherData":{})j"), "");
	EXPECT_NE(whole(R"j(,"metadata":"seed 7")j").find("metadata: not an object"),
			std::string::npos);
	EXPECT_NE(whole(R"j(,"extra":1)j").find("top-level key extra"), std::string::npos);
	finds({{R"j("name":"wake","cat":"c")j", R"j("name":"wake","cat":"c","stack":[1])j"}},
			"an array at the event's top level");
}

} // namespace
