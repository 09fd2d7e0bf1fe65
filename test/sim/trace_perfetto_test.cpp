// Traces against the rules of Perfetto's JSON importer (check_perfetto_import): real
// recordings of both modes on one to four CPUs, and each rule shown to catch its own breach.
#include "trace_support.hpp"

namespace {

using namespace helsim::trace_test;

// ------------------------------------------------------------------ what Perfetto's importer needs

// The rules of Perfetto's JSON importer that our traces rely on, read in google/perfetto (paths
// in that repository; docs/tracing.md, "Checked against Perfetto's importer"):
//
//  [tokenizer] src/trace_processor/importers/json/json_trace_tokenizer.cc:
//    JsonTraceTokenizer::ParseTraceEventContents reads "ph" (first character), "ts" through
//    CoerceToTs (integer literal: value * 1000; otherwise llround(value * 1000.0) ns; an event
//    other than "M" without a usable ts is dropped), "pid"/"tid" through CoerceToUint32 (out of
//    range: 0; a string is taken as a name), then "Make the tid equal to the pid if tid is not
//    set": a tid of 0 becomes the pid. ExtractId takes an integer or a string "id" (a string is
//    later read as hexadecimal; a non-integral number is no id). "bp" == "e" binds a flow end
//    to its enclosing slice. HandleDictionaryKey ignores "displayTimeUnit" (stat
//    json_display_time_unit); older versions (MaybeParseDisplayTimeUnit with CoerceToTs(TimeUnit)
//    in importers/json/json_utils.cc) scaled every ts by it.
//  [parser] src/trace_processor/importers/json/json_trace_parser.cc (json_trace_parser_impl.cc
//    before): JsonTraceParser::ParseJsonPacket: "B"/"E" -> SliceTracker::Begin/End on the
//    thread track of (pid, tid), "E" passing its cat and name; "i"/"I" with "s" of t (or none),
//    p or g, anything else a json_parser_failure; "s"/"t"/"f" -> FlowTracker keyed by
//    GetFlowIdForV1Event(id, cat, name); "M" thread_name / process_name take a non-empty string
//    args.name (json_parser_failure otherwise), *_sort_index an integer args.sort_index.
//  [slices] src/trace_processor/importers/common/slice_tracker.cc: MaybeCloseStack (slices must
//    nest; an ended slice is popped only when a later B/E/X/instant arrives on the track, and
//    one ending exactly at the new ts is popped too), MatchingIncompleteSliceIndex (an "E" closes
//    the topmost open slice with its name and cat), GetTopmostSliceOnTrack (what a flow binds
//    to: the top of the stack, without popping), FlushPendingSlices (a slice never ended keeps
//    no duration).
//  [flows] src/trace_processor/importers/common/flow_tracker.cc: Begin (no open slice:
//    flow_no_enclosing_slice; an id begun twice: flow_duplicate_id, and v1 flows are never
//    closed), End (without "bp":"e" it waits for the next slice on the track; no start:
//    flow_end_without_start).
//  [threads] src/trace_processor/importers/common/process_tracker.cc: UpdateThread finds a
//    thread by (tid, pid); GetOrCreateProcessInternal gives every pid a main thread with
//    tid == pid; older parsers named threads by tid alone (UpdateThreadName(tid, ...)).
struct ImportCheck {
	std::vector<std::string> problems; // what the importer would drop, misplace or misread
	std::size_t slices = 0;            // B/E pairs and instants on thread tracks
	std::size_t flows = 0;             // s -> f pairs bound to enclosing slices
	std::size_t unended_flows = 0;     // "s" without an "f" (the operation never completed)
	std::size_t open_slices = 0;       // "B" without an "E" at the end of the trace
};

bool is_integer_literal(const Json &value) {
	return value.is_number() &&
			value.literal().find_first_not_of("0123456789") == std::string::npos;
}

// The ns Perfetto makes of a "ts" literal: json_parser.h's StringToDouble (integer part plus
// fraction), then CoerceToTs. Our literals are plain decimals (no sign or exponent).
std::int64_t perfetto_ns(const std::string &literal) {
	auto dot = literal.find('.');
	std::int64_t int_part = std::stoll(literal.substr(0, dot));
	if (dot == std::string::npos)
		return int_part * 1000;
	std::int64_t fraction = 0;
	std::uint64_t divisor = 1;
	for (char c : literal.substr(dot + 1)) {
		fraction = fraction * 10 + (c - '0');
		divisor *= 10;
	}
	double value = static_cast<double>(int_part) +
			static_cast<double>(fraction) / static_cast<double>(divisor);
	return value == std::trunc(value) ? static_cast<std::int64_t>(value) * 1000
									  : static_cast<std::int64_t>(std::llround(value * 1000.0));
}

// The ns the literal means, exactly; -1 if it has digits below a nanosecond.
std::int64_t exact_ns(const std::string &literal) {
	auto dot = literal.find('.');
	std::int64_t ns = std::stoll(literal.substr(0, dot)) * 1000;
	if (dot == std::string::npos)
		return ns;
	std::string digits = literal.substr(dot + 1);
	if (digits.size() > 3 && digits.find_first_not_of('0', 3) != std::string::npos)
		return -1;
	digits.resize(3, '0');
	return ns + std::stoll(digits);
}

ImportCheck check_perfetto_import(const std::string &json) {
	ImportCheck out;
	auto fail = [&](std::size_t index, const std::string &what) {
		out.problems.push_back("event " + std::to_string(index) + ": " + what);
	};
	Json doc;
	try {
		doc = Parser{json}.document();
	} catch (const std::exception &e) {
		out.problems.push_back(std::string{"not JSON: "} + e.what());
		return out;
	}
	if (!doc.is_object() || !member(doc, "traceEvents") ||
			!member(doc, "traceEvents")->is_array()) {
		out.problems.push_back("no traceEvents array");
		return out;
	}
	// Older importers scale every ts by displayTimeUnit: helsim writes none.
	if (member(doc, "displayTimeUnit"))
		out.problems.push_back("displayTimeUnit: older importers scale every ts by it");

	using Track = std::pair<std::uint32_t, std::uint32_t>; // (pid, tid)
	struct Open {
		std::string name, cat;
		std::int64_t start;
		std::int64_t end; // -1 while open (a "B" without its "E" yet)
	};
	struct Flow {
		std::int64_t start = -1;
		int ends = 0;
	};
	std::map<Track, std::vector<Open>> stacks;
	std::map<Track, std::int64_t> last_ts;
	std::map<std::tuple<std::string, std::string, std::string>, Flow> flows; // (id, cat, name)
	std::set<std::uint32_t> pids, named_processes;
	std::map<std::uint32_t, std::uint32_t> tid_pid; // every tid's process
	std::set<Track> used, named_threads;

	// MaybeCloseStack for an event at `ts` lasting `dur` (-1: a "B" or an "E"): ended slices
	// go, one ending at `ts` too unless both it and the new event are instants.
	auto close_stack = [](std::vector<Open> &stack, std::int64_t ts, std::int64_t dur) {
		while (!stack.empty() && stack.back().end >= 0) {
			const Open &top = stack.back();
			if (top.end < ts || (top.end == ts && !(top.end == top.start && dur == 0)))
				stack.pop_back();
			else
				break;
		}
	};
	auto id_of = [](const Json &value, bool &ok) -> std::uint32_t {
		ok = is_integer_literal(value) && value.number() >= 1 && value.number() <= 0xffffffffu;
		return ok ? static_cast<std::uint32_t>(value.number()) : 0;
	};

	const JsonArray &events = member(doc, "traceEvents")->array();
	for (std::size_t index = 0; index < events.size(); ++index) {
		const Json &e = events[index];
		if (!e.is_object()) {
			fail(index, "not an object");
			continue;
		}
		std::string ph = text_of(e, "ph");
		if (ph.size() != 1) {
			fail(index, "\"ph\" is not one character");
			continue;
		}
		std::string name = text_of(e, "name");
		std::string cat = text_of(e, "cat");
		const Json *pid_value = member(e, "pid");
		const Json *tid_value = member(e, "tid");
		bool ok = false;
		std::uint32_t pid = pid_value ? id_of(*pid_value, ok) : 0;
		if (!ok) {
			fail(index, "pid is not an integer in [1, 2^32)");
			continue;
		}
		pids.insert(pid);
		bool process_wide = ph == "M" && (name == "process_name" || name == "process_sort_index");
		std::uint32_t tid = 0;
		if (!process_wide) {
			tid = tid_value ? id_of(*tid_value, ok) : 0;
			if (!tid_value || (is_integer_literal(*tid_value) && tid_value->number() == 0)) {
				// As the tokenizer does: the event lands on the pid's track, checked as such.
				fail(index, "tid 0 (or none) is read as the pid");
				tid = pid;
			} else if (!ok) {
				fail(index, "tid is not an integer in [1, 2^32)");
				continue;
			}
			auto [it, inserted] = tid_pid.emplace(tid, pid);
			if (!inserted && it->second != pid)
				fail(index, "tid " + std::to_string(tid) + " is used in two processes");
		}
		Track track{pid, tid};

		if (ph == "M") {
			const Json *args = member(e, "args");
			if (!args || !args->is_object()) {
				fail(index, "metadata without args");
				continue;
			}
			if (name == "process_name" || name == "thread_name") {
				if (text_of(*args, "name").empty())
					fail(index, name + " without a non-empty args.name");
				else if (name == "process_name")
					named_processes.insert(pid);
				else
					named_threads.insert(track);
			} else if (name == "process_sort_index" || name == "thread_sort_index") {
				const Json *index_value = member(*args, "sort_index");
				if (!index_value || !is_integer_literal(*index_value))
					fail(index, name + " without an integer args.sort_index");
			} else {
				fail(index, "metadata " + name + " is ignored by the importer");
			}
			continue;
		}

		used.insert(track);
		const Json *ts_value = member(e, "ts");
		if (!ts_value || !ts_value->is_number() ||
				ts_value->literal().find_first_not_of("0123456789.") != std::string::npos) {
			fail(index, "ts is not a plain non-negative number");
			continue;
		}
		std::int64_t ts = perfetto_ns(ts_value->literal());
		if (ts != exact_ns(ts_value->literal()))
			fail(index,
					"ts " + ts_value->literal() + " is imported as " + std::to_string(ts) + " ns");
		// Perfetto sorts events by ts; strictly increasing ts on a track leaves it no choice.
		if (auto it = last_ts.find(track); it != last_ts.end() && ts <= it->second)
			fail(index, "ts does not increase on its track");
		last_ts[track] = ts;
		if (name.empty())
			fail(index, "no name (\"[No name]\"; an unnamed E closes any slice)");

		std::vector<Open> &stack = stacks[track];
		// The slice a flow point binds to: GetTopmostSliceOnTrack, which pops nothing.
		auto binds = [&](const char *what) {
			if (stack.empty() || (stack.back().end >= 0 && stack.back().end <= ts))
				fail(index, std::string{what} + " has no enclosing open slice on its track");
		};
		if (ph == "B") {
			close_stack(stack, ts, -1);
			stack.push_back(Open{name, cat, ts, -1});
		} else if (ph == "E") {
			close_stack(stack, ts, -1);
			if (stack.empty() || stack.back().end >= 0) {
				fail(index, "E does not close the topmost slice");
			} else if (stack.back().name != name || stack.back().cat != cat) {
				fail(index, "E " + name + " would close " + stack.back().name + " out of order");
			} else {
				stack.pop_back();
				++out.slices;
			}
		} else if (ph == "i" || ph == "I") {
			std::string scope = text_of(e, "s");
			if (member(e, "s") && scope != "t" && scope != "p" && scope != "g")
				fail(index, "instant scope " + scope + " is a parser failure");
			if (scope.empty() || scope == "t") {
				close_stack(stack, ts, 0);
				stack.push_back(Open{name, cat, ts, ts});
				++out.slices;
			}
		} else if (ph == "s" || ph == "f") {
			const Json *id = member(e, "id");
			if (!id || !is_integer_literal(*id)) {
				fail(index, "flow id is not an integer (a string is read as hex)");
				continue;
			}
			Flow &flow = flows[{id->literal(), cat, name}];
			if (ph == "s") {
				binds("flow start");
				if (flow.start >= 0)
					fail(index, "flow " + id->literal() + " starts twice");
				flow.start = ts;
			} else {
				if (text_of(e, "bp") != "e")
					fail(index, "flow end without \"bp\":\"e\" binds to the next slice");
				binds("flow end");
				if (flow.start < 0 || flow.start >= ts)
					fail(index, "flow " + id->literal() + " ends before it starts");
				if (++flow.ends > 1)
					fail(index, "flow " + id->literal() + " ends twice");
			}
		} else {
			fail(index, "phase " + ph + " is not part of this format");
		}
	}

	for (const Track &track : used)
		if (!named_threads.contains(track))
			out.problems.push_back("track (" + std::to_string(track.first) + ", " +
					std::to_string(track.second) + ") has no thread_name");
	for (std::uint32_t pid : pids) {
		if (!named_processes.contains(pid))
			out.problems.push_back("process " + std::to_string(pid) + " has no process_name");
		if (tid_pid.contains(pid))
			out.problems.push_back("tid " + std::to_string(pid) + " is also a pid (a main thread)");
	}
	for (auto &[key, flow] : flows) {
		if (flow.start >= 0 && flow.ends == 1)
			++out.flows;
		else if (flow.start >= 0)
			++out.unended_flows;
	}
	for (auto &[track, stack] : stacks)
		for (const Open &open : stack)
			out.open_slices += open.end < 0;
	return out;
}

std::string problems_of(const ImportCheck &check) {
	std::string text;
	for (std::size_t i = 0; i < check.problems.size() && i < 20; ++i)
		text += check.problems[i] + "\n";
	return text;
}

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
}

} // namespace
