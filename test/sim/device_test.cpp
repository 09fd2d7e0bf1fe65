// Simulated devices (include/helsim/device.hpp, src/device.cpp, src/kernel/device_registry.*):
// plug() placement and its errors, MMIO hooks through helsimMmioRead/Write, the window's
// memory as register file, DMA to addresses a driver got from helPointerPhysical on a DMA
// space, after() in virtual time, and teardown.
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "../support.hpp"
#include <helsim/device.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;
constexpr std::uint32_t kRW = kHelMapProtRead | kHelMapProtWrite;

helsim::MachineConfig config(std::size_t memory = std::size_t{8} << 20) {
	helsim::MachineConfig c;
	c.physical_memory = memory;
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

// A device whose protected services the tests may call, and which records its MMIO hooks.
class TestDevice : public helsim::Device {
public:
	using Device::after;
	using Device::dma_read;
	using Device::dma_write;
	using Device::now;
	using Device::registers;

	struct Access {
		bool write;
		std::uint64_t offset;
		unsigned width;
		std::uint64_t value;
		bool operator==(const Access &) const = default;
	};
	std::uint64_t mmio_read(std::uint64_t offset, unsigned width) override {
		std::uint64_t value = Device::mmio_read(offset, width);
		record({false, offset, width, value});
		return value;
	}
	void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) override {
		record({true, offset, width, value});
		Device::mmio_write(offset, width, value);
	}
	std::vector<Access> accesses() {
		std::lock_guard lock{mutex_};
		return accesses_;
	}

private:
	void record(Access a) {
		std::lock_guard lock{mutex_};
		accesses_.push_back(a);
	}
	std::mutex mutex_;
	std::vector<Access> accesses_;
};

// Runs `body(token)` on a driver thread holding the hardware access token.
helsim::RunReport drive(helsim::Machine &machine, const std::function<void(HelHandle)> &body) {
	HelHandle token = machine.hardware_access_token();
	machine.spawn("driver", [&](std::span<const HelHandle> handles) { body(handles[0]); }, {token});
	return machine.run();
}

// Maps a device's MMIO window into the caller's space.
char *map_window(HelHandle token, const helsim::DeviceAddress &where, std::uint32_t prot = kRW,
		HelHandle *view_out = nullptr) {
	HelHandle view = kHelNullHandle;
	EXPECT_EQ(helAccessPhysical(token, where.mmio_physical, where.mmio_size, kHelCachingMmio,
					  &view),
			kHelErrNone);
	void *window = nullptr;
	EXPECT_EQ(helMapMemory(view, kHelNullHandle, nullptr, 0, where.mmio_size, prot, &window),
			kHelErrNone);
	if (view_out)
		*view_out = view;
	else
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, view), kHelErrNone);
	return static_cast<char *>(window);
}

TEST(Device, PlugPlacesWindowsPortsAndGsis) {
	helsim::Machine machine{config()};
	auto a = std::make_shared<TestDevice>();
	auto b = std::make_shared<TestDevice>();
	auto at = helsim::plug(machine, a,
			{.name = "a", .mmio_size = 100, .io_base = 0x60, .io_count = 5, .irq_lines = 2});
	auto bt = helsim::plug(machine, b, {.name = "b", .mmio_size = 3 * kPage, .irq_lines = 1});
	EXPECT_EQ(at.mmio_size, kPage) << "whole pages";
	EXPECT_EQ(at.mmio_physical % kPage, 0u);
	EXPECT_EQ(at.mmio_physical + kPage, std::uint64_t{8} << 20) << "at the top of memory";
	EXPECT_EQ(bt.mmio_physical + 3 * kPage, at.mmio_physical);
	EXPECT_EQ(at.io_base, 0x60);
	EXPECT_EQ(at.io_count, 5);
	EXPECT_EQ(at.gsis, (std::vector<unsigned>{16, 17}));
	EXPECT_EQ(bt.gsis, (std::vector<unsigned>{18}));
	EXPECT_EQ(a->address().mmio_physical, at.mmio_physical);
	EXPECT_NE(a->registers(), nullptr);
	auto none = std::make_shared<TestDevice>();
	auto nt = helsim::plug(machine, none, {.name = "nothing"});
	EXPECT_EQ(nt.mmio_size, 0u);
	EXPECT_EQ(none->registers(), nullptr);
	EXPECT_TRUE(nt.gsis.empty());
}

