#include "bounce_copy.hpp"

#include <algorithm>
#include <cstring>

#include "space.hpp"
#include "usercopy.hpp"

namespace helsim::kernel {
namespace {

HelError access(CopyEndpoint &end, std::size_t offset, std::byte *buffer, std::size_t size,
		bool to_end, std::size_t &step, TouchWaiter &waiter) {
	if (end.kernel) {
		if (to_end)
			std::memcpy(end.kernel + offset, buffer, size);
		else
			std::memcpy(buffer, end.kernel + offset, size);
		step = size;
		return kHelErrNone;
	}
	if (end.space)
		return copy_user(*end.space, end.address + offset, buffer, size, to_end, step, &waiter);
	return copy_view(*end.view, end.address + offset, buffer, size, to_end, step, waiter);
}

} // namespace

void BounceCopy::touched(HelError error) {
	if (error != kHelErrNone)
		done(error, !have_chunk_);
	else
		run();
}

void BounceCopy::run() {
	while (copied_ < length_) {
		std::size_t chunk = std::min(length_ - copied_, sizeof(bounce_));
		bool reading = !have_chunk_;
		CopyEndpoint &end = reading ? source_ : target_;
		HelError e = access(end, copied_, bounce_, chunk, !reading, step_, *this);
		if (e == kTouchPending)
			return; // touched() resumes
		step_ = 0;
		if (e != kHelErrNone)
			return done(e, reading);
		if (reading) {
			have_chunk_ = true;
		} else {
			have_chunk_ = false;
			copied_ += chunk;
		}
	}
	done(kHelErrNone, false);
}

} // namespace helsim::kernel
