// Universes and descriptors: helCreateUniverse, helTransferDescriptor, helCloseDescriptor,
// helDescriptorInfo, handle numbering, rights narrowing and enforcement, wrong-type handles.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

// The raw syscall, so that flag values outside the enum's range can be passed.
HelError transfer_raw(HelHandle h, HelHandle universe, HelWord flags, std::uint32_t exposed,
		std::uint32_t required, HelHandle *out) {
	HelWord word = 0;
	HelError e = helSyscall5_1(kHelCallTransferDescriptor, static_cast<HelWord>(h),
			static_cast<HelWord>(universe), flags, exposed, required, &word);
	*out = static_cast<HelHandle>(word);
	return e;
}

TEST(Universe, HandlesStartAtOneInEveryFreshUniverse) {
	helsim::Machine machine;
	{
		auto attached = machine.attach({.name = "fresh", .new_universe = true});
		EXPECT_EQ(make_token(), 1);
		EXPECT_EQ(make_token(), 2);
	}
	std::atomic<HelHandle> first_in_fiber{-100};
	machine.spawn("first", [&](std::span<const HelHandle>) { first_in_fiber = make_universe(); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(first_in_fiber.load(), 1);
}

TEST(Universe, ClosedHandlesAreNeverReusedAndCloseTwiceFails) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle keep = make_token();
	HelHandle previous = make_token();
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, previous), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, previous), kHelErrNoDescriptor);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, previous), kHelErrNoDescriptor);
	EXPECT_EQ(info_of(keep).type, kHelDescToken) << "closing another handle touched this one";
	for (int i = 0; i < 200; ++i) {
		HelHandle next = (i % 2) ? make_token() : make_universe();
		EXPECT_GT(next, previous) << "a closed handle number came back";
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, next), kHelErrNone);
		EXPECT_EQ(info_of(next).type, -1);
		previous = next;
	}
}

TEST(Universe, CloseForgedHandlesFailsWithoutSideEffects) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle keep = make_queue();
	for (HelHandle forged :
			{HelHandle{0}, HelHandle{-5}, HelHandle{kHelThisUniverse}, HelHandle{kHelThisThread},
					HelHandle{kHelZeroMemory}, keep + 1, HelHandle{1} << 40, INT64_MAX, INT64_MIN})
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, forged), kHelErrNoDescriptor)
				<< "handle " << forged;
	// A forged universe argument is refused as well, and nothing gets closed.
	for (HelHandle forged : {HelHandle{0}, HelHandle{-5}, keep + 7, HelHandle{1} << 40})
		EXPECT_EQ(helCloseDescriptor(forged, keep), kHelErrNoDescriptor) << "universe " << forged;
	EXPECT_EQ(info_of(keep).type, kHelDescQueue);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, keep), kHelErrNone);
}

TEST(Universe, HandleNumbersOfAnotherUniverseAreNotUsable) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle mine = make_token();
	HelError close_foreign = -1, info_foreign = -1, own_token_close = -1;
	HelHandle own_token = -1;
	std::thread other{[&] {
		auto a = machine.attach({.name = "other", .new_universe = true});
		HelDescriptorInfo info{};
		info_foreign = helDescriptorInfo(mine, &info);
		close_foreign = helCloseDescriptor(kHelThisUniverse, mine);
		own_token = make_token();
		own_token_close = helCloseDescriptor(kHelThisUniverse, own_token);
	}};
	other.join();
	EXPECT_EQ(info_foreign, kHelErrNoDescriptor);
	EXPECT_EQ(close_foreign, kHelErrNoDescriptor);
	EXPECT_EQ(own_token, 1);
	EXPECT_EQ(own_token_close, kHelErrNone);
	EXPECT_EQ(info_of(mine).type, kHelDescToken) << "another universe closed our handle";

	// Closing through a universe handle acts on that universe's table only.
	HelHandle u = make_universe();
	HelHandle in_u = -1;
	ASSERT_EQ(helTransferDescriptor(mine, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &in_u),
			kHelErrNone);
	EXPECT_EQ(in_u, 1) << "the copy is the first handle of the empty target universe";
	EXPECT_EQ(helCloseDescriptor(u, u), kHelErrNoDescriptor) << "u's number is ours, not u's";
	EXPECT_EQ(helCloseDescriptor(u, in_u), kHelErrNone);
	EXPECT_EQ(helCloseDescriptor(u, in_u), kHelErrNoDescriptor);
	EXPECT_EQ(info_of(mine).type, kHelDescToken);
}