TEST(Device, PlugRefusesWhatTheMachineCannotGive) {
	helsim::Machine machine{config(std::size_t{1} << 20)};
	auto a = std::make_shared<TestDevice>();
	helsim::plug(machine, a, {.name = "a", .io_base = 0x60, .io_count = 5});
	EXPECT_THROW(helsim::plug(machine, a, {.name = "again"}), std::invalid_argument);
	EXPECT_THROW(helsim::plug(machine, nullptr, {}), std::invalid_argument);
	auto b = std::make_shared<TestDevice>();
	EXPECT_THROW(helsim::plug(machine, b, {.name = "b", .io_base = 0x64, .io_count = 1}),
			std::invalid_argument)
			<< "overlapping ports";
	EXPECT_THROW(helsim::plug(machine, b, {.name = "b", .io_base = 0xfffe, .io_count = 4}),
			std::invalid_argument);
	EXPECT_THROW(helsim::plug(machine, b, {.name = "b", .irq_lines = 1000}), std::invalid_argument);
	EXPECT_THROW(helsim::plug(machine, b, {.name = "b", .mmio_size = std::size_t{2} << 20}),
			std::runtime_error);
	EXPECT_EQ(b->address().mmio_size, 0u) << "a failed plug leaves the device unplugged";
	helsim::plug(machine, b, {.name = "b", .io_base = 0x65, .io_count = 1});
}

TEST(Device, AllocationNeverHandsOutAWindowsFrames) {
	helsim::Machine machine{config(std::size_t{1} << 20)};
	auto where = helsim::plug(machine, std::make_shared<TestDevice>(),
			{.name = "big", .mmio_size = 256 << 10});
	// Half of what is left after the window (a run out of memory is another test's business).
	constexpr std::size_t kSize = std::size_t{384} << 10;
	auto report = drive(machine, [&](HelHandle) {
		HelHandle memory = kHelNullHandle;
		ASSERT_EQ(helAllocateMemory(kSize, 0, nullptr, &memory), kHelErrNone);
		void *p = nullptr;
		ASSERT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, kSize, kRW, &p), kHelErrNone);
		for (std::size_t at = 0; at < kSize; at += kPage) {
			std::uintptr_t physical = 0;
			ASSERT_EQ(helPointerPhysical(kHelNullHandle, static_cast<char *>(p) + at, &physical),
					kHelErrNone);
			EXPECT_FALSE(physical >= where.mmio_physical &&
					physical < where.mmio_physical + where.mmio_size)
					<< std::hex << physical;
		}
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, p, kSize), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
	});
	expect_clean(report);
}

TEST(Device, MmioAccessorsCallTheHooksWithOffsetsWidthsAndValues) {
	helsim::Machine machine{config()};
	auto device = std::make_shared<TestDevice>();
	auto where = helsim::plug(machine, device, {.name = "regs", .mmio_size = 2 * kPage});
	auto report = drive(machine, [&](HelHandle token) {
		char *w = map_window(token, where);
		EXPECT_EQ(helsimMmioWrite(w + 0x10, 4, 0x1122334455667788ull), kHelErrNone);
		EXPECT_EQ(helsimMmioWrite(w + kPage + 8, 8, 0x0102030405060708ull), kHelErrNone);
		EXPECT_EQ(helsimMmioWrite(w + 3, 1, 0xabc), kHelErrNone);
		std::uint64_t value = 0;
		EXPECT_EQ(helsimMmioRead(w + 0x10, 2, &value), kHelErrNone);
		EXPECT_EQ(value, 0x7788u);
		EXPECT_EQ(helsimMmioRead(w + kPage + 8, 8, &value), kHelErrNone);
		EXPECT_EQ(value, 0x0102030405060708ull);
		// Errors reach no hook.
		EXPECT_EQ(helsimMmioRead(w + 2, 4, &value), kHelErrIllegalArgs) << "misaligned";
		EXPECT_EQ(helsimMmioRead(w, 3, &value), kHelErrIllegalArgs) << "width 3";
		EXPECT_EQ(helsimMmioWrite(w, 16, 0), kHelErrIllegalArgs) << "width 16";
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, w, 2 * kPage), kHelErrNone);
		EXPECT_EQ(helsimMmioRead(w, 4, &value), kHelErrFault) << "unmapped";
		char *ro = map_window(token, where, kHelMapProtRead);
		EXPECT_EQ(helsimMmioWrite(ro, 4, 1), kHelErrFault) << "read-only mapping";
		EXPECT_EQ(helsimMmioRead(ro + 0x10, 1, &value), kHelErrNone);
		EXPECT_EQ(value, 0x88u);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, ro, 2 * kPage), kHelErrNone);
	});
	expect_clean(report);
	using A = TestDevice::Access;
	EXPECT_EQ(device->accesses(),
			(std::vector<A>{{true, 0x10, 4, 0x55667788u},
					{true, kPage + 8, 8, 0x0102030405060708ull}, {true, 3, 1, 0xbc},
					{false, 0x10, 2, 0x7788}, {false, kPage + 8, 8, 0x0102030405060708ull},
					{false, 0x10, 1, 0x88}}));
}

