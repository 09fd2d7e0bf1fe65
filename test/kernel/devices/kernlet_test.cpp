// Tests of kernlets (src/kernel/devices/kernlet.cpp, helsim/kernlet.hpp): register_kernlet,
// helBindKernlet and helAutomateIrq, a kernlet acknowledging or rejecting an IRQ in IRQ
// context, reading and writing a bound memory view and triggering a bound bitset event.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <span>
#include <stdexcept>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/irq.hpp>
#include <helsim/kernlet.hpp>
#include <helsim/machine.hpp>

namespace {

using helsim::KernletContext;
using helsim::KernletParameter;
using helsim::KernletResult;
using helsim::test::expect_clean;
using helsim::test::info_of;
using helsim::test::narrowed;

constexpr unsigned kGsi = 9;
constexpr std::size_t kStatus = 0x40; // the simulated device's status register

helsim::MachineConfig config() {
	helsim::MachineConfig c;
	c.cpus = 2;
	c.physical_memory = std::size_t{64} << 20;
	return c;
}

// A kernlet as a device's IRQ handler would be: reads the status register at the bound
// offset of the bound view; a set status is acknowledged, cleared, and reported through the
// bound bitset event; a clear status is not this device's IRQ.
KernletResult status_kernlet(KernletContext &k) {
	auto status = k.read<std::uint32_t>(0, k.offset(1));
	if (!status)
		return KernletResult::nacked;
	std::uint32_t zero = 0;
	if (!k.write(0, k.offset(1), &zero, sizeof(zero)))
		return KernletResult::none;
	k.trigger_bitset(2, status);
	return KernletResult::acknowledged;
}

struct Fixture {
	HelHandle irq = kHelNullHandle, pin = kHelNullHandle, memory = kHelNullHandle;
	HelHandle event = kHelNullHandle, bound = kHelNullHandle;
	volatile std::uint32_t *registers = nullptr;
};

Fixture setup(HelHandle token, HelHandle kernlet) {
	Fixture f;
	EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, kGsi, &f.pin), kHelErrNone);
	EXPECT_EQ(helHandleIrq(f.pin, &f.irq), kHelErrNone);
	EXPECT_EQ(helAllocateMemory(4096, 0, nullptr, &f.memory), kHelErrNone);
	void *window = nullptr;
	EXPECT_EQ(helMapMemory(f.memory, kHelNullHandle, nullptr, 0, 4096,
					  kHelMapProtRead | kHelMapProtWrite, &window),
			kHelErrNone);
	f.registers = static_cast<volatile std::uint32_t *>(window);
	f.registers[kStatus / 4] = 0; // present from now on
	EXPECT_EQ(helCreateBitsetEvent(&f.event), kHelErrNone);
	HelKernletData data[3];
	data[0].handle = f.memory;
	data[1].handle = kStatus;
	data[2].handle = f.event;
	EXPECT_EQ(helBindKernlet(kernlet, data, 3, &f.bound), kHelErrNone);
	return f;
}

void run_driver(const std::function<void(helsim::Machine &, HelHandle, HelHandle)> &body) {
	helsim::Machine machine{config()};
	HelHandle token = machine.hardware_access_token();
	HelHandle kernlet = helsim::register_kernlet(machine, "status",
			{KernletParameter::memory_view, KernletParameter::offset,
					KernletParameter::bitset_event},
			status_kernlet);
	machine.spawn("driver", [&](std::span<const HelHandle> h) { body(machine, h[0], h[1]); },
			{token, kernlet});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed);
}

} // namespace

TEST(Kernlet, RegisterGivesAKernletHandleInTheRootUniverse) {
	helsim::Machine machine{config()};
	EXPECT_THROW(helsim::register_kernlet(machine, "none", {}, {}), std::invalid_argument);
	HelHandle k = helsim::register_kernlet(machine, "k", {},
			[](KernletContext &) { return KernletResult::none; });
	EXPECT_GE(k, 1);
	machine.spawn("check",
			[](std::span<const HelHandle> h) {
				EXPECT_EQ(info_of(h[0]).type, kHelDescKernletObject);
				EXPECT_EQ(info_of(h[0]).rights, std::uint32_t{kHelRightAssign});
			},
			{k});
	auto report = machine.run();
	expect_clean(report);
}

