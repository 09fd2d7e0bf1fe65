// A fiber: its own guard-paged stack, switched to and from a scheduler context.
// Wraps boost.context and tells ASan and TSan about every stack switch.
#pragma once

#include <cstddef>
#include <functional>

#include <boost/context/fiber.hpp>

namespace helsim::sim {

class Fiber {
public:
	Fiber() = default;
	Fiber(const Fiber &) = delete;
	Fiber &operator=(const Fiber &) = delete;
	~Fiber();

	// Prepares the fiber; body runs at the first switch_in().
	void create(std::size_t stack_size, std::function<void()> body);
	bool created() const { return static_cast<bool>(ctx_) || running_; }
	bool finished() const { return finished_; }

	// From a scheduler context: run the fiber until it calls switch_out() or its body returns.
	void switch_in();

	// From inside the running fiber: return to the scheduler context that switched it in.
	// When this returns, the fiber may be running on a different host thread.
	static void switch_out();

	// Destroys an unfinished fiber: unwinds its stack (destructors run) on the calling thread.
	void unwind();

private:
	boost::context::fiber ctx_;
	std::function<void()> body_;
	void *stack_bottom_ = nullptr;
	std::size_t stack_size_ = 0;
	void *tsan_fiber_ = nullptr;
	bool running_ = false;
	bool entered_ = false; // switched in at least once: its body has started
	bool finished_ = false;
};

// For a catch (...) handler in code that runs on a fiber: true if the exception in flight is
// the one Fiber::unwind() uses to unwind the stack. It must be rethrown, never swallowed.
bool current_exception_unwinds_fiber();

} // namespace helsim::sim
