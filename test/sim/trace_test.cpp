// Tracing (sim/trace.cpp) and the per-kind counters: a stream echo between two threads over SQ
// operations, traced in both modes; the JSON must parse strictly and hold the tracks, slices
// and flows docs/tracing.md promises, and equal seeds must give byte-identical traces.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#include "../support.hpp"

namespace {

using namespace helsim;

// ------------------------------------------------------------------ a strict JSON parser

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
struct Json {
	std::variant<std::nullptr_t, bool, double, std::string, JsonArray, JsonObject> v;
	bool is_object() const { return std::holds_alternative<JsonObject>(v); }
	const JsonObject &object() const { return std::get<JsonObject>(v); }
	const JsonArray &array() const { return std::get<JsonArray>(v); }
	const std::string &string() const { return std::get<std::string>(v); }
	double number() const { return std::get<double>(v); }
};

// RFC 8259 without extensions: no trailing commas, comments, NaN or leading zeros. Throws
// std::runtime_error with the offset of the first error.
class Parser {
public:
	explicit Parser(const std::string &text) : s_{text} {}
	Json document() {
		Json value = parse_value();
		skip_ws();
		if (i_ != s_.size())
			fail("trailing characters");
		return value;
	}

private:
	[[noreturn]] void fail(const char *what) {
		throw std::runtime_error(std::string{what} + " at offset " + std::to_string(i_));
	}
	void skip_ws() {
		while (i_ < s_.size() &&
				(s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r'))
			++i_;
	}
	char peek() {
		if (i_ >= s_.size())
			fail("unexpected end");
		return s_[i_];
	}
	void expect(char c) {
		if (peek() != c)
			fail("unexpected character");
		++i_;
	}
	void literal(const char *word) {
		for (const char *p = word; *p; ++p)
			expect(*p);
	}
	Json parse_value() {
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
	Json parse_object() {
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
	Json parse_array() {
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
	std::string parse_string() {
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
	Json parse_number() {
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
		return Json{std::stod(s_.substr(start, i_ - start))};
	}

	const std::string &s_;
	std::size_t i_ = 0;
};

TEST(TraceJsonParser, IsStrict) {
	EXPECT_NO_THROW(Parser{R"({"a":[1,-2.5e3,"x\n",true,null,{}]})"}.document());
	EXPECT_THROW(Parser{"[1,]"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1,}"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"[01]"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1}x"}.document(), std::runtime_error);
	EXPECT_THROW(Parser{"{\"a\":1,\"a\":2}"}.document(), std::runtime_error);
}

// ------------------------------------------------------------------ the workload

struct Outcome {
	RunReport report;
	std::string json;
	std::size_t events = 0;
};

// A server fiber creates a stream, starts a client thread (helCreateThread, same universe)
// and answers its message; both sides use Dispatchers, so every exchange is an SQ operation.
Outcome echo(MachineConfig config, const std::string &path = {}) {
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

MachineConfig traced(Mode mode, std::uint64_t seed = 7) {
	MachineConfig config;
	config.mode = mode;
	config.cpus = 2;
	config.seed = seed;
	config.trace = true;
	return config;
}

const Json *member(const Json &event, const char *key) {
	auto it = event.object().find(key);
	return it == event.object().end() ? nullptr : &it->second;
}

std::string text_of(const Json &event, const char *key) {
	const Json *v = member(event, key);
	return v && std::holds_alternative<std::string>(v->v) ? v->string() : std::string{};
}

// Every structural promise of docs/tracing.md.
void check_trace(const std::string &json, unsigned cpus) {
	Json doc;
	ASSERT_NO_THROW(doc = Parser{json}.document()) << json.substr(0, 2000);
	ASSERT_TRUE(doc.is_object());
	const Json *events = member(doc, "traceEvents");
	ASSERT_TRUE(events);
	std::set<double> cpu_tracks;
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
				cpu_tracks.insert(member(e, "tid")->number());
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
		EXPECT_TRUE(cpu_tracks.contains(cpu));
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
	std::FILE *file = std::fopen(path.c_str(), "rb");
	ASSERT_TRUE(file);
	std::string read;
	char buffer[4096];
	for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;)
		read.append(buffer, n);
	std::fclose(file);
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

} // namespace
