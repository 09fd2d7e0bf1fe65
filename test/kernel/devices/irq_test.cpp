// Tests of the interrupt controller and IRQ objects (src/kernel/devices/irq.cpp, irq_syscalls.cpp):
// helAccessIrq, helHandleIrq, helConfigureIrq, helAcknowledgeIrq and kHelSubmitAwaitEvent on
// an IRQ object, with thor's sequence rules and pin strategies (buffered edges, level lines
// masked in service, nack stalls and kicks); lines driven through helsim/irq.hpp.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "../../support.hpp"
#include "../threads/thread_support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/irq.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

namespace {

using helsim::test::expect_clean;
using helsim::test::info_of;
using helsim::test::narrowed;

constexpr std::uintptr_t kSubmitError = ~std::uintptr_t{0};
constexpr unsigned kGsi = 5;

helsim::MachineConfig config(unsigned cpus) {
	helsim::MachineConfig c;
	c.cpus = cpus;
	c.physical_memory = std::size_t{64} << 20;
	return c;
}

// A driver fiber with the hardware access token; `body` gets the token and the machine.
// `refused` submissions were answered with context ~0 elements.
void run_driver(const std::function<void(helsim::Machine &, HelHandle)> &body,
		std::uint64_t refused = 0, helsim::MachineConfig c = config(2)) {
	helsim::Machine machine{std::move(c)};
	HelHandle token = machine.hardware_access_token();
	machine.spawn("driver", [&](std::span<const HelHandle> h) { body(machine, h[0]); }, {token});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed + refused)
			<< "nothing completed twice";
}

HelHandle pin_of(HelHandle token, unsigned gsi = kGsi) {
	HelHandle pin = kHelNullHandle;
	EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, gsi, &pin), kHelErrNone);
	return pin;
}

HelHandle irq_of(HelHandle pin) {
	HelHandle irq = kHelNullHandle;
	EXPECT_EQ(helHandleIrq(pin, &irq), kHelErrNone);
	return irq;
}

void await(helsim::Dispatcher &d, std::uintptr_t context, HelHandle irq, std::uint64_t sequence,
		std::uint64_t tag = 0) {
	d.submit(kHelSubmitAwaitEvent, context, HelSqAwaitEvent{irq, sequence, tag});
}

// The next completion, which must be `context` with (error, sequence) and no bits.
void expect_next(helsim::Dispatcher &d, std::uintptr_t context, HelError error,
		std::uint64_t sequence) {
	auto e = d.wait();
	ASSERT_TRUE(e);
	ASSERT_EQ(e->payload().size(), sizeof(HelEventResult));
	auto r = e->as<HelEventResult>();
	EXPECT_EQ(e->context(), context);
	EXPECT_EQ(r.error, error) << "context " << context;
	EXPECT_EQ(r.bitset, 0u) << "context " << context;
	EXPECT_EQ(r.sequence, sequence) << "context " << context;
}

void expect_nothing(helsim::Dispatcher &d) {
	d.flush();
	auto e = d.poll();
	EXPECT_FALSE(e) << "unexpected completion with context " << (e ? e->context() : 0);
}

} // namespace

// ---------------------------------------------------------------- helAccessIrq, helHandleIrq

TEST(IrqAccess, EveryErrorPath) {
	run_driver([](helsim::Machine &, HelHandle token) {
		HelHandle pin = kHelNullHandle, other = kHelNullHandle;
		HelHandle q = helsim::test::make_queue();
		ASSERT_EQ(helCreateToken(&other), kHelErrNone);
		EXPECT_EQ(helAccessIrq(987654, kHelAccessIrqByGsi, 0, kGsi, &pin), kHelErrNoDescriptor);
		EXPECT_EQ(helAccessIrq(q, kHelAccessIrqByGsi, 0, kGsi, &pin), kHelErrBadDescriptor);
		EXPECT_EQ(helAccessIrq(other, kHelAccessIrqByGsi, 0, kGsi, &pin), kHelErrBadRights)
				<< "a token of helCreateToken has no Invoke";
		EXPECT_EQ(helAccessIrq(narrowed(token, 0), kHelAccessIrqByGsi, 0, kGsi, &pin),
				kHelErrBadRights);
		EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByPhandle, 1, 2, &pin),
				kHelErrUnsupportedOperation);
		EXPECT_EQ(helAccessIrq(token, 0, 0, kGsi, &pin), kHelErrIllegalArgs);
		EXPECT_EQ(helAccessIrq(token, 3, 0, kGsi, &pin), kHelErrIllegalArgs);
		EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 1, kGsi, &pin), kHelErrIllegalArgs);
		EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, helsim::kGsiCount, &pin),
				kHelErrOutOfBounds);
		EXPECT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, ~std::uint64_t{0}, &pin),
				kHelErrOutOfBounds);
		ASSERT_EQ(helAccessIrq(token, kHelAccessIrqByGsi, 0, helsim::kGsiCount - 1, &pin),
				kHelErrNone);
		EXPECT_EQ(info_of(pin).type, kHelDescIrqPin);
		EXPECT_EQ(info_of(pin).rights, std::uint32_t{kHelRightAssign | kHelRightManage});
		HelDescriptorInfo info{};
		EXPECT_EQ(helDescriptorInfo(pin, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescIrqPin);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, pin), kHelErrNone);
	});
}

