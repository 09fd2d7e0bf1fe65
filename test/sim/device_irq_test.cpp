// The interrupt side of simulated devices: Device::raise_irq and set_irq_level reach the
// driver's IRQ object through the GSIs plug() assigned, and Device::irq_acknowledged runs when
// the driver acknowledges, so that a level-triggered device with more work asserts its line
// again there.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "../support.hpp"
#include <helsim/device.hpp>
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/irq.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using namespace helsim::test;

constexpr std::uint64_t kStart = 0; // write n: n units of work, the line goes up
constexpr std::uint64_t kClear = 8; // write: one unit served, the line goes down

// Level-triggered work queue: the line is asserted while a unit waits to be served. The
// driver's kClear write lowers it; the acknowledgement that follows asserts it again if more
// units wait, as a level-triggered device does on end of interrupt.
class LevelDevice final : public helsim::Device {
public:
	void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) override {
		Device::mmio_write(offset, width, value);
		if (offset == kStart) {
			pending_ = static_cast<int>(value);
			set_irq_level(0, pending_ > 0);
		} else if (offset == kClear) {
			--pending_;
			set_irq_level(0, false);
		}
	}
	void irq_acknowledged(unsigned line) override {
		acknowledged_lines_.push_back(line);
		if (pending_ > 0)
			set_irq_level(0, true);
	}
	int pending() const { return pending_; }
	const std::vector<unsigned> &acknowledged_lines() const { return acknowledged_lines_; }

private:
	// Touched by the driver's accessor calls and by acknowledgements the driver makes: one
	// simulated thread, so no lock.
	int pending_ = 0;
	std::vector<unsigned> acknowledged_lines_;
};

// Edge-triggered: a doorbell write completes later, in interrupt context, with an edge on
// line 1 (line 0 is unused, so the test sees that lines map to their own GSIs).
class EdgeDevice final : public helsim::Device {
public:
	void mmio_write(std::uint64_t offset, unsigned width, std::uint64_t value) override {
		Device::mmio_write(offset, width, value);
		after(1000, [this] { raise_irq(1); });
	}
	void irq_acknowledged(unsigned line) override { acknowledged_.push_back(line); }
	std::vector<unsigned> acknowledged_; // written by the driver's acknowledgements only
};

helsim::MachineConfig quiet(helsim::MachineConfig c = {}) {
	c.log_sink = [](const helsim::LogRecord &) {};
	return c;
}

struct Irq {
	HelHandle irq = kHelNullHandle;
	char *window = nullptr;
};

Irq open_line(HelHandle token, const helsim::DeviceAddress &where, unsigned line,
		std::uint32_t trigger) {
	Irq out;
	HelHandle pin = kHelNullHandle, view = kHelNullHandle;
	EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, where.gsis[line], &pin), kHelErrNone);
	EXPECT_EQ(helConfigureIrq(pin, trigger, kHelIrqPolarityHigh), kHelErrNone);
	EXPECT_EQ(helHandleIrq(pin, &out.irq), kHelErrNone);
	EXPECT_EQ(helAccessPhysical(token, where.mmio_physical, where.mmio_size, kHelCachingMmio,
					  &view),
			kHelErrNone);
	void *window = nullptr;
	EXPECT_EQ(helMapMemory(view, kHelNullHandle, nullptr, 0, where.mmio_size,
					  kHelMapProtRead | kHelMapProtWrite, &window),
			kHelErrNone);
	out.window = static_cast<char *>(window);
	for (HelHandle h : {pin, view})
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	return out;
}

// Awaits the IRQ past `sequence`; returns the new sequence (0 on failure).
std::uint64_t await_irq(helsim::Dispatcher &d, HelHandle irq, std::uint64_t sequence) {
	d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{irq, sequence, 0});
	d.flush();
	auto element = d.wait();
	if (!element)
		return 0;
	auto result = element->as<HelEventResult>();
	EXPECT_EQ(result.error, kHelErrNone);
	return result.error == kHelErrNone ? result.sequence : 0;
}

