// helsim-trace-check: checks trace files against Perfetto's JSON importer rules
// (sim/trace_check.hpp, docs/tracing.md).
#include <iostream>
#include <string>
#include <vector>

#include "../../sim/trace_check.hpp"

int main(int argc, char **argv) {
	std::vector<std::string> arguments{argv + 1, argv + argc};
	return helsim::trace_check::run_tool(arguments, std::cout, std::cerr);
}
