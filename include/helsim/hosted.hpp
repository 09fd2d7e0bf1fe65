// helsim::hosted: a Managarm-style program (its own main(), std::threads, one queue per thread
// in a thread_local) runs on a simulated machine by linking the CMake target helsim::hosted;
// it needs no helsim header at all (docs/hosting.md). This header is for a program that wants
// to adjust the machine from its code. It does not include hel.h, so it may share a
// translation unit with Managarm's own <hel.h>; <helsim/machine.hpp> does include helsim's.
#pragma once

#include <cstdint>
#include <string>

namespace helsim {

class Machine;

namespace hosted {

// The machine helsim::hosted boots before main(). The environment overrides these fields
// (docs/reference/hosted.md lists the variables).
struct Config {
	unsigned cpus = 2;          // HELSIM_CPUS
	bool deterministic = false; // HELSIM_MODE=deterministic[:<seed>]
	std::uint64_t seed = 0;     // HELSIM_MODE=deterministic:<seed>
	std::string trace_file;     // HELSIM_TRACE=<file>: record a trace, write it there at exit
	bool report = false;        // HELSIM_REPORT=1: print the run report on stderr at exit
};

// Optional hook: a program that defines this function (in namespace helsim::hosted) may
// change the defaults before the environment is applied. It runs before main(), before the
// program's own static constructors.
void configure(Config &config);

// The machine the program runs on: nullptr before it boots and after the exit teardown. Use it
// through <helsim/machine.hpp>, from a translation unit that does not include Managarm's hel.h.
Machine *machine();

} // namespace hosted
} // namespace helsim