void run_level_scenario(helsim::MachineConfig config) {
	helsim::Machine machine{quiet(config)};
	auto device = std::make_shared<LevelDevice>();
	auto where =
			helsim::plug(machine, device, {.name = "level", .mmio_size = 4096, .irq_lines = 1});
	ASSERT_EQ(where.gsis.size(), 1u);
	constexpr int kUnits = 3;
	std::vector<std::uint64_t> sequences;
	helsim::IrqLineState after_all{};
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher d;
				Irq irq = open_line(h[0], where, 0, kHelIrqTriggerLevel);
				ASSERT_EQ(helsimMmioWrite(irq.window + kStart, 8, kUnits), kHelErrNone);
				std::uint64_t sequence = 0;
				for (int i = 0; i < kUnits; ++i) {
					sequence = await_irq(d, irq.irq, sequence);
					ASSERT_NE(sequence, 0u);
					sequences.push_back(sequence);
					// Serve the unit (the device lowers the line), then acknowledge.
					ASSERT_EQ(helsimMmioWrite(irq.window + kClear, 8, 1), kHelErrNone);
					ASSERT_EQ(helAcknowledgeIrq(irq.irq, kHelAckAcknowledge, sequence),
							kHelErrNone);
				}
				after_all = helsim::irq_line_state(machine, where.gsis[0]);
				EXPECT_EQ(helUnmapMemory(kHelNullHandle, irq.window, 4096), kHelErrNone);
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, irq.irq), kHelErrNone);
			},
			{machine.hardware_access_token()});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(sequences, (std::vector<std::uint64_t>{1, 2, 3}));
	EXPECT_EQ(device->acknowledged_lines(), (std::vector<unsigned>(kUnits, 0)));
	EXPECT_EQ(device->pending(), 0);
	EXPECT_FALSE(after_all.level);
	EXPECT_FALSE(after_all.in_service);
	EXPECT_EQ(after_all.services, static_cast<std::uint64_t>(kUnits))
			<< "one service per unit: the line was low at each acknowledgement";
}

} // namespace

TEST(DeviceIrq, ALevelDeviceAssertsAgainFromItsAcknowledgementHook) { run_level_scenario({}); }

TEST(DeviceIrqSeeded, ALevelDeviceUnderEverySeed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) { run_level_scenario(helsim::testing::deterministic(seed)); },
			8);
}

TEST(DeviceIrq, AnEdgeFromInterruptContextReachesTheLinesOwnGsi) {
	helsim::Machine machine{quiet()};
	auto device = std::make_shared<EdgeDevice>();
	auto where = helsim::plug(machine, device, {.name = "edge", .mmio_size = 4096, .irq_lines = 2});
	ASSERT_EQ(where.gsis.size(), 2u);
	EXPECT_NE(where.gsis[0], where.gsis[1]);
	std::uint64_t sequence = 0;
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				helsim::Dispatcher d;
				Irq irq = open_line(h[0], where, 1, kHelIrqTriggerEdge);
				for (int i = 0; i < 2; ++i) {
					ASSERT_EQ(helsimMmioWrite(irq.window, 8, 1), kHelErrNone); // the doorbell
					sequence = await_irq(d, irq.irq, sequence);
					ASSERT_EQ(sequence, static_cast<std::uint64_t>(i + 1));
					ASSERT_EQ(helAcknowledgeIrq(irq.irq, kHelAckAcknowledge, sequence),
							kHelErrNone);
				}
				EXPECT_EQ(helUnmapMemory(kHelNullHandle, irq.window, 4096), kHelErrNone);
				EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, irq.irq), kHelErrNone);
			},
			{machine.hardware_access_token()});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	EXPECT_EQ(sequence, 2u);
	EXPECT_EQ(device->acknowledged_, (std::vector<unsigned>{1, 1}));
	EXPECT_EQ(helsim::irq_line_state(machine, where.gsis[0]).services, 0u);
}