TEST(Universe, TransferOutAndInCopiesDescriptor) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle u = make_universe();
	HelHandle q = make_queue();
	HelHandle in_u = -1;
	ASSERT_EQ(helTransferDescriptor(q, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &in_u),
			kHelErrNone);
	EXPECT_EQ(in_u, 1);
	// A copy, not a move: our handle still works.
	EXPECT_EQ(info_of(q).type, kHelDescQueue);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, q), kHelErrNone);
	// Take it back in: the copy in `u` kept the object alive with all its rights.
	HelHandle back = -1;
	ASSERT_EQ(helTransferDescriptor(in_u, u, kHelTransferDescriptorIn, kHelRightsMax,
					  kHelRightInvoke, &back),
			kHelErrNone);
	EXPECT_GT(back, u);
	auto info = info_of(back);
	EXPECT_EQ(info.type, kHelDescQueue);
	EXPECT_EQ(info.rights, kQueueRights);
	EXPECT_EQ(helSubmitAsyncNop(back, 1), kHelErrNone);
	// In copies as well: the handle in `u` is still there.
	EXPECT_EQ(helCloseDescriptor(u, in_u), kHelErrNone);
	// kHelThisUniverse: both directions copy within our own table.
	HelHandle out = -1, in = -1;
	ASSERT_EQ(helTransferDescriptor(back, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax, 0, &out),
			kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(back, kHelThisUniverse, kHelTransferDescriptorIn, kHelRightsMax,
					  0, &in),
			kHelErrNone);
	EXPECT_GT(out, back);
	EXPECT_GT(in, out);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, back), kHelErrNone);
	EXPECT_EQ(info_of(out).type, kHelDescQueue) << "copies are independent descriptors";
	EXPECT_EQ(info_of(in).type, kHelDescQueue);
}

TEST(Universe, TransferNarrowsRightsAndCannotWidenThem) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle q = make_queue();
	HelHandle narrow = narrowed(q, kHelRightRead | kHelRightInvoke | kHelRightManage);
	EXPECT_EQ(info_of(narrow).rights, std::uint32_t{kHelRightRead | kHelRightInvoke})
			<< "rights the source lacks are not added";
	HelHandle again = narrowed(narrow, kHelRightsMax);
	EXPECT_EQ(info_of(again).rights, std::uint32_t{kHelRightRead | kHelRightInvoke});
	HelHandle none = narrowed(q, kHelRightNull);
	EXPECT_EQ(info_of(none).type, kHelDescQueue);
	EXPECT_EQ(info_of(none).rights, kHelRightNull);
	EXPECT_EQ(info_of(q).rights, kQueueRights) << "narrowing a copy changed the original";
}

TEST(Universe, TransferFailsWhenRequiredRightsAreMissing) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle u = make_universe();
	HelHandle q = make_queue();
	HelHandle t = make_token();
	HelHandle out = -1;
	// Required but not exposed.
	EXPECT_EQ(helTransferDescriptor(q, u, kHelTransferDescriptorOut, kHelRightRead,
					  kHelRightRead | kHelRightWrite, &out),
			kHelErrBadRights);
	// Required but never held (a token has no rights at all).
	EXPECT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, kHelRightRead,
					  &out),
			kHelErrBadRights);
	// Required after an earlier narrowing took it away.
	HelHandle no_signal = narrowed(q, kQueueRights & ~std::uint32_t{kHelRightSignal});
	EXPECT_EQ(helTransferDescriptor(no_signal, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax, kHelRightSignal, &out),
			kHelErrBadRights);
	// Exactly the exposed rights can be required.
	EXPECT_EQ(helTransferDescriptor(q, u, kHelTransferDescriptorOut, kHelRightInvoke,
					  kHelRightInvoke, &out),
			kHelErrNone);
	EXPECT_EQ(out, 1) << "the failed transfers must not have installed anything in u";
}

