// Signals on the server side: dispositions, masks, pending sets, delivery by interrupt, frame
// and upcall, the thread page's deferral protocol, and cancellation (EINTR).
#include <cerrno>

#include "server.hpp"

namespace helsim::posix::detail {

void Server::send_signal(Process &, int, int, pid_t, int) {}

Async<bool> Server::signal_supercall(std::shared_ptr<Process>, std::uint32_t, HelWord *gprs) {
	gprs[kHelRegError] = kHelErrIllegalSyscall;
	co_return true;
}

Async<std::int64_t> Server::signal_request(std::shared_ptr<Process>, const protocol::Request &,
		protocol::Response &) {
	co_return -ENOSYS;
}

} // namespace helsim::posix::detail