TEST(Device, PlainStoresAreTheDefaultRegisterFile) {
	helsim::Machine machine{config()};
	auto device = std::make_shared<TestDevice>();
	auto where = helsim::plug(machine, device, {.name = "plain", .mmio_size = kPage});
	std::uint32_t seen = 0;
	auto report = drive(machine, [&](HelHandle token) {
		char *w = map_window(token, where);
		*reinterpret_cast<volatile std::uint32_t *>(w + 64) = 0xcafef00d;
		std::uint64_t value = 0;
		EXPECT_EQ(helsimMmioRead(w + 64, 4, &value), kHelErrNone);
		EXPECT_EQ(value, 0xcafef00du);
		EXPECT_EQ(helsimMmioWrite(w + 128, 2, 0xbeef), kHelErrNone);
		EXPECT_EQ(*reinterpret_cast<volatile std::uint16_t *>(w + 128), 0xbeef);
		// Outside device windows the accessors are plain, checked memory accesses.
		auto *ram = static_cast<std::uint64_t *>(map_new_memory(kPage));
		ram[3] = 0x1234567890ull;
		EXPECT_EQ(helsimMmioRead(ram + 3, 8, &value), kHelErrNone);
		EXPECT_EQ(value, 0x1234567890ull);
		EXPECT_EQ(helsimMmioWrite(ram + 4, 4, 0xffffffff00000042ull), kHelErrNone);
		EXPECT_EQ(ram[4], 0x42u);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, ram, kPage), kHelErrNone);
		EXPECT_EQ(helUnmapMemory(kHelNullHandle, w, kPage), kHelErrNone);
	});
	expect_clean(report);
	std::memcpy(&seen, device->registers() + 64, 4);
	EXPECT_EQ(seen, 0xcafef00du);
}

// A copy engine: the driver writes source, destination and length registers and rings the
// doorbell; `delay_ns` later the device copies with DMA, upper-casing, and sets the status
// register. Physical addresses come from helPointerPhysical on a DMA space.
class CopyEngine : public helsim::Device {
public:
	static constexpr std::uint64_t kSource = 0, kTarget = 8, kLength = 16, kDoorbell = 24,
								   kStatus = 32;
	explicit CopyEngine(std::uint64_t delay_ns) : delay_ns_{delay_ns} {}

	void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) override {
		if (offset != kDoorbell)
			return Device::mmio_write(offset, width, value);
		after(delay_ns_, [this] { run(); });
	}

private:
	std::uint64_t reg(std::uint64_t offset) {
		std::uint64_t v;
		std::memcpy(&v, registers() + offset, 8);
		return v;
	}
	void run() {
		std::vector<char> buffer(reg(kLength));
		std::uint64_t status = 2;
		if (dma_read(reg(kSource), buffer.data(), buffer.size())) {
			for (char &c : buffer)
				c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
			if (dma_write(reg(kTarget), buffer.data(), buffer.size()))
				status = 1;
		}
		__atomic_store_n(reinterpret_cast<std::uint64_t *>(registers() + kStatus), status,
				__ATOMIC_RELEASE);
	}
	std::uint64_t delay_ns_;
};