TEST(Universe, TransferFlagsMustBeExactlyOutOrIn) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle u = make_universe();
	HelHandle t = make_token();
	HelHandle out = -1;
	// Flags are a 32-bit argument (as in thor): only the low word is decoded.
	for (HelWord flags : {HelWord{0}, HelWord{3}, HelWord{4}, HelWord{5}, HelWord{0x100},
				 HelWord{0x80000001}, ~HelWord{0}}) {
		EXPECT_EQ(transfer_raw(t, u, flags, kHelRightsMax, 0, &out), kHelErrIllegalArgs)
				<< "flags " << flags;
		EXPECT_EQ(transfer_raw(t, kHelThisUniverse, flags, kHelRightsMax, 0, &out),
				kHelErrIllegalArgs)
				<< "flags " << flags;
	}
	// Flags are checked first, before either handle.
	EXPECT_EQ(transfer_raw(-9, -9, 0, kHelRightsMax, 0, &out), kHelErrIllegalArgs);
	EXPECT_EQ(transfer_raw(t, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &out), kHelErrNone);
	EXPECT_EQ(out, 1);
}

TEST(Universe, TransferNeedsGrantForOutAndTakeForIn) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle u = make_universe();
	HelHandle t = make_token();
	HelHandle in_u = -1, out = -1;
	ASSERT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &in_u),
			kHelErrNone);
	HelHandle no_grant = narrowed(u, kUniverseRights & ~std::uint32_t{kHelRightGrant});
	HelHandle no_take = narrowed(u, kUniverseRights & ~std::uint32_t{kHelRightTake});
	EXPECT_EQ(helTransferDescriptor(t, no_grant, kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
			kHelErrBadRights);
	EXPECT_EQ(helTransferDescriptor(in_u, no_take, kHelTransferDescriptorIn, kHelRightsMax, 0,
					  &out),
			kHelErrBadRights);
	// Each handle still has the right the other direction needs.
	EXPECT_EQ(helTransferDescriptor(in_u, no_grant, kHelTransferDescriptorIn, kHelRightsMax, 0,
					  &out),
			kHelErrNone);
	EXPECT_EQ(info_of(out).type, kHelDescToken);
	EXPECT_EQ(helTransferDescriptor(t, no_take, kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
			kHelErrNone);
	EXPECT_EQ(out, 2);
	// The universe's rights are checked before the source handle is looked up.
	EXPECT_EQ(helTransferDescriptor(12345, no_grant, kHelTransferDescriptorOut, ~0u, 0, &out),
			kHelErrBadRights);
	// Closing in another universe needs Grant too.
	EXPECT_EQ(helCloseDescriptor(no_grant, in_u), kHelErrBadRights);
	EXPECT_EQ(helCloseDescriptor(no_take, in_u), kHelErrNone);
}

TEST(Universe, TransferWithBadUniverseOrSourceHandleFails) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle t = make_token();
	HelHandle q = make_queue();
	HelHandle s = make_space();
	HelHandle th = make_stopped_thread();
	HelHandle u = make_universe();
	HelHandle out = -1;
	for (HelHandle wrong : {t, q, s, th}) {
		EXPECT_EQ(helTransferDescriptor(t, wrong, kHelTransferDescriptorOut, kHelRightsMax, 0,
						  &out),
				kHelErrBadDescriptor)
				<< "universe handle " << wrong;
		EXPECT_EQ(helTransferDescriptor(1, wrong, kHelTransferDescriptorIn, kHelRightsMax, 0, &out),
				kHelErrBadDescriptor)
				<< "universe handle " << wrong;
	}
	HelHandle closed = make_universe();
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
	for (HelHandle forged : {closed, HelHandle{0}, HelHandle{-7}, HelHandle{1} << 40})
		EXPECT_EQ(helTransferDescriptor(t, forged, kHelTransferDescriptorOut, kHelRightsMax, 0,
						  &out),
				kHelErrNoDescriptor)
				<< "universe handle " << forged;
	// The source handle is looked up in the source universe: ours for Out, u's for In.
	EXPECT_EQ(helTransferDescriptor(closed, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
			kHelErrNoDescriptor);
	EXPECT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorIn, kHelRightsMax, 0, &out),
			kHelErrNoDescriptor)
			<< "u is empty, so no handle of ours names anything in it";
}