TEST(IrqHandle, EveryErrorPathAndTheNewHandle) {
	run_driver([](helsim::Machine &, HelHandle token) {
		HelHandle pin = pin_of(token), irq = kHelNullHandle;
		EXPECT_EQ(helHandleIrq(987654, &irq), kHelErrNoDescriptor);
		EXPECT_EQ(helHandleIrq(token, &irq), kHelErrBadDescriptor);
		EXPECT_EQ(helHandleIrq(narrowed(pin, kHelRightManage), &irq), kHelErrBadRights);
		ASSERT_EQ(helHandleIrq(narrowed(pin, kHelRightAssign), &irq), kHelErrNone);
		EXPECT_EQ(info_of(irq).type, kHelDescIrq);
		EXPECT_EQ(info_of(irq).rights, std::uint32_t{kHelRightWait | kHelRightSignal});
		HelDescriptorInfo info{};
		EXPECT_EQ(helDescriptorInfo(irq, &info), kHelErrNone);
		EXPECT_EQ(info.type, kHelDescIrq);
		// A pin is not an IRQ object and the other way round.
		EXPECT_EQ(helAcknowledgeIrq(pin, kHelAckAcknowledge, 1), kHelErrBadDescriptor);
		EXPECT_EQ(helConfigureIrq(irq, kHelIrqTriggerEdge, kHelIrqPolarityHigh),
				kHelErrBadDescriptor);
		EXPECT_EQ(helHandleIrq(irq, &irq), kHelErrBadDescriptor);
	});
}

TEST(IrqConfigure, EveryErrorPathAndTheFirstConfigurationStays) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		HelHandle pin = pin_of(token);
		EXPECT_EQ(helConfigureIrq(987654, kHelIrqTriggerEdge, kHelIrqPolarityHigh),
				kHelErrNoDescriptor);
		EXPECT_EQ(helConfigureIrq(narrowed(pin, kHelRightAssign), kHelIrqTriggerEdge,
						  kHelIrqPolarityHigh),
				kHelErrBadRights);
		using P = std::pair<std::uint32_t, std::uint32_t>;
		for (auto [t, p] : {P{kHelIrqTriggerNull, kHelIrqPolarityHigh},
					 P{kHelIrqTriggerEdge, kHelIrqPolarityNull}, P{3, 1}, P{1, 3}})
			EXPECT_EQ(helConfigureIrq(pin, t, p), kHelErrIllegalArgs) << t << " " << p;
		EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).configured);
		EXPECT_EQ(helConfigureIrq(pin, kHelIrqTriggerLevel, kHelIrqPolarityLow), kHelErrNone);
		EXPECT_EQ(helConfigureIrq(pin, kHelIrqTriggerLevel, kHelIrqPolarityLow), kHelErrNone);
		EXPECT_EQ(helConfigureIrq(pin, kHelIrqTriggerEdge, kHelIrqPolarityLow),
				kHelErrIllegalState);
		EXPECT_EQ(helConfigureIrq(pin_of(token), kHelIrqTriggerLevel, kHelIrqPolarityHigh),
				kHelErrIllegalState)
				<< "a second pin of the same GSI sees the same line";
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_TRUE(s.configured);
		EXPECT_EQ(s.trigger, std::uint32_t{kHelIrqTriggerLevel});
		EXPECT_EQ(s.polarity, std::uint32_t{kHelIrqPolarityLow});
	});
}

