// Cancellation of requests that block, at the server that serves them (EINTR).
#include "server.hpp"

namespace helsim::posix::detail {

std::int64_t Server::cancel_request(Process &p, std::uint64_t cancel_id) {
	cancel_request(p.credentials, cancel_id);
	return 0;
}

// A read on a passthrough lane is registered under the credentials it came with: the reading
// process's, imbued by it or (file_table off) by the server forwarding for it. So one registry
// serves kSuperCancel, kCancel and kFileCancel alike.
void Server::cancel_request(const std::array<char, 16> &credentials, std::uint64_t cancel_id) {
	// Counted whether it overtook its request or not: both end it.
	AtomicCounters::bump(state_.counters.cancellations);
	cancels_.cancel({credentials, cancel_id});
}

} // namespace helsim::posix::detail
