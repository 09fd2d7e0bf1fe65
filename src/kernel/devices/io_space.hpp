// I/O spaces (helAccessIo): a set of x86 I/O ports, which helEnableIo enables for the calling
// thread. A host process cannot run in/out for a simulated machine, so a driver reaches the
// ports through helsimIoRead/helsimIoWrite, which check that the port is enabled for the
// thread and call the device that owns it (docs/reference/helAccessIo.md, helsim-io.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel/core/object.hpp"

namespace helsim::kernel {

class Thread;

inline constexpr std::uint32_t kIoDefaultRights = kHelRightRead | kHelRightWrite | kHelRightAssign;

class IoSpace final : public Object {
public:
	static constexpr ObjectKind kKind = ObjectKind::io_space;

	IoSpace(Kernel &kernel, std::vector<std::uint16_t> ports)
	: Object{kernel, ObjectKind::io_space}, ports_{std::move(ports)} {}
	const char *describe() const override { return "io space"; }

	const std::vector<std::uint16_t> &ports() const { return ports_; }

private:
	const std::vector<std::uint16_t> ports_;
};

// More ports than exist cannot be asked for sensibly; this bounds the kernel's copy.
inline constexpr std::size_t kMaxPorts = 0x10000;

// An I/O space of `ports`, attached with kIoDefaultRights (outs[0]).
HelError access_io(Thread &self, std::vector<std::uint16_t> ports, HelWord *outs);
// Enables the ports of `io` for the calling thread.
void enable_io(Thread &self, const IoSpace &io);

// A port access of `width` bytes at `port`: width 1, 2 or 4 and inside the 65536 ports
// (kHelErrIllegalArgs), every port it covers enabled for the calling thread
// (kHelErrBadPermissions, as x86 checks each byte's bit in the I/O permission bitmap).
HelError check_port(Thread &self, std::uint64_t port, unsigned width);
// Accesses that check_port allowed: the device that owns the port answers.
std::uint32_t io_read(Thread &self, std::uint16_t port, unsigned width);
void io_write(Thread &self, std::uint16_t port, unsigned width, std::uint32_t value);

} // namespace helsim::kernel