// The driver's side of CopyEngine, in a DMA space; returns the status register's value.
std::uint64_t copy_through(HelHandle token, const helsim::DeviceAddress &where, const char *text) {
	helsim::Dispatcher d;
	HelHandle memory = kHelNullHandle;
	auto *cpu = static_cast<char *>(map_new_memory(2 * kPage, &memory));
	std::strcpy(cpu, text);
	HelHandle dma = kHelNullHandle;
	EXPECT_EQ(helCreateDmaSpace(0, &dma), kHelErrNone);
	void *bus = nullptr;
	EXPECT_EQ(helMapMemory(memory, dma, nullptr, 0, 2 * kPage, kRW, &bus), kHelErrNone);
	HelSqPopulateSpace populate{dma, reinterpret_cast<std::uintptr_t>(bus), 2 * kPage};
	EXPECT_EQ(sq_call(d, kHelSubmitPopulateSpace, populate).error(), kHelErrNone);
	std::uintptr_t source = 0, target = 0;
	EXPECT_EQ(helPointerPhysical(dma, bus, &source), kHelErrNone);
	EXPECT_EQ(helPointerPhysical(dma, static_cast<char *>(bus) + kPage, &target), kHelErrNone);

	char *w = map_window(token, where);
	EXPECT_EQ(helsimMmioWrite(w + CopyEngine::kSource, 8, source), kHelErrNone);
	EXPECT_EQ(helsimMmioWrite(w + CopyEngine::kTarget, 8, target), kHelErrNone);
	EXPECT_EQ(helsimMmioWrite(w + CopyEngine::kLength, 8, std::strlen(text) + 1), kHelErrNone);
	EXPECT_EQ(helsimMmioWrite(w + CopyEngine::kDoorbell, 4, 1), kHelErrNone);
	std::uint64_t status = 0;
	for (int polls = 0; polls < 100000 && !status; ++polls) {
		EXPECT_EQ(helsimMmioRead(w + CopyEngine::kStatus, 8, &status), kHelErrNone);
		if (!status) {
			std::uint64_t clock = 0;
			EXPECT_EQ(helGetClock(&clock), kHelErrNone);
			EXPECT_EQ(sq_call(d, kHelSubmitAwaitClock, HelSqAwaitClock{clock + 500, 0}).error(),
					kHelErrNone);
		}
	}
	if (status == 1) {
		EXPECT_STREQ(cpu + kPage, "HELLO, DEVICE");
	}
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, w, where.mmio_size), kHelErrNone);
	EXPECT_EQ(helUnmapMemory(dma, bus, 2 * kPage), kHelErrNone);
	EXPECT_EQ(helUnmapMemory(kHelNullHandle, cpu, 2 * kPage), kHelErrNone);
	for (HelHandle h : {memory, dma})
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	return status;
}

TEST(Device, DmaReachesTheBufferTheDriverNamedByPointerPhysical) {
	helsim::Machine machine{config()};
	auto where = helsim::plug(machine, std::make_shared<CopyEngine>(2000),
			{.name = "copy", .mmio_size = kPage});
	std::uint64_t status = 0;
	expect_clean(drive(machine,
			[&](HelHandle token) { status = copy_through(token, where, "hello, device"); }));
	EXPECT_EQ(status, 1u);
}

TEST(DeviceSeeded, TheCopyEngineUnderEverySeed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto c = helsim::testing::deterministic(seed);
				c.physical_memory = std::size_t{8} << 20;
				c.preempt_at_syscall_ppm = 200'000;
				helsim::Machine machine{c};
				auto where = helsim::plug(machine, std::make_shared<CopyEngine>(5000),
						{.name = "copy", .mmio_size = kPage});
				std::uint64_t status = 0;
				expect_clean(drive(machine, [&](HelHandle token) {
					status = copy_through(token, where, "hello, device");
				}));
				EXPECT_EQ(status, 1u);
			},
			8);
}