TEST(IrqAcknowledge, EveryErrorPath) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle irq = irq_of(pin_of(token));
		for (std::uint32_t flags : {0u, 4u, 0x200u, unsigned{kHelAckClear}, 0x101u | 0x1000u})
			EXPECT_EQ(helAcknowledgeIrq(irq, flags, 0), kHelErrIllegalArgs) << flags;
		EXPECT_EQ(helAcknowledgeIrq(987654, kHelAckAcknowledge, 1), kHelErrNoDescriptor);
		EXPECT_EQ(helAcknowledgeIrq(d.queue(), kHelAckAcknowledge, 1), kHelErrBadDescriptor);
		// Nothing raised yet: the object is in standBy, nothing to acknowledge.
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 0), kHelErrIllegalArgs);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckNack, 0), kHelErrIllegalArgs);
		helsim::raise_gsi(machine, kGsi);
		EXPECT_EQ(helAcknowledgeIrq(narrowed(irq, kHelRightWait), kHelAckAcknowledge, 1),
				kHelErrBadRights);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 2), kHelErrIllegalArgs)
				<< "a sequence from the future";
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 0), kHelErrIllegalArgs)
				<< "an old sequence";
		EXPECT_EQ(helAcknowledgeIrq(narrowed(irq, kHelRightSignal), kHelAckAcknowledge, 1),
				kHelErrNone);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrIllegalArgs)
				<< "acknowledged twice";
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckNack, 1), kHelErrIllegalArgs) << "answered already";
		// Kicks look at no sequence; with kHelAckClear and nothing owed they are plain kicks.
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckKick, 12345), kHelErrNone);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckKick | kHelAckClear, 0), kHelErrNone);
		EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).in_service);
		EXPECT_THROW(helsim::raise_gsi(machine, helsim::kGsiCount), std::out_of_range);
		EXPECT_THROW(helsim::set_gsi_level(machine, helsim::kGsiCount, true), std::out_of_range);
		// The end of an IRQ object (its last handle closed) completes its awaits.
		HelHandle other = irq_of(pin_of(token));
		await(d, 1, other, 0);
		expect_nothing(d);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, other), kHelErrNone);
		d.flush();
		expect_next(d, 1, kHelErrCancelled, 0);
	});
}

// ---------------------------------------------------------------- sequences

// thor's IrqObject::submitAwait: below the current sequence, at once with the current one;
// the current one waits for the next raise; from the future: kHelErrIllegalArgs (thor asserts).
TEST(IrqAwait, SequenceRules) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle irq = irq_of(pin_of(token));
		await(d, 1, irq, 0);
		await(d, 2, irq, 1);
		d.flush();
		expect_next(d, 2, kHelErrIllegalArgs, 0);
		expect_nothing(d);
		helsim::raise_gsi(machine, kGsi);
		expect_next(d, 1, kHelErrNone, 1);
		// Raised before the await: the next await with the old sequence completes at once.
		await(d, 3, irq, 0);
		d.flush();
		expect_next(d, 3, kHelErrNone, 1);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrNone);
		await(d, 4, irq, 1);
		await(d, 5, irq, 1);
		expect_nothing(d);
		helsim::raise_gsi(machine, kGsi);
		expect_next(d, 4, kHelErrNone, 2);
		expect_next(d, 5, kHelErrNone, 2);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 2), kHelErrNone);
		// The legacy syscall on an IRQ object: the same operation.
		EXPECT_EQ(helSubmitAwaitEvent(irq, 1, d.queue(), 6), kHelErrNone);
		expect_next(d, 6, kHelErrNone, 2);
	});
}

// thor ignores the cancellation tag of an IRQ await: kHelSubmitCancel does not reach it.
TEST(IrqAwait, CancellationTagsAreIgnored) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle irq = irq_of(pin_of(token));
		await(d, 1, irq, 0, 7);
		d.submit(kHelSubmitCancel, 0, HelSqCancel{7});
		expect_nothing(d);
		helsim::raise_gsi(machine, kGsi);
		expect_next(d, 1, kHelErrNone, 1);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrNone);
	});
}

TEST(IrqAwait, SubmissionErrorsAreContextAllOnes) {
	run_driver(
			[](helsim::Machine &, HelHandle token) {
				helsim::Dispatcher d;
				HelHandle pin = pin_of(token), irq = irq_of(pin);
				await(d, 1, narrowed(irq, kHelRightSignal), 0);
				await(d, 2, pin, 0);
				d.flush();
				for (HelError want : {kHelErrBadRights, kHelErrBadDescriptor}) {
					auto e = d.wait();
					ASSERT_TRUE(e);
					EXPECT_EQ(e->context(), kSubmitError);
					EXPECT_EQ(e->error(), want);
				}
			},
			2);
}