TEST(Universe, CreatedDescriptorsReportTypeAndDefaultRights) {
	helsim::Machine machine;
	auto attached = machine.attach();
	struct Case {
		HelHandle handle;
		int type;
		std::uint32_t rights;
	};
	for (const Case &c : {Case{make_universe(), kHelDescUniverse, kUniverseRights},
				 Case{make_queue(), kHelDescQueue, kQueueRights},
				 Case{make_token(), kHelDescToken, kHelRightNull},
				 Case{make_space(), kHelDescAddressSpace, kSpaceRights},
				 Case{make_stopped_thread(), kHelDescThread, kThreadRights}}) {
		HelDescriptorInfo info{-1};
		EXPECT_EQ(helDescriptorInfo(c.handle, &info), kHelErrNone);
		EXPECT_EQ(info.type, c.type) << "handle " << c.handle;
		EXPECT_EQ(info_of(c.handle).type, c.type) << "handle " << c.handle;
		EXPECT_EQ(info_of(c.handle).rights, c.rights) << "handle " << c.handle;
	}
	HelHandle u1 = make_universe(), u2 = make_universe();
	EXPECT_NE(u1, u2);
	EXPECT_EQ(info_of(u2).type, kHelDescUniverse);
}

TEST(Universe, DescriptorInfoErrors) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle t = make_token();
	HelHandle closed = make_token();
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
	HelDescriptorInfo info{-1};
	for (HelHandle bad : {closed, closed + 1, HelHandle{0}, HelHandle{-5}, HelHandle{1} << 40})
		EXPECT_EQ(helDescriptorInfo(bad, &info), kHelErrNoDescriptor) << "handle " << bad;
	EXPECT_EQ(info.type, -1) << "a failed call wrote the result";
	for (std::uintptr_t bad :
			{std::uintptr_t{0}, std::uintptr_t{8}, std::uintptr_t{1} << 60, ~std::uintptr_t{0}})
		EXPECT_EQ(helDescriptorInfo(t, reinterpret_cast<HelDescriptorInfo *>(bad)), kHelErrFault)
				<< "pointer " << bad;
}

