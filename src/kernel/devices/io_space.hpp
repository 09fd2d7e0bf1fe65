// I/O spaces (helAccessIo): a set of x86 I/O ports, which helEnableIo enables for the calling
// thread. A host process cannot run in/out for a simulated machine, so a driver reaches the
// ports through helsimIoRead/helsimIoWrite, which check that the port is enabled for the
// thread and call the device that owns it (docs/reference/helAccessIo.md, helsim-io.md).
#pragma once

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

HelError sys_access_io(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_enable_io(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_io_read(Thread &self, const HelWord *args, HelWord *outs);
HelError sys_io_write(Thread &self, const HelWord *args, HelWord *outs);

} // namespace helsim::kernel
