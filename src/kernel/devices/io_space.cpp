// helAccessIo, helEnableIo, and helsim's port accessors helsimIoRead/helsimIoWrite.
#include "kernel/devices/io_space.hpp"

#include "kernel/devices/device_registry.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/syscall_args.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/memory/usercopy.hpp"

namespace helsim::kernel {

namespace {
// More ports than exist cannot be asked for sensibly; this bounds the kernel's copy.
constexpr std::size_t kMaxPorts = 0x10000;
} // namespace

HelError sys_access_io(Thread &self, const HelWord *args, HelWord *outs) {
	if (HelError e = check_hardware_token(self, arg<HelHandle>(args, 0)); e != kHelErrNone)
		return e;
	auto *user_ports = arg<const std::uintptr_t *>(args, 1);
	auto count = arg<std::size_t>(args, 2);
	if (count > kMaxPorts)
		return kHelErrIllegalArgs;
	std::vector<std::uintptr_t> words(count);
	if (count)
		if (HelError e = copy_from_user(self, words.data(), user_ports,
					count * sizeof(std::uintptr_t));
				e != kHelErrNone)
			return e;
	std::vector<std::uint16_t> ports;
	ports.reserve(count);
	for (std::uintptr_t port : words) {
		if (port > 0xffff)
			return kHelErrIllegalArgs; // x86 has 65536 ports
		ports.push_back(static_cast<std::uint16_t>(port));
	}
	auto io = make_object<IoSpace>(self.kernel(), std::move(ports));
	return attach_new(self, std::move(io), kIoDefaultRights, outs);
}

HelError sys_enable_io(Thread &self, const HelWord *args, HelWord *) {
	// thor enables the ports in the calling thread's I/O permission bitmap; the right it
	// needs is not documented, so any IoSpace handle does (docs/reference/helAccessIo.md).
	auto io = self.universe().resolve<IoSpace>(arg<HelHandle>(args, 0), 0);
	if (!io)
		return io.error;
	if (!self.enabled_ports)
		self.enabled_ports = std::make_unique<std::bitset<65536>>();
	for (std::uint16_t port : io.object->ports())
		self.enabled_ports->set(port);
	return kHelErrNone;
}

namespace {
// A port access of `width` bytes at `port`: every port it covers must be enabled for the
// calling thread (x86 checks each byte's bit in the I/O permission bitmap).
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
} // namespace

HelError sys_io_read(Thread &self, const HelWord *args, HelWord *outs) {
	auto port = arg<std::uint64_t>(args, 0);
	auto width = arg<unsigned>(args, 1);
	if (HelError e = check_port(self, port, width); e != kHelErrNone)
		return e;
	std::uint32_t mask = width == 4 ? ~std::uint32_t{0} : (std::uint32_t{1} << (8 * width)) - 1;
	// No device on the port: the bus floats high, as on a PC.
	std::uint32_t value = mask;
	if (auto device = self.kernel().devices().at_port(static_cast<std::uint16_t>(port)))
		value = device->io_read(static_cast<std::uint16_t>(port), width) & mask;
	outs[0] = value;
	return kHelErrNone;
}

HelError sys_io_write(Thread &self, const HelWord *args, HelWord *) {
	auto port = arg<std::uint64_t>(args, 0);
	auto width = arg<unsigned>(args, 1);
	if (HelError e = check_port(self, port, width); e != kHelErrNone)
		return e;
	std::uint32_t mask = width == 4 ? ~std::uint32_t{0} : (std::uint32_t{1} << (8 * width)) - 1;
	auto value = static_cast<std::uint32_t>(arg<std::uint64_t>(args, 2)) & mask;
	// No device on the port: the write goes nowhere.
	if (auto device = self.kernel().devices().at_port(static_cast<std::uint16_t>(port)))
		device->io_write(static_cast<std::uint16_t>(port), width, value);
	return kHelErrNone;
}

} // namespace helsim::kernel
