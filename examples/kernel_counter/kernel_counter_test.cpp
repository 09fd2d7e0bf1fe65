// examples/kernel_counter: a new object kind with rights of its own (docs/extending.md, 3).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <span>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>
#include <helsim/testing.hpp>

#include "kernel_counter.hpp"

namespace {

using namespace kernel_counter;

helsim::ext::DescriptorInfo info_of(HelHandle handle) {
	helsim::ext::DescriptorInfo info{-1, 0};
	EXPECT_EQ(helsim::ext::describe_descriptor(handle, info), kHelErrNone) << "handle " << handle;
	return info;
}

// Every call of the kind on a fresh counter: runs on a simulated thread.
void happy_path() {
	HelHandle counter = kHelNullHandle;
	ASSERT_EQ(create(5, counter), kHelErrNone);
	std::uint64_t value = 0;
	ASSERT_EQ(add(counter, 3, value), kHelErrNone);
	EXPECT_EQ(value, 8u);
	ASSERT_EQ(add(counter, 4, value), kHelErrNone);
	EXPECT_EQ(value, 12u);
	ASSERT_EQ(read(counter, value), kHelErrNone);
	EXPECT_EQ(value, 12u);
	ASSERT_EQ(reset(counter, value), kHelErrNone);
	EXPECT_EQ(value, 12u) << "reset returns the value it cleared";
	ASSERT_EQ(read(counter, value), kHelErrNone);
	EXPECT_EQ(value, 0u);

	HelDescriptorInfo hel_info{};
	ASSERT_EQ(helDescriptorInfo(counter, &hel_info), kHelErrNone);
	EXPECT_EQ(hel_info.type, kDescCounter);
	EXPECT_EQ(info_of(counter).rights, kAllRights);

	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, counter), kHelErrNone);
	EXPECT_EQ(add(counter, 1, value), kHelErrNoDescriptor) << "a closed handle";
}

void expect_clean(const helsim::RunReport &report) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
	auto counted = std::find_if(report.counters.objects.begin(), report.counters.objects.end(),
			[](const helsim::ObjectCount &c) { return c.kind == kKindName; });
	ASSERT_NE(counted, report.counters.objects.end()) << report.counters.to_table();
	EXPECT_EQ(counted->created, 1u);
	EXPECT_EQ(counted->live, 0u);
}

TEST(ExtendingKernelCounter, HappyPathInThreadsMode) {
	helsim::Machine machine;
	install(machine);
	machine.spawn("counter-user", [](std::span<const HelHandle>) { happy_path(); });
	expect_clean(machine.run());
}

TEST(ExtendingKernelCounter, HappyPathOnEverySeed) {
	helsim::testing::for_each_seed([](std::uint64_t seed) {
		helsim::Machine machine{helsim::testing::deterministic(seed)};
		install(machine);
		machine.spawn("counter-user", [](std::span<const HelHandle>) { happy_path(); });
		expect_clean(machine.run());
	});
}

TEST(ExtendingKernelCounter, RightsNarrowAcrossTransferDescriptor) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	HelHandle counter = kHelNullHandle;
	ASSERT_EQ(create(1, counter), kHelErrNone);

	// A read-only copy can read and nothing else.
	HelHandle reader = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(counter, kHelThisUniverse, kHelTransferDescriptorOut,
					  kRightRead, 0, &reader),
			kHelErrNone);
	EXPECT_EQ(info_of(reader).rights, kRightRead);
	std::uint64_t value = 0;
	ASSERT_EQ(read(reader, value), kHelErrNone);
	EXPECT_EQ(value, 1u);
	EXPECT_EQ(add(reader, 1, value), kHelErrBadRights);
	EXPECT_EQ(reset(reader, value), kHelErrBadRights);

	// Exposing everything from the copy gives it nothing back, and requiring what it lacks fails.
	HelHandle again = kHelNullHandle;
	ASSERT_EQ(helTransferDescriptor(reader, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax, 0, &again),
			kHelErrNone);
	EXPECT_EQ(info_of(again).rights, kRightRead) << "rights never grow";
	EXPECT_EQ(helTransferDescriptor(reader, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax, kRightAdd, &again),
			kHelErrBadRights);

	// Into another universe and back with add only: the object is the same counter.
	HelHandle universe = kHelNullHandle, inside = kHelNullHandle, adder = kHelNullHandle;
	ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(counter, universe, kHelTransferDescriptorOut,
					  kRightAdd | kRightRead, 0, &inside),
			kHelErrNone);
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, counter), kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(inside, universe, kHelTransferDescriptorIn, kRightAdd, 0,
					  &adder),
			kHelErrNone);
	ASSERT_EQ(add(adder, 9, value), kHelErrNone);
	EXPECT_EQ(value, 10u) << "the counter survived its first handle's close and the transfers";
	EXPECT_EQ(read(adder, value), kHelErrBadRights);
	ASSERT_EQ(read(reader, value), kHelErrNone);
	EXPECT_EQ(value, 10u);
}

