// A fiber: its own guarded stack (sim/stack_pool.hpp), switched to and from a scheduler context,
// or straight to another fiber (which then returns to that scheduler context in its place).
// Wraps boost.context and tells ASan and TSan about every stack switch.
#pragma once

#include <cstddef>
#include <functional>

#include <boost/context/fiber.hpp>

#include "host_thread.hpp"
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
	// Switched in at least once: its body has started (a direct switch_to() target must be).
	bool entered() const { return entered_; }

	// From a scheduler context: run the fiber until it, or a fiber it switched to directly,
	// calls switch_out() or abandon() or its body returns. Returns the fiber that came back.
	Fiber &switch_in();

	// From inside the running fiber: return to the scheduler context that switched it in.
	// When this returns, the fiber may be running on a different host thread.
	static void switch_out();

	// From inside the running fiber: switch straight to `next`, a switched-out fiber that was
	// entered before, without passing through the scheduler context; `next` takes over the
	// scheduler context to return to. `here` is this_host_thread(), looked up by the caller
	// since the fiber last resumed, so that a switch looks up its host thread once. When this
	// returns, the fiber was resumed by a scheduler or by another fiber's switch_to(), maybe on
	// a different host thread.
	static void switch_to(HostThread &here, Fiber &next);

	// Destroys an unfinished fiber: unwinds its stack (destructors run) on the calling thread.
	void unwind();

	// From inside the running fiber: returns to the scheduler context for good. switch_in()
	// returns as if the body had returned (finished() is true), and frees the stack without
	// unwinding it: the destructors of its frames never run.
	[[noreturn]] static void abandon();

private:
	// The next three are inline, on every switch: the library is built with -fPIC, where GCC
	// calls, rather than inlines, a function that another object could interpose.
	// The fiber's side of a switch that resumed it: `from` is what the switch returned, the
	// context of whoever resumed us. After a direct switch it is that fiber's (which is
	// stored back into it), and the scheduler context is taken over from it.
	inline void land(boost::context::fiber &&from);
	// The fiber's side of a switch that resumed it (ASan bookkeeping); `previous` is the fiber
	// that switched to us directly, nullptr if a scheduler context did.
	inline void after_switch_in(const Fiber *previous);
	// Aborts if the fiber overflowed its unguarded stack (only checked while the fiber lives).
	inline void check_canary() const;
	// ASan: once the fiber finished or was unwound, frees its fake stack (if it has one).
	void free_fake_stack();

	boost::context::fiber ctx_;
	// While the fiber runs: the scheduler context that switched it in, to return to. It
	// belongs to the fiber, not to the host thread: the fiber side then needs no thread_local
	// after a switch, which may have moved it to another host thread (see switch_out()).
	boost::context::fiber scheduler_;
	// Set by a fiber that switches to this one directly, until this one landed (land()).
	Fiber *switched_from_ = nullptr;
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
