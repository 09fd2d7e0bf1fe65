// A token: an object that holds an unnamed 16-byte credential, for imbuing instead of the
// credentials of a thread.
#pragma once

#include <array>

#include "object.hpp"

namespace helsim::kernel {

class Token final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::token;

	explicit Token(Kernel &kernel);
	const std::array<char, 16> &credentials() const { return credentials_; }

private:
	std::array<char, 16> credentials_{};
};

} // namespace helsim::kernel
