// The trace checker's rules and the command around them; see trace_check.hpp.
#include "trace_check.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

namespace helsim::trace_check {

// ------------------------------------------------------------------ the parser

Json Parser::document() {
	Json value = parse_value();
	skip_ws();
	if (i_ != s_.size())
		fail("trailing characters");
	return value;
}

void Parser::fail(const char *what) {
	throw std::runtime_error(std::string{what} + " at offset " + std::to_string(i_));
}

void Parser::skip_ws() {
	while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
		++i_;
}

char Parser::peek() {
	if (i_ >= s_.size())
		fail("unexpected end");
	return s_[i_];
}

void Parser::expect(char c) {
	if (peek() != c)
		fail("unexpected character");
	++i_;
}

void Parser::literal(const char *word) {
	for (const char *p = word; *p; ++p)
		expect(*p);
}

Json Parser::parse_value() {
	skip_ws();
	switch (peek()) {
	case '{': return parse_object();
	case '[': return parse_array();
	case '"': return Json{parse_string()};
	case 't': literal("true"); return Json{true};
	case 'f': literal("false"); return Json{false};
	case 'n': literal("null"); return Json{nullptr};
	default: return parse_number();
	}
}

Json Parser::parse_object() {
	expect('{');
	JsonObject out;
	skip_ws();
	if (peek() == '}') {
		++i_;
		return Json{std::move(out)};
	}
	for (;;) {
		skip_ws();
		std::string key = parse_string();
		skip_ws();
		expect(':');
		if (!out.emplace(key, parse_value()).second)
			fail("duplicate key");
		skip_ws();
		if (peek() == ',') {
			++i_;
			continue;
		}
		expect('}');
		return Json{std::move(out)};
	}
}

Json Parser::parse_array() {
	expect('[');
	JsonArray out;
	skip_ws();
	if (peek() == ']') {
		++i_;
		return Json{std::move(out)};
	}
	for (;;) {
		out.push_back(parse_value());
		skip_ws();
		if (peek() == ',') {
			++i_;
			continue;
		}
		expect(']');
		return Json{std::move(out)};
	}
}

std::string Parser::parse_string() {
	expect('"');
	std::string out;
	for (;;) {
		char c = peek();
		++i_;
		if (c == '"')
			return out;
		if (static_cast<unsigned char>(c) < 0x20)
			fail("control character in string");
		if (c != '\\') {
			out += c;
			continue;
		}
		char e = peek();
		++i_;
		switch (e) {
		case '"': out += '"'; break;
		case '\\': out += '\\'; break;
		case '/': out += '/'; break;
		case 'b': out += '\b'; break;
		case 'f': out += '\f'; break;
		case 'n': out += '\n'; break;
		case 'r': out += '\r'; break;
		case 't': out += '\t'; break;
		case 'u':
			for (int k = 0; k < 4; ++k) {
				if (!std::isxdigit(static_cast<unsigned char>(peek())))
					fail("bad \\u escape");
				++i_;
			}
			out += '?';
			break;
		default: fail("bad escape");
		}
	}
}

Json Parser::parse_number() {
	std::size_t start = i_;
	if (peek() == '-')
		++i_;
	if (peek() == '0') {
		++i_;
	} else if (std::isdigit(static_cast<unsigned char>(peek()))) {
		while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])))
			++i_;
	} else {
		fail("bad value");
	}
	auto digits = [&] {
		if (i_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[i_])))
			fail("digit expected");
		while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_])))
			++i_;
	};
	if (i_ < s_.size() && s_[i_] == '.') {
		++i_;
		digits();
	}
	if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
		++i_;
		if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-'))
			++i_;
		digits();
	}
	std::string literal = s_.substr(start, i_ - start);
	return Json{JsonNumber{std::stod(literal), literal}};
}

const Json *member(const Json &object, const char *key) {
	if (!object.is_object())
		return nullptr;
	auto it = object.object().find(key);
	return it == object.object().end() ? nullptr : &it->second;
}

std::string text_of(const Json &object, const char *key) {
	const Json *v = member(object, key);
	return v && v->is_string() ? v->string() : std::string{};
}

// ------------------------------------------------------------------ what Perfetto's importer needs

namespace {

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
//    in importers/json/json_utils.cc) scaled every ts by it. Other top-level keys are skipped
//    (SkipOneJsonValue); older versions read "metadata" and "otherData" as dictionaries and
//    stopped reading at any other key (position_ = kEof). HandleTraceEvent looks for "ts" and
//    "dur" with ExtractValueForJsonKey, which fails the whole trace ("unsupported JSON
//    dictionary with array") on an array at an event's top level (nested in args is fine).
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

} // namespace

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
	// Older importers stop at a key they do not know, and read metadata as a dictionary.
	for (const auto &[key, value] : doc.object()) {
		if (key == "metadata" || key == "otherData") {
			if (!value.is_object())
				out.problems.push_back(key + ": not an object (older importers fail)");
		} else if (key != "traceEvents" && key != "displayTimeUnit") {
			out.problems.push_back("top-level key " + key + ": older importers stop reading there");
		}
	}

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
	out.events = events.size();
	for (std::size_t index = 0; index < events.size(); ++index) {
		const Json &e = events[index];
		if (!e.is_object()) {
			fail(index, "not an object");
			continue;
		}
		bool array_member = false;
		for (const auto &[key, value] : e.object())
			array_member |= value.is_array();
		if (array_member)
			fail(index, "an array at the event's top level fails the whole import");
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

std::string problems_of(const ImportCheck &check, std::size_t limit) {
	std::string text;
	for (std::size_t i = 0; i < check.problems.size() && i < limit; ++i)
		text += check.problems[i] + "\n";
	return text;
}

namespace {

constexpr const char *kUsage =
		"usage: helsim-trace-check <trace.json>...\n"
		"Checks Chrome trace-event JSON files (Machine::write_trace) against "
		"the rules of Perfetto's JSON importer.\n"
		"Exit status: 0 all files pass, 1 a file breaks a rule, 2 bad "
		"arguments or an unreadable file.\n";

// False if the file cannot be opened or read (a directory opens but does not read).
bool read_whole(const std::string &path, std::string &out) {
	std::FILE *file = std::fopen(path.c_str(), "rb");
	if (!file)
		return false;
	char buffer[1 << 16];
	for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;)
		out.append(buffer, n);
	bool ok = !std::ferror(file);
	return std::fclose(file) == 0 && ok;
}

} // namespace

int run_tool(const std::vector<std::string> &arguments, std::ostream &out, std::ostream &err) {
	if (arguments.empty()) {
		err << kUsage;
		return 2;
	}
	for (const std::string &argument : arguments) {
		if (argument == "-h" || argument == "--help") {
			out << kUsage;
			return 0;
		}
		if (argument.size() > 1 && argument[0] == '-') {
			err << "unknown option " << argument << '\n' << kUsage;
			return 2;
		}
	}
	int status = 0;
	for (const std::string &path : arguments) {
		std::string text;
		if (!read_whole(path, text)) {
			err << path << ": cannot read the file\n" << kUsage;
			return 2;
		}
		ImportCheck check = check_perfetto_import(text);
		if (check.problems.empty()) {
			out << path << ": ok: " << check.events << " events\n";
			continue;
		}
		status = 1;
		for (const std::string &problem : check.problems)
			out << path << ": " << problem << '\n';
	}
	return status;
}

} // namespace helsim::trace_check