TEST(ExtendingKernelCounter, RightsNarrowAcrossPushDescriptor) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	HelHandle counter = kHelNullHandle, a = kHelNullHandle, b = kHelNullHandle;
	ASSERT_EQ(create(0, counter), kHelErrNone);
	ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
	helsim::Dispatcher dispatcher;

	// Pushed exposing add and read, pulled requiring add: the pulled handle has both.
	const auto push = helsim::ipc::push_descriptor(counter, kRightAdd | kRightRead);
	const auto pull = helsim::ipc::pull_descriptor(kRightAdd);
	helsim::ipc::submit(dispatcher, a, 1, push);
	helsim::ipc::submit(dispatcher, b, 2, pull);
	HelHandle pulled = kHelNullHandle;
	for (int i = 0; i < 2; ++i) {
		auto element = dispatcher.wait();
		ASSERT_TRUE(element);
		if (element->context() == 1) {
			auto [pushed] = helsim::ipc::parse<decltype(push)>(*element);
			EXPECT_EQ(pushed.error, kHelErrNone);
		} else {
			auto [got] = helsim::ipc::parse<decltype(pull)>(*element);
			ASSERT_EQ(got.error, kHelErrNone);
			pulled = got.handle;
		}
	}
	EXPECT_EQ(info_of(pulled).rights, kRightAdd | kRightRead);
	std::uint64_t value = 0;
	ASSERT_EQ(add(pulled, 2, value), kHelErrNone);
	EXPECT_EQ(value, 2u);
	EXPECT_EQ(reset(pulled, value), kHelErrBadRights);

	// A pull that requires reset, which the push did not expose, fails on the pulling side.
	const auto narrow = helsim::ipc::push_descriptor(counter, kRightRead);
	const auto demanding = helsim::ipc::pull_descriptor(kRightReset);
	helsim::ipc::submit(dispatcher, a, 3, narrow);
	helsim::ipc::submit(dispatcher, b, 4, demanding);
	for (int i = 0; i < 2; ++i) {
		auto element = dispatcher.wait();
		ASSERT_TRUE(element);
		if (element->context() == 4) {
			auto [got] = helsim::ipc::parse<decltype(demanding)>(*element);
			EXPECT_EQ(got.error, kHelErrBadRights);
		}
	}
}

TEST(ExtendingKernelCounter, BadHandleAndWrongKind) {
	helsim::Machine machine;
	install(machine);
	auto attached = machine.attach();
	std::uint64_t value = 0;
	EXPECT_EQ(add(kHelNullHandle, 1, value), kHelErrNoDescriptor);
	EXPECT_EQ(add(0x7fff'0000, 1, value), kHelErrNoDescriptor) << "a forged handle";
	HelHandle token = kHelNullHandle;
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	EXPECT_EQ(add(token, 1, value), kHelErrBadDescriptor) << "a built-in object";
	EXPECT_EQ(read(token, value), kHelErrBadDescriptor);
}

TEST(ExtendingKernelCounter, CreateWithoutTheKindIsIllegalState) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kCallCreate, "helsimCounterCreate", detail::create);
	auto attached = machine.attach();
	HelHandle counter = kHelNullHandle;
	EXPECT_EQ(create(0, counter), kHelErrIllegalState);
}

TEST(ExtendingKernelCounter, LeakReportNamesTheKind) {
	helsim::Machine machine;
	install(machine);
	machine.spawn("leaker", [](std::span<const HelHandle>) {
		// A universe that holds itself and a counter: nothing can close either.
		HelHandle u = kHelNullHandle, counter = kHelNullHandle, out = kHelNullHandle;
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		ASSERT_EQ(create(7, counter), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(counter, u, kHelTransferDescriptorOut, kHelRightsMax, 0,
						  &out),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(u, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
				kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, u), kHelErrNone);
		ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, counter), kHelErrNone);
	});
	auto report = machine.run();
	ASSERT_EQ(report.leaks.size(), 2u) << report.to_string();
	auto leaked = std::find_if(report.leaks.begin(), report.leaks.end(),
			[](const helsim::LeakedObject &l) { return l.kind == kKindName; });
	ASSERT_NE(leaked, report.leaks.end()) << report.to_string();
	EXPECT_EQ(leaked->description, kKindName);
	EXPECT_NE(report.to_string().find(std::string{"leaked "} + kKindName), std::string::npos);
}

} // namespace
