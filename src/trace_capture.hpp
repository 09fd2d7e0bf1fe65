// The shared state behind helsim::TraceCapture (include/helsim/machine.hpp): what a Machine
// asks for when it is constructed and reports to when it has written its trace.
#pragma once

#include <helsim/machine.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace helsim {

struct TraceCapture::State {
	std::string prefix;
	mutable std::mutex lock;
	std::size_t machines = 0;
	std::vector<std::string> files;
	std::vector<std::string> errors;

	// The capture alive now, or nullptr; a Machine keeps it for its destructor (the capture
	// itself may be gone by then).
	static std::shared_ptr<State> current();
	// The path for the next machine's trace.
	std::string next_path();
	void written(const std::string &path, const std::string &error);
};

} // namespace helsim
