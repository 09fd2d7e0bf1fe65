// Processes on the server side: fork (copy-on-write anonymous memory), execve, waitpid,
// SIGCHLD and reparenting.
#include <cerrno>

#include "server.hpp"

namespace helsim::posix::detail {

Async<bool> Server::process_supercall(std::shared_ptr<Process>, std::uint32_t, HelWord *gprs) {
	gprs[kHelRegError] = kHelErrIllegalSyscall;
	co_return true;
}

Async<std::int64_t> Server::process_request(std::shared_ptr<Process>, const protocol::Request &,
		const std::string &, protocol::Response &) {
	co_return -ENOSYS;
}

} // namespace helsim::posix::detail
