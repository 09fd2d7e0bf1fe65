#include "trace_capture.hpp"

#include <stdexcept>

#include <fmt/core.h>

namespace helsim {

namespace {
std::mutex current_lock;
std::shared_ptr<TraceCapture::State> current_state;
} // namespace

std::shared_ptr<TraceCapture::State> TraceCapture::State::current() {
	std::lock_guard guard{current_lock};
	return current_state;
}

std::string TraceCapture::State::next_path() {
	std::lock_guard guard{lock};
	++machines;
	return machines == 1 ? prefix + ".json" : fmt::format("{}-{}.json", prefix, machines);
}

void TraceCapture::State::written(const std::string &path, const std::string &error) {
	std::lock_guard guard{lock};
	if (error.empty())
		files.push_back(path);
	else
		errors.push_back(error);
}

TraceCapture::TraceCapture(std::string prefix) : state_{std::make_shared<State>()} {
	state_->prefix = std::move(prefix);
	std::lock_guard guard{current_lock};
	if (current_state)
		throw std::logic_error(fmt::format(
				"helsim: TraceCapture(\"{}\"): the capture \"{}\" is still alive; one at a time",
				state_->prefix, current_state->prefix));
	current_state = state_;
}

TraceCapture::~TraceCapture() {
	std::lock_guard guard{current_lock};
	if (current_state == state_)
		current_state.reset();
}

std::vector<std::string> TraceCapture::files() const {
	std::lock_guard guard{state_->lock};
	return state_->files;
}

std::vector<std::string> TraceCapture::errors() const {
	std::lock_guard guard{state_->lock};
	return state_->errors;
}

std::size_t TraceCapture::machines() const {
	std::lock_guard guard{state_->lock};
	return state_->machines;
}

} // namespace helsim
