// Helpers for the thread-control tests: a supervisor's observe, stopped children, waiting for
// one completion.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>

namespace helsim::test {

// Observes `thread` and waits for the result (a submission error fails the test).
inline HelObserveResult observe(helsim::Dispatcher &d, HelHandle thread) {
	auto element = sq_call(d, kHelSubmitObserve, HelSqObserve{thread});
	EXPECT_NE(element.context(), ~std::uintptr_t{0}) << "a submission error: " << element.error();
	return element.as<HelObserveResult>();
}

// A thread of the caller's universe and space, created with kHelThreadStopped: it calls
// entry(argument) once resumed.
inline HelHandle stopped_thread(void (*entry)(std::uintptr_t), std::uintptr_t argument = 0) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					  reinterpret_cast<void *>(entry), reinterpret_cast<void *>(argument),
					  kHelThreadStopped, &h),
			kHelErrNone);
	return h;
}

// A thread of the caller's universe and space that starts at once.
inline HelHandle running_thread(void (*entry)(std::uintptr_t), std::uintptr_t argument = 0) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					  reinterpret_cast<void *>(entry), reinterpret_cast<void *>(argument), 0, &h),
			kHelErrNone);
	return h;
}

// Waits for the next completion with `context` on `d`.
inline helsim::Element wait_for(helsim::Dispatcher &d, std::uintptr_t context) {
	for (;;) {
		auto element = d.wait();
		if (element && element->context() == context)
			return std::move(*element);
	}
}

} // namespace helsim::test