// Every call below needs one specific right; a copy without it must be refused.
TEST(Universe, RightsNarrowedByTransferAreEnforced) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle q = make_queue();
	HelHandle s = make_space();
	HelHandle th = make_stopped_thread();
	HelHandle u = make_universe();
	HelHandle t = make_token();
	auto without = [](HelHandle h, std::uint32_t full, std::uint32_t right) {
		return narrowed(h, full & ~right);
	};
	std::uint8_t mask[8] = {1};
	std::size_t actual = 0;
	void *ptr = nullptr;
	HelHandle out = -1;

	HelHandle q_no_invoke = without(q, kQueueRights, kHelRightInvoke);
	EXPECT_EQ(helSubmitAsyncNop(q_no_invoke, 1), kHelErrBadRights);
	EXPECT_EQ(helDriveQueue(q_no_invoke, 0, 0), kHelErrBadRights);
	HelHandle q_no_wait = without(q, kQueueRights, kHelRightWait);
	EXPECT_EQ(helDriveQueue(q_no_wait, kHelDriveWait, 0), kHelErrBadRights);
	// thor asks for Wait even to drive without waiting (issue 10, item 4).
	EXPECT_EQ(helDriveQueue(q_no_wait, 0, 0), kHelErrBadRights);
	EXPECT_EQ(helSubmitAsyncNop(q_no_wait, 2), kHelErrNone);
	EXPECT_EQ(helAlertQueue(without(q, kQueueRights, kHelRightSignal)), kHelErrBadRights);
	EXPECT_EQ(helMapMemory(without(q, kQueueRights, kHelRightRead), kHelNullHandle, nullptr, 0,
					  4096, kHelMapProtRead, &ptr),
			kHelErrBadRights);
	EXPECT_EQ(helMapMemory(without(q, kQueueRights, kHelRightWrite), kHelNullHandle, nullptr, 0,
					  4096, kHelMapProtRead | kHelMapProtWrite, &ptr),
			kHelErrBadRights);
	EXPECT_EQ(helMapMemory(without(q, kQueueRights, kHelRightAssign), kHelNullHandle, nullptr, 0,
					  4096, kHelMapProtRead, &ptr),
			kHelErrBadRights);
	EXPECT_EQ(helMapMemory(q, without(s, kSpaceRights, kHelRightGrant), nullptr, 0, 4096,
					  kHelMapProtRead, &ptr),
			kHelErrBadRights);
	EXPECT_EQ(helUnmapMemory(without(s, kSpaceRights, kHelRightGrant),
					  reinterpret_cast<void *>(0x10000), 4096),
			kHelErrBadRights);
	for (std::uint32_t right : {kHelRightRead, kHelRightWrite, kHelRightAssign})
		EXPECT_EQ(helCreateThread(kHelNullHandle, without(s, kSpaceRights, right), kHelAbiSystemV,
						  reinterpret_cast<void *>(&idle_entry), nullptr, kHelThreadStopped, &out),
				kHelErrBadRights)
				<< "space without right " << right;
	for (std::uint32_t right : {kHelRightGrant, kHelRightTake, kHelRightAssign})
		EXPECT_EQ(helCreateThread(without(u, kUniverseRights, right), kHelNullHandle,
						  kHelAbiSystemV, reinterpret_cast<void *>(&idle_entry), nullptr,
						  kHelThreadStopped, &out),
				kHelErrBadRights)
				<< "universe without right " << right;
	HelHandle th_no_manage = without(th, kThreadRights, kHelRightManage);
	EXPECT_EQ(helResume(th_no_manage), kHelErrBadRights);
	EXPECT_EQ(helSetPriority(th_no_manage, 1), kHelErrBadRights);
	// helSetAffinity needs Write, as in thor (issue 10, item 9), and not Manage.
	EXPECT_EQ(helSetAffinity(without(th, kThreadRights, kHelRightWrite), mask, 1),
			kHelErrBadRights);
	EXPECT_EQ(helSetAffinity(th_no_manage, mask, 1), kHelErrNone);
	EXPECT_EQ(helGetAffinity(without(th, kThreadRights, kHelRightRead), mask, sizeof(mask),
					  &actual),
			kHelErrBadRights);
	EXPECT_EQ(helCloseDescriptor(without(u, kUniverseRights, kHelRightGrant), 1), kHelErrBadRights);
	EXPECT_EQ(helTransferDescriptor(t, without(u, kUniverseRights, kHelRightGrant),
					  kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
			kHelErrBadRights);
	// The full-rights originals still work.
	EXPECT_EQ(helSetPriority(th, 0), kHelErrNone);
	EXPECT_EQ(helGetAffinity(th, mask, sizeof(mask), &actual), kHelErrNone);
	EXPECT_EQ(helAlertQueue(q), kHelErrNone);
}

// Each call with a handle argument, and the descriptor type it expects there.
struct Probe {
	const char *name;
	int expects;
	std::function<HelError(HelHandle)> call;
};