TEST(DeviceSeeded, TheSameSeedGivesTheSameTrace) {
	auto hash = [] {
		auto c = helsim::testing::deterministic(11);
		helsim::Machine machine{c};
		auto where = helsim::plug(machine, std::make_shared<CopyEngine>(5000),
				{.name = "copy", .mmio_size = kPage});
		auto report = drive(machine, [&](HelHandle token) {
			EXPECT_EQ(copy_through(token, where, "hello, device"), 1u);
		});
		expect_clean(report);
		return std::pair{report.trace_hash, report.simulated_time_ns};
	};
	auto first = hash();
	EXPECT_NE(first.first, 0u);
	EXPECT_EQ(hash(), first);
}

TEST(Device, AfterRunsCallbacksInDeadlineOrderInVirtualTime) {
	helsim::Machine machine{helsim::testing::deterministic(3)};
	auto device = std::make_shared<TestDevice>();
	helsim::plug(machine, device, {.name = "timer"});
	std::vector<std::pair<int, std::uint64_t>> fired; // (which, when)
	std::uint64_t start = 0;
	auto report = drive(machine, [&](HelHandle) {
		helsim::Dispatcher d;
		EXPECT_EQ(helGetClock(&start), kHelErrNone);
		for (auto timer :
				{std::pair{3, 3000}, std::pair{1, 1000}, std::pair{2, 2000}, std::pair{4, 3000}})
			device->after(timer.second, [&, which = timer.first] {
				fired.emplace_back(which, device->now());
				if (which == 1) // a callback may schedule more
					device->after(500, [&] { fired.emplace_back(5, device->now()); });
			});
		EXPECT_EQ(sq_call(d, kHelSubmitAwaitClock, HelSqAwaitClock{start + 10'000, 0}).error(),
				kHelErrNone);
	});
	expect_clean(report);
	ASSERT_EQ(fired.size(), 5u);
	std::vector<int> order;
	for (auto [which, when] : fired)
		order.push_back(which);
	EXPECT_EQ(order, (std::vector<int>{1, 5, 2, 3, 4})) << "ties keep their order";
	std::uint64_t delays[] = {1000, 1500, 2000, 3000, 3000};
	for (std::size_t i = 0; i < fired.size(); ++i) {
		EXPECT_GE(fired[i].second, start + delays[i]) << i;
		EXPECT_LT(fired[i].second, start + delays[i] + 1000) << i;
	}
}

TEST(Device, PendingCallbacksAreDroppedAtTeardown) {
	auto device = std::make_shared<TestDevice>();
	bool fired = false;
	{
		helsim::Machine machine{config()};
		helsim::plug(machine, device, {.name = "late", .mmio_size = kPage});
		device->after(std::uint64_t{3600} * 1'000'000'000, [&] { fired = true; });
		machine.spawn("quick", [](std::span<const HelHandle>) {});
		expect_clean(machine.run());
	}
	EXPECT_FALSE(fired);
	// After the machine: the device stays valid, and its services do nothing.
	char byte = 0;
	EXPECT_FALSE(device->dma_read(0, &byte, 1));
	device->after(1, [&] { fired = true; });
	EXPECT_FALSE(fired);
	EXPECT_NE(device->address().mmio_size, 0u);
}

TEST(Device, DmaIsBoundedByPhysicalMemory) {
	helsim::Machine machine{config(std::size_t{1} << 20)};
	auto device = std::make_shared<TestDevice>();
	char buffer[16] = "abc";
	EXPECT_THROW(device->after(1, [] {}), std::logic_error) << "not plugged";
	EXPECT_FALSE(device->dma_write(0, buffer, 4)) << "not plugged";
	helsim::plug(machine, device, {.name = "dma"});
	std::uint64_t top = std::uint64_t{1} << 20;
	EXPECT_TRUE(device->dma_write(top - 4, buffer, 4));
	char back[4] = {};
	EXPECT_TRUE(device->dma_read(top - 4, back, 4));
	EXPECT_STREQ(back, "abc");
	EXPECT_FALSE(device->dma_write(top - 3, buffer, 4));
	EXPECT_FALSE(device->dma_read(top, back, 1));
	EXPECT_FALSE(device->dma_read(~std::uint64_t{0} - 1, back, 4)) << "wraps";
	EXPECT_TRUE(device->dma_read(top, back, 0)) << "nothing at the end is inside";
}

} // namespace
