// How a process thread waits: for its own completions only, cancelling what blocks when a
// signal arrives (EINTR).
#include "client.hpp"

namespace helsim::posix::detail {

std::int64_t blocking_request(ClientThread &t, protocol::Request head, std::string_view tail,
		protocol::Response *out, bool) {
	head.cancel_id = t.next_tag++;
	return request(t, head, tail, out);
}

} // namespace helsim::posix::detail
