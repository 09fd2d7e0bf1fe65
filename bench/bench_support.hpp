// What several benchmark files share: turning a failed hel call into an exception, pinning the
// calling simulated thread, and awaiting an event or IRQ object past a sequence.
#pragma once

#include <cstdint>
#include <stdexcept>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>

namespace helsim::bench {

inline void check(HelError e, const char *what) {
	if (e != kHelErrNone)
		throw helsim::HelException{what, e};
}

// Pins the calling simulated thread to simulated CPU `cpu`.
inline void pin(int cpu) {
	std::uint8_t mask = static_cast<std::uint8_t>(1u << cpu);
	check(helSetAffinity(kHelThisThread, &mask, 1), "helSetAffinity");
}

// Awaits `object` (an event or IRQ object) past `sequence`; returns the new sequence.
inline std::uint64_t await(helsim::Dispatcher &d, HelHandle object, std::uint64_t sequence) {
	d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{object, sequence, 0});
	d.flush();
	auto element = d.wait();
	if (!element)
		throw std::runtime_error("missing completion");
	auto result = element->as<HelEventResult>();
	check(result.error, "await");
	return result.sequence;
}

} // namespace helsim::bench
