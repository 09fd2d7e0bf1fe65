#include "kernel/core/token.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

Token::Token(Kernel &kernel) : Object{kernel, ObjectKind::token} {
	kernel.random_bytes(credentials_.data(), credentials_.size());
}

HelError check_hardware_token(Thread &self, HelHandle handle) {
	auto token = self.universe().resolve<Token>(handle, kHelRightInvoke);
	if (!token)
		return token.error;
	if (!self.kernel().is_hardware_token(token.object.get()))
		return kHelErrBadPermissions; // a token, but not the one that opens hardware
	return kHelErrNone;
}

} // namespace helsim::kernel