// ---------------------------------------------------------------- pin strategies

// Edge-triggered (thor's justEoi): the line stays unmasked in service; an edge meanwhile is
// buffered (one) and raises when the sinks have answered; a further one finds it masked.
TEST(IrqEdge, OneEdgeIsBufferedWhileInService) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle pin = pin_of(token), irq = irq_of(pin);
		ASSERT_EQ(helConfigureIrq(pin, kHelIrqTriggerEdge, kHelIrqPolarityHigh), kHelErrNone);
		helsim::raise_gsi(machine, kGsi);
		helsim::raise_gsi(machine, kGsi);
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_TRUE(s.in_service);
		EXPECT_TRUE(s.edge_buffered);
		EXPECT_TRUE(s.masked_while_buffered);
		EXPECT_FALSE(s.masked_for_service);
		helsim::raise_gsi(machine, kGsi); // lost: the line is masked
		EXPECT_EQ(helsim::irq_line_state(machine, kGsi).dropped, 1u);
		await(d, 1, irq, 1);
		expect_nothing(d);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrNone);
		expect_next(d, 1, kHelErrNone, 2);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 2), kHelErrNone);
		s = helsim::irq_line_state(machine, kGsi);
		EXPECT_FALSE(s.in_service);
		EXPECT_FALSE(s.masked_while_buffered);
		EXPECT_EQ(s.services, 2u);
		// set_gsi_level on an edge line: a rising level is one edge, holding it is nothing more.
		helsim::set_gsi_level(machine, kGsi, true);
		helsim::set_gsi_level(machine, kGsi, true);
		await(d, 2, irq, 2);
		d.flush();
		expect_next(d, 2, kHelErrNone, 3);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 3), kHelErrNone);
		EXPECT_EQ(helsim::irq_line_state(machine, kGsi).services, 3u);
		helsim::set_gsi_level(machine, kGsi, false);
	});
}

// Level-triggered (thor's maskThenEoi): masked while in service; a line still asserted when
// the driver acknowledges raises again; lowered, it does not.
TEST(IrqLevel, MaskedInServiceAndRaisedAgainWhileAsserted) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle pin = pin_of(token), irq = irq_of(pin);
		ASSERT_EQ(helConfigureIrq(pin, kHelIrqTriggerLevel, kHelIrqPolarityLow), kHelErrNone);
		await(d, 1, irq, 0);
		helsim::set_gsi_level(machine, kGsi, true);
		expect_next(d, 1, kHelErrNone, 1);
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_TRUE(s.in_service);
		EXPECT_TRUE(s.masked_for_service);
		helsim::raise_gsi(machine, kGsi); // masked: lost
		EXPECT_EQ(helsim::irq_line_state(machine, kGsi).dropped, 1u);
		await(d, 2, irq, 1);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrNone);
		expect_next(d, 2, kHelErrNone, 2); // still asserted: raised again
		helsim::set_gsi_level(machine, kGsi, false);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 2), kHelErrNone);
		s = helsim::irq_line_state(machine, kGsi);
		EXPECT_FALSE(s.in_service);
		EXPECT_FALSE(s.masked_for_service);
		EXPECT_EQ(s.services, 2u);
		// Asserted while out of service and unmasked: raised at once.
		await(d, 3, irq, 2);
		helsim::set_gsi_level(machine, kGsi, true);
		expect_next(d, 3, kHelErrNone, 3);
		helsim::set_gsi_level(machine, kGsi, false);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 3), kHelErrNone);
	});
}

// A level line configured while already asserted raises when it is configured.
TEST(IrqLevel, AssertedBeforeConfigurationRaisesOnConfiguration) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle pin = pin_of(token), irq = irq_of(pin);
		helsim::set_gsi_level(machine, kGsi, true); // unconfigured: an edge
		ASSERT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 1), kHelErrNone);
		ASSERT_EQ(helConfigureIrq(pin, kHelIrqTriggerLevel, kHelIrqPolarityHigh), kHelErrNone);
		await(d, 1, irq, 1);
		d.flush();
		expect_next(d, 1, kHelErrNone, 2);
		helsim::set_gsi_level(machine, kGsi, false);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckAcknowledge, 2), kHelErrNone);
	});
}

