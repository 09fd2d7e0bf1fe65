// Device files served outside the POSIX server, with their status pages.
#include <stdexcept>

#include <helsim/posix.hpp>

#include "state.hpp"

namespace helsim::posix {

void System::add_device(std::string path, std::shared_ptr<Device>) {
	throw std::logic_error("helsim::posix::System::add_device: not built yet: " + path);
}

} // namespace helsim::posix