TEST(KernletBind, EveryErrorPath) {
	run_driver([](helsim::Machine &, HelHandle token, HelHandle kernlet) {
		Fixture f = setup(token, kernlet);
		EXPECT_EQ(info_of(f.bound).type, kHelDescBoundKernlet);
		EXPECT_EQ(info_of(f.bound).rights, std::uint32_t{kHelRightAssign});
		HelHandle bound = kHelNullHandle;
		HelKernletData data[3];
		data[0].handle = f.memory;
		data[1].handle = kStatus;
		data[2].handle = f.event;
		EXPECT_EQ(helBindKernlet(987654, data, 3, &bound), kHelErrNoDescriptor);
		EXPECT_EQ(helBindKernlet(f.memory, data, 3, &bound), kHelErrBadDescriptor);
		EXPECT_EQ(helBindKernlet(narrowed(kernlet, 0), data, 3, &bound), kHelErrBadRights);
		EXPECT_EQ(helBindKernlet(kernlet, data, 2, &bound), kHelErrIllegalArgs);
		EXPECT_EQ(helBindKernlet(kernlet, data, 4, &bound), kHelErrIllegalArgs);
		EXPECT_EQ(helBindKernlet(kernlet, reinterpret_cast<HelKernletData *>(8), 3, &bound),
				kHelErrFault);
		data[0].handle = f.event;
		EXPECT_EQ(helBindKernlet(kernlet, data, 3, &bound), kHelErrBadDescriptor);
		data[0].handle = f.memory;
		data[2].handle = 987654;
		EXPECT_EQ(helBindKernlet(kernlet, data, 3, &bound), kHelErrNoDescriptor);
		data[2].handle = narrowed(f.event, kHelRightWait);
		EXPECT_EQ(helBindKernlet(kernlet, data, 3, &bound), kHelErrBadRights);
		// helAutomateIrq
		EXPECT_EQ(helAutomateIrq(f.irq, 1, f.bound), kHelErrIllegalArgs);
		EXPECT_EQ(helAutomateIrq(f.pin, 0, f.bound), kHelErrBadDescriptor);
		EXPECT_EQ(helAutomateIrq(narrowed(f.irq, kHelRightWait), 0, f.bound), kHelErrBadRights);
		EXPECT_EQ(helAutomateIrq(f.irq, 0, kernlet), kHelErrBadDescriptor);
		EXPECT_EQ(helAutomateIrq(f.irq, 0, narrowed(f.bound, 0)), kHelErrBadRights);
		EXPECT_EQ(helAutomateIrq(f.irq, 0, f.bound), kHelErrNone);
	});
}

// The kernlet acknowledges its device's IRQ at once: the line leaves service without a
// helAcknowledgeIrq, the register is cleared, the bitset event carries the status; awaits on
// the IRQ object still complete. A clear status: the kernlet nacks, the line stalls until a
// kick.
TEST(KernletAutomate, AcknowledgesAndNacksInIrqContext) {
	run_driver([](helsim::Machine &machine, HelHandle token, HelHandle kernlet) {
		Fixture f = setup(token, kernlet);
		ASSERT_EQ(helAutomateIrq(f.irq, 0, f.bound), kHelErrNone);
		helsim::Dispatcher d;
		d.submit(kHelSubmitAwaitEvent, 1, HelSqAwaitEvent{f.event, 1, 0});
		d.submit(kHelSubmitAwaitEvent, 2, HelSqAwaitEvent{f.irq, 0, 0});
		d.flush();
		f.registers[kStatus / 4] = 0x5;
		helsim::raise_gsi(machine, kGsi);
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_FALSE(s.in_service) << "acknowledged by the kernlet";
		EXPECT_EQ(f.registers[kStatus / 4], 0u);
		for (int i = 0; i < 2; ++i) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			auto r = e->as<HelEventResult>();
			EXPECT_EQ(r.error, kHelErrNone);
			if (e->context() == 1) {
				EXPECT_EQ(r.bitset, 0x5u);
				EXPECT_EQ(r.sequence, 2u);
			} else {
				EXPECT_EQ(e->context(), 2u);
				EXPECT_EQ(r.sequence, 1u);
			}
		}
		EXPECT_EQ(helAcknowledgeIrq(f.irq, kHelAckAcknowledge, 1), kHelErrIllegalArgs)
				<< "answered by the kernlet";
		// Not this device's IRQ.
		helsim::raise_gsi(machine, kGsi);
		s = helsim::irq_line_state(machine, kGsi);
		EXPECT_TRUE(s.masked_for_nack);
		EXPECT_EQ(helAcknowledgeIrq(f.irq, kHelAckKick, 0), kHelErrNone);
		EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).in_service);
	});
}

// A kernlet that answers nothing leaves the answer to the driver; one that throws too.
TEST(KernletAutomate, NoAnswerLeavesItToTheDriver) {
	helsim::Machine machine{config()};
	HelHandle token = machine.hardware_access_token();
	std::atomic<int> calls{0};
	HelHandle kernlet = helsim::register_kernlet(machine, "shy", {}, [&](KernletContext &k) {
		EXPECT_EQ(k.parameters(), 0u);
		EXPECT_EQ(k.offset(0), 0u);
		EXPECT_FALSE(k.read(0, 0, nullptr, 0));
		k.trigger_bitset(0, 1); // no such parameter: ignored
		if (++calls == 2)
			throw std::runtime_error("kernlet bug");
		return KernletResult::none;
	});
	machine.spawn("driver",
			[&](std::span<const HelHandle> h) {
				HelHandle pin, irq, bound;
				ASSERT_EQ(helAccessIrq(h[0], kHelAccessIrqByGsi, 0, kGsi, &pin), kHelErrNone);
				ASSERT_EQ(helHandleIrq(pin, &irq), kHelErrNone);
				ASSERT_EQ(helBindKernlet(h[1], nullptr, 0, &bound), kHelErrNone);
				ASSERT_EQ(helAutomateIrq(irq, 0, bound), kHelErrNone);
				ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, bound), kHelErrNone);
				for (std::uint64_t seq = 1; seq <= 2; ++seq) {
					helsim::raise_gsi(machine, kGsi);
					EXPECT_TRUE(helsim::irq_line_state(machine, kGsi).in_service);
					EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, seq), kHelErrNone);
				}
			},
			{token, kernlet});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(calls.load(), 2);
}
