#include "token.hpp"

#include "kernel.hpp"

namespace helsim::kernel {

Token::Token(Kernel &kernel) : Object{kernel, ObjectKind::token} {
	kernel.random_bytes(credentials_.data(), credentials_.size());
}

} // namespace helsim::kernel
