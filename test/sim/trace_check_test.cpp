// The command around the checker (sim/trace_check.cpp, run_tool; installed as
// helsim-trace-check): what it prints and its exit status, on a real recording and on files
// that break a rule or cannot be read. The rules themselves: trace_perfetto_test.cpp.
#include <sstream>

#include "trace_support.hpp"

namespace {

using namespace helsim::trace_test;

struct ToolRun {
	int status;
	std::string out, err;
};

ToolRun run(const std::vector<std::string> &arguments) {
	std::ostringstream out, err;
	int status = run_tool(arguments, out, err);
	return {status, out.str(), err.str()};
}

std::string write_temp(const std::string &name, const std::string &text) {
	std::string path = ::testing::TempDir() + name;
	std::FILE *file = std::fopen(path.c_str(), "wb");
	EXPECT_TRUE(file) << path;
	if (file) {
		std::fwrite(text.data(), 1, text.size(), file);
		std::fclose(file);
	}
	return path;
}

TEST(TraceCheckTool, AcceptsARecording) {
	std::string path = ::testing::TempDir() + "helsim_trace_check_recording.json";
	auto outcome = echo(traced(Mode::deterministic), path);
	Json doc = Parser{outcome.json}.document();
	std::size_t events = member(doc, "traceEvents")->array().size();
	ToolRun result = run({path});
	EXPECT_EQ(result.status, 0) << result.out << result.err;
	EXPECT_EQ(result.out, path + ": ok: " + std::to_string(events) + " events\n");
	EXPECT_EQ(result.err, "");
	std::remove(path.c_str());
}

TEST(TraceCheckTool, NamesEachProblemAndFails) {
	std::string good = write_temp("helsim_trace_check_good.json",
			R"j({"traceEvents":[{"ph":"M","pid":1,"name":"process_name","args":{"name":"p"}}]})j");
	// Event 2 is on tid 0 (read as the pid); event 3 goes back in time on track (1, 3).
	std::string bad = write_temp("helsim_trace_check_bad.json", R"j({"traceEvents":[
{"ph":"M","pid":1,"name":"process_name","args":{"name":"p"}},
{"ph":"M","pid":1,"tid":3,"name":"thread_name","args":{"name":"a"}},
{"ph":"i","pid":1,"tid":0,"ts":1,"name":"x","s":"t"},
{"ph":"i","pid":1,"tid":3,"ts":2,"name":"y","s":"t"},
{"ph":"i","pid":1,"tid":3,"ts":1,"name":"z","s":"t"}]})j");
	ToolRun result = run({good, bad});
	EXPECT_EQ(result.status, 1);
	EXPECT_NE(result.out.find(good + ": ok: 1 events\n"), std::string::npos) << result.out;
	EXPECT_NE(result.out.find(bad + ": event 2: tid 0 (or none) is read as the pid\n"),
			std::string::npos)
			<< result.out;
	EXPECT_NE(result.out.find(bad + ": event 4: ts does not increase on its track\n"),
			std::string::npos)
			<< result.out;
	std::string not_json = write_temp("helsim_trace_check_not_json.json", "{\"traceEvents\":[");
	result = run({not_json});
	EXPECT_EQ(result.status, 1);
	EXPECT_EQ(result.out.rfind(not_json + ": not JSON: unexpected end", 0), 0u) << result.out;
	for (const std::string &path : {good, bad, not_json})
		std::remove(path.c_str());
}

TEST(TraceCheckTool, BadArgumentsAndUnreadableFilesExitTwo) {
	ToolRun none = run({});
	EXPECT_EQ(none.status, 2);
	EXPECT_EQ(none.err.rfind("usage: helsim-trace-check", 0), 0u) << none.err;
	ToolRun missing = run({::testing::TempDir() + "helsim_no_such_trace.json"});
	EXPECT_EQ(missing.status, 2);
	EXPECT_NE(missing.err.find("cannot read the file"), std::string::npos) << missing.err;
	ToolRun directory = run({::testing::TempDir()});
	EXPECT_EQ(directory.status, 2) << directory.out;
	ToolRun option = run({"--verbose"});
	EXPECT_EQ(option.status, 2);
	EXPECT_NE(option.err.find("unknown option --verbose"), std::string::npos) << option.err;
	ToolRun help = run({"--help"});
	EXPECT_EQ(help.status, 0);
	EXPECT_EQ(help.out.rfind("usage: helsim-trace-check", 0), 0u) << help.out;
}

} // namespace
