// I/O spaces (src/kernel/devices/io_space.cpp): helAccessIo, helEnableIo, and helsim's port
// accessors helsimIoRead / helsimIoWrite, with and without a device on the port.
#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "../../support.hpp"
#include <helsim/device.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

helsim::MachineConfig config() {
	helsim::MachineConfig c;
	c.physical_memory = std::size_t{4} << 20;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

// A device that answers port reads with port + width and records every write.
class PortDevice : public helsim::Device {
public:
	std::uint32_t io_read(std::uint16_t port, unsigned width) override {
		return 0xab000000u + port * 16 + width;
	}
	void io_write(std::uint16_t port, unsigned width, std::uint32_t value) override {
		std::lock_guard lock{mutex};
		writes.push_back({port, width, value});
	}
	struct Write {
		std::uint16_t port;
		unsigned width;
		std::uint32_t value;
		bool operator==(const Write &) const = default;
	};
	std::mutex mutex;
	std::vector<Write> writes;
};

void with_token(helsim::Machine &machine, const std::function<void(HelHandle)> &body) {
	HelHandle token = machine.hardware_access_token();
	machine.spawn("driver", [&](std::span<const HelHandle> handles) { body(handles[0]); }, {token});
	expect_clean(machine.run());
}

HelHandle access_io(HelHandle token, std::initializer_list<std::uintptr_t> ports) {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helAccessIo(token, ports.begin(), ports.size(), &h), kHelErrNone);
	return h;
}

TEST(Io, AccessIoNeedsTheTokenAndRealPorts) {
	helsim::Machine machine{config()};
	with_token(machine, [](HelHandle token) {
		std::uintptr_t ports[] = {0x60, 0x64};
		HelHandle h = kHelNullHandle;
		HelHandle other = make_token();
		EXPECT_EQ(helAccessIo(other, ports, 2, &h), kHelErrBadRights);
		HelHandle queue = make_queue();
		EXPECT_EQ(helAccessIo(queue, ports, 2, &h), kHelErrBadDescriptor);
		std::uintptr_t too_high[] = {0x10000};
		EXPECT_EQ(helAccessIo(token, too_high, 1, &h), kHelErrIllegalArgs);
		EXPECT_EQ(helAccessIo(token, reinterpret_cast<const std::uintptr_t *>(16), 2, &h),
				kHelErrFault);
		ASSERT_EQ(helAccessIo(token, ports, 2, &h), kHelErrNone);
		HelDescriptorInfo info{-1};
		ASSERT_EQ(helDescriptorInfo(h, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescIo);
		EXPECT_EQ(info_of(h).rights,
				std::uint32_t{kHelRightRead | kHelRightWrite | kHelRightAssign});
		HelHandle empty = kHelNullHandle;
		EXPECT_EQ(helAccessIo(token, nullptr, 0, &empty), kHelErrNone) << "no ports is a set";
		EXPECT_EQ(helEnableIo(queue), kHelErrBadDescriptor);
		EXPECT_EQ(helEnableIo(4242), kHelErrNoDescriptor);
		for (HelHandle x : {h, empty, other, queue})
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, x), kHelErrNone);
	});
}

