// Cancellation of requests that block, at the server that serves them (EINTR).
#include "server.hpp"

namespace helsim::posix::detail {

std::int64_t Server::cancel_request(Process &p, std::uint64_t cancel_id) {
	if (cancels_.cancel({p.credentials, cancel_id}))
		AtomicCounters::bump(state_.counters.cancellations);
	return 0;
}

} // namespace helsim::posix::detail
