// A fiber: its own guarded stack (sim/stack_pool.hpp), switched to and from a scheduler context.
// Wraps boost.context and tells ASan and TSan about every stack switch.
#pragma once

#include <cstddef>
#include <functional>

#include <boost/context/fiber.hpp>

#include "stack_pool.hpp"

namespace helsim::sim {

class Fiber {
public:
	Fiber() = default;
	Fiber(const Fiber &) = delete;
	Fiber &operator=(const Fiber &) = delete;
	~Fiber();

	// Prepares the fiber; body runs at the first switch_in(). Throws StackExhausted (a
	// std::bad_alloc) if the host has no memory or mappings left for the stack.
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

	// From inside the running fiber: returns to the scheduler context for good. switch_in()
	// returns as if the body had returned (finished() is true), and frees the stack without
	// unwinding it: the destructors of its frames never run.
	[[noreturn]] static void abandon();

private:
	// The fiber's side of a switch that resumed it (ASan bookkeeping).
	void after_switch_in();
	// ASan: once the fiber finished or was unwound, frees its fake stack (if it has one).
	void free_fake_stack();

	boost::context::fiber ctx_;
	// While the fiber runs: the scheduler context that switched it in, to return to. It
	// belongs to the fiber, not to the host thread: the fiber side then needs no thread_local
	// after a switch, which may have moved it to another host thread (see switch_out()).
	boost::context::fiber scheduler_;
	std::function<void()> body_;
	StackSlot stack_;
	// ASan: the stack of the scheduler that switched the fiber in (reported by
	// __sanitizer_finish_switch_fiber), and the fiber's fake stack while it is switched out.
	[[maybe_unused]] const void *scheduler_stack_bottom_ = nullptr;
	[[maybe_unused]] std::size_t scheduler_stack_size_ = 0;
	[[maybe_unused]] void *asan_fake_stack_ = nullptr;
	[[maybe_unused]] void *tsan_fiber_ = nullptr;
	bool running_ = false;
	bool abandoned_ = false; // abandon() switched out: the stack is to be freed as it is
	bool entered_ = false;   // switched in at least once: its body has started
	bool finished_ = false;
};

// For a catch (...) handler in code that runs on a fiber: true if the exception in flight is
// the one Fiber::unwind() uses to unwind the stack. It must be rethrown, never swallowed.
bool current_exception_unwinds_fiber();

} // namespace helsim::sim
