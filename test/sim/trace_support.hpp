// Shared by the trace tests: a strict JSON parser (stricter than any trace importer, so what
// it accepts every importer reads) and the traced workload, a stream echo between two threads.
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

namespace helsim::trace_test {

using namespace helsim;

// ------------------------------------------------------------------ a strict JSON parser

struct Json;
using JsonObject = std::map<std::string, Json>;
using JsonArray = std::vector<Json>;
// A number keeps its literal: how Perfetto reads it depends on the spelling (integer or not).
struct JsonNumber {
	double value;
	std::string literal;
};
struct Json {
	std::variant<std::nullptr_t, bool, JsonNumber, std::string, JsonArray, JsonObject> v;
	bool is_object() const { return std::holds_alternative<JsonObject>(v); }
	bool is_array() const { return std::holds_alternative<JsonArray>(v); }
	bool is_string() const { return std::holds_alternative<std::string>(v); }
	bool is_number() const { return std::holds_alternative<JsonNumber>(v); }
	const JsonObject &object() const { return std::get<JsonObject>(v); }
	const JsonArray &array() const { return std::get<JsonArray>(v); }
	const std::string &string() const { return std::get<std::string>(v); }
	double number() const { return std::get<JsonNumber>(v).value; }
	const std::string &literal() const { return std::get<JsonNumber>(v).literal; }
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
		std::string literal = s_.substr(start, i_ - start);
		return Json{JsonNumber{std::stod(literal), literal}};
	}

	const std::string &s_;
	std::size_t i_ = 0;
};

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

inline const Json *member(const Json &event, const char *key) {
	auto it = event.object().find(key);
	return it == event.object().end() ? nullptr : &it->second;
}

inline std::string text_of(const Json &event, const char *key) {
	const Json *v = member(event, key);
	return v && std::holds_alternative<std::string>(v->v) ? v->string() : std::string{};
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
