// A token: an object that holds an unnamed 16-byte credential, for imbuing instead of the
// credentials of a thread.
#pragma once

#include <array>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

class Token final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::token;

	explicit Token(Kernel &kernel);
	const std::array<char, 16> &credentials() const { return credentials_; }

private:
	std::array<char, 16> credentials_{};
};

class Thread;

// Whether `handle` names the machine's hardware access token with Invoke: kHelErrNone, or
// kHelErrNoDescriptor, kHelErrBadDescriptor (not a token), kHelErrBadRights (no Invoke),
// kHelErrBadPermissions (some other token). Shared by helAccessPhysical, helAccessIo and
// helAccessIrq.
HelError check_hardware_token(Thread &self, HelHandle handle);

} // namespace helsim::kernel