// Every sink nacks: the line stalls, masked; a kick unmasks it. Two sinks: the line leaves
// service only when both have answered.
TEST(IrqNack, NackStallsTheLineUntilAKick) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		helsim::Dispatcher d;
		HelHandle pin = pin_of(token), a = irq_of(pin), b = irq_of(pin);
		EXPECT_EQ(helsim::irq_line_state(machine, kGsi).sinks, 2u);
		helsim::raise_gsi(machine, kGsi);
		EXPECT_EQ(helAcknowledgeIrq(a, kHelAckNack, 1), kHelErrNone);
		EXPECT_TRUE(helsim::irq_line_state(machine, kGsi).in_service) << "b owes an answer";
		EXPECT_EQ(helAcknowledgeIrq(b, kHelAckNack, 1), kHelErrNone);
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_TRUE(s.masked_for_nack);
		EXPECT_TRUE(s.in_service);
		helsim::raise_gsi(machine, kGsi); // stalled: lost
		EXPECT_EQ(helsim::irq_line_state(machine, kGsi).dropped, 1u);
		EXPECT_EQ(helAcknowledgeIrq(a, kHelAckKick, 0), kHelErrNone);
		s = helsim::irq_line_state(machine, kGsi);
		EXPECT_FALSE(s.masked_for_nack);
		EXPECT_FALSE(s.in_service);
		helsim::raise_gsi(machine, kGsi);
		await(d, 1, a, 1);
		await(d, 2, b, 1);
		d.flush();
		expect_next(d, 1, kHelErrNone, 2);
		expect_next(d, 2, kHelErrNone, 2);
		// One acknowledges, the other nacks: acknowledged.
		EXPECT_EQ(helAcknowledgeIrq(a, kHelAckAcknowledge, 2), kHelErrNone);
		EXPECT_EQ(helAcknowledgeIrq(b, kHelAckNack, 2), kHelErrNone);
		s = helsim::irq_line_state(machine, kGsi);
		EXPECT_FALSE(s.in_service);
		EXPECT_FALSE(s.masked_for_nack);
		// kHelAckKick | kHelAckClear is the acknowledgement of a sink that owes one.
		helsim::raise_gsi(machine, kGsi);
		EXPECT_EQ(helAcknowledgeIrq(a, kHelAckKick | kHelAckClear, 0), kHelErrNone);
		EXPECT_EQ(helAcknowledgeIrq(a, kHelAckAcknowledge, 3), kHelErrIllegalArgs);
		EXPECT_TRUE(helsim::irq_line_state(machine, kGsi).in_service) << "b owes an answer";
		EXPECT_EQ(helAcknowledgeIrq(b, kHelAckAcknowledge, 3), kHelErrNone);
		EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).in_service);
	});
}

// With no IRQ object, a raise is nacked by nobody: the line stalls (thor logs "No sink").
// A sink that dies owing an answer does not keep the line in service.
TEST(IrqNack, NoSinkStallsAndADyingSinkLetsGo) {
	run_driver([](helsim::Machine &machine, HelHandle token) {
		HelHandle pin = pin_of(token);
		helsim::raise_gsi(machine, kGsi);
		EXPECT_TRUE(helsim::irq_line_state(machine, kGsi).masked_for_nack);
		HelHandle irq = irq_of(pin);
		EXPECT_EQ(helAcknowledgeIrq(irq, kHelAckKick, 0), kHelErrNone);
		EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).in_service);
		helsim::raise_gsi(machine, kGsi);
		EXPECT_TRUE(helsim::irq_line_state(machine, kGsi).in_service);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, irq), kHelErrNone);
		auto s = helsim::irq_line_state(machine, kGsi);
		EXPECT_EQ(s.sinks, 0u);
		EXPECT_TRUE(s.masked_for_nack) << "its end counts as a nack";
	});
}

// ---------------------------------------------------------------- teardown and reports

TEST(IrqTeardown, StuckAwaitIsReportedAndTornDown) {
	helsim::Machine machine{config(1)};
	HelHandle token = machine.hardware_access_token();
	machine.spawn("waiter",
			[](std::span<const HelHandle> h) {
				helsim::Dispatcher d;
				HelHandle irq = irq_of(pin_of(h[0]));
				await(d, 1, irq, 0);
				d.wait();
			},
			{token});
	auto report = machine.run();
	ASSERT_TRUE(report.stuck) << report.to_string();
	const auto *waiter = helsim::test::find_thread(report, "waiter");
	ASSERT_NE(waiter, nullptr);
	EXPECT_NE(waiter->waits_on.find("awaitEvent on irq handle"), std::string::npos)
			<< waiter->waits_on;
	EXPECT_EQ(report.operations_pending(), 1u);
}

