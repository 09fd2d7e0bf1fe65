// Readiness on the server side: poll, epoll and eventfd.
#include <cerrno>

#include "server.hpp"

namespace helsim::posix::detail {

Async<std::int64_t> Server::readiness_request(std::shared_ptr<Process>, const protocol::Request &,
		const std::string &, protocol::Response &) {
	co_return -ENOSYS;
}

} // namespace helsim::posix::detail