std::vector<Probe> handle_probes(HelHandle token, HelHandle queue) {
	static std::uint8_t mask[8] = {1};
	static char credentials[16];
	static HelHandle out;
	static std::size_t actual;
	static void *mapped;
	auto ip = reinterpret_cast<void *>(&idle_entry);
	auto page = reinterpret_cast<void *>(0x10000);
	constexpr auto kOut = kHelTransferDescriptorOut;
	constexpr auto kIn = kHelTransferDescriptorIn;
	constexpr std::uint32_t kStop = kHelThreadStopped;
	return {
			{"helSubmitAsyncNop", kHelDescQueue,
					[](HelHandle h) { return helSubmitAsyncNop(h, 0); }},
			{"helDriveQueue", kHelDescQueue, [](HelHandle h) { return helDriveQueue(h, 0, 0); }},
			{"helAlertQueue", kHelDescQueue, [](HelHandle h) { return helAlertQueue(h); }},
			{"helMapMemory(memory)", kHelDescQueue,
					[](HelHandle h) {
						return helMapMemory(h, 0, nullptr, 0, 4096, kHelMapProtRead, &mapped);
					}},
			{"helMapMemory(space)", kHelDescAddressSpace,
					[=](HelHandle h) {
						return helMapMemory(queue, h, nullptr, 0, 4096, kHelMapProtRead, &mapped);
					}},
			{"helUnmapMemory", kHelDescAddressSpace,
					[=](HelHandle h) { return helUnmapMemory(h, page, 4096); }},
			{"helTransferDescriptor(Out)", kHelDescUniverse,
					[=](HelHandle h) {
						return helTransferDescriptor(token, h, kOut, ~0u, 0, &out);
					}},
			{"helTransferDescriptor(In)", kHelDescUniverse,
					[=](HelHandle h) { return helTransferDescriptor(1, h, kIn, ~0u, 0, &out); }},
			{"helCloseDescriptor", kHelDescUniverse,
					[](HelHandle h) { return helCloseDescriptor(h, 1); }},
			{"helCreateThread(universe)", kHelDescUniverse,
					[=](HelHandle h) {
						return helCreateThread(h, 0, kHelAbiSystemV, ip, nullptr, kStop, &out);
					}},
			{"helCreateThread(space)", kHelDescAddressSpace,
					[=](HelHandle h) {
						return helCreateThread(0, h, kHelAbiSystemV, ip, nullptr, kStop, &out);
					}},
			{"helResume", kHelDescThread, [](HelHandle h) { return helResume(h); }},
			{"helSetPriority", kHelDescThread, [](HelHandle h) { return helSetPriority(h, 0); }},
			{"helGetAffinity", kHelDescThread,
					[](HelHandle h) { return helGetAffinity(h, mask, sizeof(mask), &actual); }},
			{"helSetAffinity", kHelDescThread,
					[](HelHandle h) { return helSetAffinity(h, mask, 1); }},
			{"helGetCredentials", kHelDescThread,
					[](HelHandle h) { return helGetCredentials(h, 0, credentials); }},
	};
}

TEST(Universe, WrongTypeHandleIsBadDescriptorForEveryCall) {
	helsim::Machine machine;
	auto attached = machine.attach();
	struct Typed {
		HelHandle handle;
		int type;
	};
	HelHandle token = make_token();
	HelHandle queue = make_queue();
	std::vector<Typed> handles{{make_universe(), kHelDescUniverse}, {queue, kHelDescQueue},
			{make_space(), kHelDescAddressSpace}, {make_stopped_thread(), kHelDescThread},
			{token, kHelDescToken}};
	int checked = 0;
	for (const Probe &probe : handle_probes(token, queue)) {
		for (const Typed &h : handles) {
			if (h.type == probe.expects)
				continue;
			EXPECT_EQ(probe.call(h.handle), kHelErrBadDescriptor)
					<< probe.name << " with a descriptor of type " << h.type;
			++checked;
		}
		HelHandle closed = make_token();
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
		EXPECT_EQ(probe.call(closed), kHelErrNoDescriptor) << probe.name << " with a closed handle";
	}
	EXPECT_EQ(checked, 16 * 4);
	for (const Typed &h : handles)
		EXPECT_EQ(info_of(h.handle).type, h.type) << "a refused call changed handle " << h.handle;
}