// ---------------------------------------------------------------- concurrency

namespace {

// A device thread raises `raises` edges, each once the driver has taken the previous one; the
// driver follows the sequence and acknowledges every raise. Invariants: sequences grow by one,
// nothing is lost (one buffered edge at most), every await completes exactly once.
struct Shared {
	helsim::Machine *machine = nullptr;
	HelHandle irq = kHelNullHandle;
	int raises = 0;
	std::atomic<int> taken{0};
	std::atomic<int> violations{0};
	std::string first_violation;
	std::atomic<bool> noted{false};

	void violation(const std::string &what) {
		if (!noted.exchange(true))
			first_violation = what;
		++violations;
	}
};

void device(std::uintptr_t arg) {
	auto *s = reinterpret_cast<Shared *>(arg);
	for (int i = 0; i < s->raises; ++i) {
		while (s->taken.load() < i)
			helYield();
		helsim::raise_gsi(*s->machine, kGsi);
	}
}

void driver(std::uintptr_t arg) {
	auto *s = reinterpret_cast<Shared *>(arg);
	helsim::Dispatcher d;
	std::uint64_t sequence = 0;
	while (sequence < static_cast<std::uint64_t>(s->raises)) {
		await(d, sequence + 1, s->irq, sequence);
		d.flush();
		auto e = d.wait();
		auto r = e->as<HelEventResult>();
		if (e->context() != sequence + 1 || r.error != kHelErrNone || r.sequence != sequence + 1)
			s->violation("after " + std::to_string(sequence) + ": context " +
					std::to_string(e->context()) + " error " + std::to_string(r.error) +
					" sequence " + std::to_string(r.sequence));
		sequence = r.sequence;
		s->taken.store(static_cast<int>(sequence));
		if (helAcknowledgeIrq(s->irq, kHelAckAcknowledge, sequence) != kHelErrNone)
			s->violation("acknowledge " + std::to_string(sequence));
		if (r.error != kHelErrNone)
			break;
	}
}

helsim::RunReport run_device_and_driver(helsim::MachineConfig c, int raises, bool configured) {
	helsim::Machine machine{std::move(c)};
	Shared s;
	s.machine = &machine;
	s.raises = raises;
	HelHandle token = machine.hardware_access_token();
	machine.spawn("main",
			[&](std::span<const HelHandle> h) {
				HelHandle pin = pin_of(h[0]);
				if (configured) {
					EXPECT_EQ(helConfigureIrq(pin, kHelIrqTriggerEdge, kHelIrqPolarityHigh),
							kHelErrNone);
				}
				s.irq = irq_of(pin);
				HelHandle threads[2];
				ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
								  reinterpret_cast<void *>(driver), &s, 0, &threads[0]),
						kHelErrNone);
				ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
								  reinterpret_cast<void *>(device), &s, 0, &threads[1]),
						kHelErrNone);
				helsim::Dispatcher d;
				for (HelHandle t : threads) {
					EXPECT_EQ(helsim::test::observe(d, t).error, kHelErrThreadTerminated);
					EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, t), kHelErrNone);
				}
				EXPECT_EQ(helsim::irq_line_state(machine, kGsi).services,
						static_cast<std::uint64_t>(raises));
				EXPECT_FALSE(helsim::irq_line_state(machine, kGsi).in_service);
			},
			{token});
	auto report = machine.run();
	expect_clean(report);
	EXPECT_EQ(report.counters.completions_posted, report.counters.operations_completed);
	EXPECT_EQ(s.violations.load(), 0) << s.first_violation;
	return report;
}

} // namespace

TEST(IrqStress, EveryRaiseIsServedAndEveryAwaitCompletesOnce) {
	run_device_and_driver(config(2), 5000, false);
	run_device_and_driver(config(2), 2000, true);
}

TEST(IrqSeeded, DeviceAndDriverUnderEverySeed) {
	helsim::testing::for_each_seed(
			[](std::uint64_t seed) {
				auto c = helsim::testing::deterministic(seed);
				c.preempt_at_syscall_ppm = 200'000;
				run_device_and_driver(c, 50, seed % 2);
			},
			32);
}

TEST(IrqSeeded, TheSameSeedGivesTheSameTrace) {
	auto hash = [] {
		return run_device_and_driver(helsim::testing::deterministic(11), 30, false).trace_hash;
	};
	std::uint64_t first = hash();
	EXPECT_NE(first, 0u);
	EXPECT_EQ(hash(), first);
}
