// helAccessIo, helEnableIo, and helsim's port accessors helsimIoRead/helsimIoWrite.
#include "kernel/devices/io_space.hpp"

#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/devices/device_registry.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {

HelError access_io(Thread &self, std::vector<std::uint16_t> ports, HelWord *outs) {
	auto io = make_object<IoSpace>(self.kernel(), std::move(ports));
	return attach_new(self, std::move(io), kIoDefaultRights, outs);
}

// thor enables the ports in the calling thread's I/O permission bitmap.
void enable_io(Thread &self, const IoSpace &io) {
	if (!self.enabled_ports)
		self.enabled_ports = std::make_unique<std::bitset<65536>>();
	for (std::uint16_t port : io.ports())
		self.enabled_ports->set(port);
}

HelError check_port(Thread &self, std::uint64_t port, unsigned width) {
	if (width != 1 && width != 2 && width != 4)
		return kHelErrIllegalArgs;
	if (port > 0xffff || port + width > 0x10000)
		return kHelErrIllegalArgs;
	if (!self.enabled_ports)
		return kHelErrBadPermissions; // on x86: #GP
	for (unsigned i = 0; i < width; ++i)
		if (!self.enabled_ports->test(port + i))
			return kHelErrBadPermissions;
	return kHelErrNone;
}

namespace {
std::uint32_t width_mask(unsigned width) {
	return width == 4 ? ~std::uint32_t{0} : (std::uint32_t{1} << (8 * width)) - 1;
}
} // namespace

std::uint32_t io_read(Thread &self, std::uint16_t port, unsigned width) {
	// No device on the port: the bus floats high, as on a PC.
	if (auto device = self.kernel().devices().at_port(port))
		return device->io_read(port, width) & width_mask(width);
	return width_mask(width);
}

void io_write(Thread &self, std::uint16_t port, unsigned width, std::uint32_t value) {
	// No device on the port: the write goes nowhere.
	if (auto device = self.kernel().devices().at_port(port))
		device->io_write(port, width, value & width_mask(width));
}

} // namespace helsim::kernel