TEST(Universe, ManyHandlesAcrossSegmentsCreateLookupAndClose) {
	helsim::Machine machine;
	auto attached = machine.attach({.name = "many", .new_universe = true});
	constexpr HelHandle kCount = 5000;
	std::vector<HelHandle> handles;
	for (HelHandle i = 0; i < kCount; ++i) {
		HelHandle h = (i % 50 == 0) ? make_universe() : make_token();
		ASSERT_EQ(h, i + 1) << "handles are handed out 1, 2, 3, ...";
		handles.push_back(h);
	}
	auto expected_type = [](HelHandle h) {
		return ((h - 1) % 50 == 0) ? kHelDescUniverse : kHelDescToken;
	};
	// Close two whole aligned blocks [1024, 3072): with 1024-slot segments both segments
	// become fully closed and are recycled. Close them out of order.
	for (HelHandle h = 3071; h >= 2048; --h)
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone) << h;
	for (HelHandle h = 1024; h < 2048; ++h)
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone) << h;
	for (HelHandle h : handles) {
		bool closed = h >= 1024 && h < 3072;
		EXPECT_EQ(info_of(h).type, closed ? -1 : expected_type(h)) << "handle " << h;
		if (closed) {
			EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNoDescriptor) << h;
		}
	}
	// New handles continue after the largest one ever handed out and resolve.
	std::vector<HelHandle> later;
	for (int i = 0; i < 2100; ++i) {
		later.push_back(make_token());
		ASSERT_EQ(later.back(), kCount + 1 + i);
	}
	for (HelHandle h : later)
		EXPECT_EQ(info_of(h).type, kHelDescToken) << h;
	// Close everything else; every handle ever given out is then gone.
	for (HelHandle h : handles) {
		if (h < 1024 || h >= 3072) {
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone) << h;
		}
	}
	for (HelHandle h : later)
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone) << h;
	for (HelHandle h = 1; h <= kCount + 2100; ++h)
		ASSERT_EQ(info_of(h).type, -1) << h;
	EXPECT_EQ(make_token(), kCount + 2101);
}

TEST(Universe, ConcurrentLookupsSurviveSegmentRecycling) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle early = make_token();
	std::vector<HelHandle> filler;
	for (int i = 0; i < 1500; ++i)
		filler.push_back(make_token());
	HelHandle late = make_universe(); // in the second segment, which stays open
	for (HelHandle h : filler)
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);

	std::atomic<bool> stop{false};
	std::atomic<bool> reading{false};
	std::atomic<long> lookups{0}, failures{0};
	std::thread reader{[&] {
		auto a = machine.attach({.name = "reader"});
		do {
			if (info_of(early).type != kHelDescToken)
				++failures;
			if (info_of(late).type != kHelDescUniverse)
				++failures;
			++lookups;
			reading = true;
		} while (!stop);
	}};
	while (!reading) {
		// Wait until the reader runs, so that churn and lookups overlap.
		std::this_thread::yield();
	}
	// Fill and empty several segments while the reader looks up handles in other ones.
	for (int round = 0; round < 4; ++round) {
		std::vector<HelHandle> batch;
		for (int i = 0; i < 2048; ++i)
			batch.push_back(make_token());
		for (HelHandle h : batch)
			ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, h), kHelErrNone);
	}
	stop = true;
	reader.join();
	EXPECT_EQ(failures.load(), 0);
	EXPECT_GT(lookups.load(), 0);
	EXPECT_EQ(info_of(early).type, kHelDescToken);
	EXPECT_EQ(info_of(late).type, kHelDescUniverse);
}

} // namespace