TEST(Io, PortsWorkOnlyOnceEnabledForTheCallingThread) {
	helsim::Machine machine{config()};
	auto device = std::make_shared<PortDevice>();
	helsim::plug(machine, device, {.name = "ports", .io_base = 0x3f8, .io_count = 8});
	with_token(machine, [&](HelHandle token) {
		std::uint32_t value = 0;
		EXPECT_EQ(helsimIoRead(0x3f8, 1, &value), kHelErrBadPermissions) << "not enabled";
		HelHandle io = access_io(token, {0x3f8, 0x3f9, 0x3fa, 0x3fb});
		EXPECT_EQ(helsimIoRead(0x3f8, 1, &value), kHelErrBadPermissions) << "not enabled yet";
		// Another thread's helEnableIo enables nothing here.
		int done = 0;
		HelHandle helper = start_thread([&] {
			EXPECT_EQ(helEnableIo(io), kHelErrNone);
			std::uint32_t v = 0;
			EXPECT_EQ(helsimIoRead(0x3f9, 1, &v), kHelErrNone);
			set_and_wake(&done, 1);
		});
		ASSERT_TRUE(wait_for(&done, 1));
		EXPECT_EQ(helsimIoRead(0x3f8, 1, &value), kHelErrBadPermissions);

		ASSERT_EQ(helEnableIo(io), kHelErrNone);
		ASSERT_EQ(helsimIoRead(0x3f8, 1, &value), kHelErrNone);
		EXPECT_EQ(value, (0xab000000u + 0x3f8 * 16 + 1) & 0xff) << "masked to the width";
		ASSERT_EQ(helsimIoRead(0x3fa, 2, &value), kHelErrNone);
		EXPECT_EQ(value, (0xab000000u + 0x3fa * 16 + 2) & 0xffff);
		ASSERT_EQ(helsimIoRead(0x3f8, 4, &value), kHelErrNone);
		EXPECT_EQ(value, 0xab000000u + 0x3f8 * 16 + 4);
		EXPECT_EQ(helsimIoRead(0x3fa, 4, &value), kHelErrBadPermissions) << "0x3fc not enabled";
		EXPECT_EQ(helsimIoRead(0x3fc, 1, &value), kHelErrBadPermissions);
		EXPECT_EQ(helsimIoRead(0x3f8, 3, &value), kHelErrIllegalArgs);
		EXPECT_EQ(helsimIoRead(0x3f8, 8, &value), kHelErrIllegalArgs);
		EXPECT_EQ(helsimIoWrite(0x3f8, 0, 1), kHelErrIllegalArgs);
		EXPECT_EQ(helsimIoWrite(0x3f9, 1, 0x1234), kHelErrNone);
		EXPECT_EQ(helsimIoWrite(0x3f8, 4, 0xdeadbeef), kHelErrNone);
		EXPECT_EQ(helsimIoWrite(0x3fb, 2, 1), kHelErrBadPermissions);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, helper), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, io), kHelErrNone);
		// Closing the IoSpace leaves the thread's ports enabled, as thor's bitmap does.
		EXPECT_EQ(helsimIoRead(0x3f8, 1, &value), kHelErrNone);
	});
	std::lock_guard lock{device->mutex};
	EXPECT_EQ(device->writes,
			(std::vector<PortDevice::Write>{{0x3f9, 1, 0x34}, {0x3f8, 4, 0xdeadbeef}}));
}

TEST(Io, APortWithoutADeviceFloatsHighAndSwallowsWrites) {
	helsim::Machine machine{config()};
	with_token(machine, [](HelHandle token) {
		HelHandle io = access_io(token, {0x80, 0x81, 0x82, 0x83});
		ASSERT_EQ(helEnableIo(io), kHelErrNone);
		std::uint32_t value = 0;
		ASSERT_EQ(helsimIoRead(0x80, 1, &value), kHelErrNone);
		EXPECT_EQ(value, 0xffu);
		ASSERT_EQ(helsimIoRead(0x80, 2, &value), kHelErrNone);
		EXPECT_EQ(value, 0xffffu);
		ASSERT_EQ(helsimIoRead(0x80, 4, &value), kHelErrNone);
		EXPECT_EQ(value, 0xffffffffu);
		EXPECT_EQ(helsimIoWrite(0x80, 1, 0x12), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, io), kHelErrNone);
	});
}

TEST(Io, TheDefaultHooksFloatHighToo) {
	helsim::Machine machine{config()};
	helsim::plug(machine, std::make_shared<helsim::Device>(),
			{.name = "plain", .io_base = 0x100, .io_count = 2});
	with_token(machine, [](HelHandle token) {
		HelHandle io = access_io(token, {0x100, 0x101});
		ASSERT_EQ(helEnableIo(io), kHelErrNone);
		std::uint32_t value = 0;
		ASSERT_EQ(helsimIoRead(0x100, 2, &value), kHelErrNone);
		EXPECT_EQ(value, 0xffffu);
		EXPECT_EQ(helsimIoWrite(0x101, 1, 7), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, io), kHelErrNone);
	});
}

} // namespace
