// The trace checker: the rules of Perfetto's JSON importer that helsim's traces rely on
// (docs/tracing.md, "Checked against Perfetto's importer"), in one place. The tests check every
// recording with it, and the installed command `helsim-trace-check` checks users' files.
//
// It includes a strict JSON parser (RFC 8259, no extensions; stricter than any trace importer,
// so what it accepts every importer reads). No dependency on the simulator: the tool links
// only this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace helsim::trace_check {

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

// RFC 8259 without extensions: no trailing commas, comments, NaN, leading zeros or duplicate
// keys. Throws std::runtime_error with the offset of the first error.
class Parser {
public:
	explicit Parser(const std::string &text) : s_{text} {}
	Json document();

private:
	[[noreturn]] void fail(const char *what);
	void skip_ws();
	char peek();
	void expect(char c);
	void literal(const char *word);
	Json parse_value();
	Json parse_object();
	Json parse_array();
	std::string parse_string();
	Json parse_number();

	const std::string &s_;
	std::size_t i_ = 0;
};

// `object`'s member `key` (nullptr if absent or `object` is no object).
const Json *member(const Json &object, const char *key);
// `object`'s member `key` if it is a string, else "".
std::string text_of(const Json &object, const char *key);

// ------------------------------------------------------------------ the importer's rules

struct ImportCheck {
	// What the importer would drop, misplace or misread, one line each: "event <index>: <rule>"
	// for a rule one event breaks, the rule alone for the trace as a whole.
	std::vector<std::string> problems;
	std::size_t events = 0;        // entries of traceEvents
	std::size_t slices = 0;        // B/E pairs and instants on thread tracks
	std::size_t flows = 0;         // s -> f pairs bound to enclosing slices
	std::size_t unended_flows = 0; // "s" without an "f" (e.g. an operation never completed)
	std::size_t open_slices = 0;   // "B" without an "E" at the end of the trace
};

// Checks a whole trace document against the rules (each commented in trace_check.cpp with the
// Perfetto function it comes from). Unended slices and flows are counted, not problems.
ImportCheck check_perfetto_import(const std::string &json);

// The first `limit` problems, one a line.
std::string problems_of(const ImportCheck &check, std::size_t limit = 20);

// The command `helsim-trace-check <file.json>...`: per file, "<file>: ok: <N> events" on `out`,
// or one line "<file>: <problem>" per problem. Returns 0 if every file passes, 1 if one breaks
// a rule, 2 (usage on `err`) without files, for an option, or for a file it cannot read.
int run_tool(const std::vector<std::string> &arguments, std::ostream &out, std::ostream &err);

} // namespace helsim::trace_check
