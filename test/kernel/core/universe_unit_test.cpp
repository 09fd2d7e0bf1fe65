// Universe (src/kernel/core/universe.*) on its own: a kernel on a FakeHost, no Machine and no
// simulated thread (docs/testing.md, "Unit tests of kernel objects"). Handle semantics seen
// through hel calls are in universe_test.cpp.
#include <gtest/gtest.h>

#include <new>
#include <vector>

#include "../fake_host.hpp"
#include "kernel/core/token.hpp"
#include "kernel/core/universe.hpp"

namespace {

using helsim::kernel::make_object;
using helsim::kernel::Object;
using helsim::kernel::ObjectKind;
using helsim::kernel::Ref;
using helsim::kernel::Resolved;
using helsim::kernel::Token;
using helsim::kernel::Universe;
using helsim::test::KernelUnderTest;

constexpr std::uint32_t kAll = kHelRightInvoke | kHelRightGrant;

TEST(UniverseUnit, HandlesStartAtOneAndAreNeverReused) {
	KernelUnderTest k;
	auto universe = make_object<Universe>(k.kernel);
	HelHandle first, second, third;
	ASSERT_EQ(universe->attach(make_object<Token>(k.kernel), kAll, first), kHelErrNone);
	ASSERT_EQ(universe->attach(make_object<Token>(k.kernel), kAll, second), kHelErrNone);
	EXPECT_EQ(first, 1);
	EXPECT_EQ(second, 2);
	ASSERT_EQ(universe->close(first), kHelErrNone);
	ASSERT_EQ(universe->attach(make_object<Token>(k.kernel), kAll, third), kHelErrNone);
	EXPECT_EQ(third, 3) << "a closed handle's number is not handed out again";
	EXPECT_EQ(universe->size(), 2u);
}

TEST(UniverseUnit, LookupReturnsTheObjectAndRightsAndTakesAReference) {
	KernelUnderTest k;
	auto universe = make_object<Universe>(k.kernel);
	auto token = make_object<Token>(k.kernel);
	HelHandle handle;
	ASSERT_EQ(universe->attach(token, kHelRightInvoke, handle), kHelErrNone);
	EXPECT_EQ(token->refs(), 2) << "ours and the descriptor's";
	{
		Resolved r;
		ASSERT_EQ(universe->lookup(handle, r), kHelErrNone);
		EXPECT_EQ(r.object.get(), token.get());
		EXPECT_EQ(r.rights, kHelRightInvoke);
		EXPECT_EQ(token->refs(), 3) << "a lookup holds its own reference";
	}
	EXPECT_EQ(token->refs(), 2);
	ASSERT_EQ(universe->close(handle), kHelErrNone);
	EXPECT_EQ(token->refs(), 1) << "closing drops the descriptor's reference";
}

TEST(UniverseUnit, UnknownClosedAndForgedHandlesAreNoDescriptor) {
	KernelUnderTest k;
	auto universe = make_object<Universe>(k.kernel);
	HelHandle handle;
	ASSERT_EQ(universe->attach(make_object<Token>(k.kernel), kAll, handle), kHelErrNone);
	Resolved r;
	const HelHandle forged[] = {kHelNullHandle, kHelThisUniverse, kHelThisThread, 2,
			HelHandle{1} << 40, -(HelHandle{1} << 40)};
	for (HelHandle bad : forged)
		EXPECT_EQ(universe->lookup(bad, r), kHelErrNoDescriptor) << "handle " << bad;
	ASSERT_EQ(universe->close(handle), kHelErrNone);
	EXPECT_EQ(universe->lookup(handle, r), kHelErrNoDescriptor);
	EXPECT_EQ(universe->close(handle), kHelErrNoDescriptor) << "closed twice";
	EXPECT_EQ(universe->close(HelHandle{1} << 40), kHelErrNoDescriptor);
}

TEST(UniverseUnit, ResolveChecksKindThenRights) {
	KernelUnderTest k;
	auto universe = make_object<Universe>(k.kernel);
	HelHandle token_handle;
	ASSERT_EQ(universe->attach(make_object<Token>(k.kernel), kHelRightInvoke, token_handle),
			kHelErrNone);
	EXPECT_EQ(universe->resolve<Token>(99, 0).error, kHelErrNoDescriptor);
	EXPECT_EQ(universe->resolve<Universe>(token_handle, 0).error, kHelErrBadDescriptor);
	EXPECT_EQ(universe->resolve<Token>(token_handle, kHelRightGrant).error, kHelErrBadRights);
	auto ok = universe->resolve<Token>(token_handle, kHelRightInvoke);
	ASSERT_TRUE(ok);
	EXPECT_EQ(ok.object->kind(), ObjectKind::token);
	EXPECT_EQ(ok.rights, kHelRightInvoke);
}

TEST(UniverseUnit, ManySegmentsAndCloseAll) {
	KernelUnderTest k;
	auto universe = make_object<Universe>(k.kernel);
	auto token = make_object<Token>(k.kernel);
	// More than one 1024-slot segment of the directory.
	constexpr int kHandles = 2500;
	std::vector<HelHandle> handles(kHandles);
	for (auto &h : handles)
		ASSERT_EQ(universe->attach(token, kAll, h), kHelErrNone);
	EXPECT_EQ(universe->size(), std::size_t{kHandles});
	EXPECT_EQ(token->refs(), 1 + kHandles);
	Resolved r;
	ASSERT_EQ(universe->lookup(handles.back(), r), kHelErrNone);
	EXPECT_EQ(r.object.get(), token.get());
	r = {};
	EXPECT_EQ(universe->handle_of(*token), handles.front());
	universe->close_all();
	EXPECT_EQ(universe->size(), 0u);
	EXPECT_EQ(token->refs(), 1);
	EXPECT_EQ(universe->lookup(handles.back(), r), kHelErrNoDescriptor);
	EXPECT_EQ(universe->handle_of(*token), kHelNullHandle);
}

TEST(UniverseUnit, DroppingTheUniverseReleasesItsDescriptors) {
	KernelUnderTest k;
	auto token = make_object<Token>(k.kernel);
	{
		auto universe = make_object<Universe>(k.kernel);
		HelHandle h;
		ASSERT_EQ(universe->attach(token, kAll, h), kHelErrNone);
		ASSERT_EQ(universe->attach(token, kAll, h), kHelErrNone);
		EXPECT_EQ(token->refs(), 3);
	}
	EXPECT_EQ(token->refs(), 1);
}

TEST(UniverseUnit, UniverseIdsCountFromOneInOrderOfCreation) {
	KernelUnderTest k;
	auto a = make_object<Universe>(k.kernel);
	auto b = make_object<Universe>(k.kernel);
	EXPECT_EQ(a->id(), 1u);
	EXPECT_EQ(b->id(), 2u);
}

TEST(UniverseUnit, HandleDirectoryRefusedByTheHostIsBadAlloc) {
	KernelUnderTest k;
	auto count_live = [&] {
		for (const auto &c : k.kernel.object_counts())
			if (c.kind == "universe")
				return c.live;
		return std::uint64_t{0};
	};
	{
		helsim::test::ScopedHostOperations refusing{helsim::test::host_refusing_allocations()};
		EXPECT_THROW(make_object<Universe>(k.kernel), std::bad_alloc);
	}
	EXPECT_EQ(count_live(), 0u) << "the half-built universe left the registry";
	auto universe = make_object<Universe>(k.kernel);
	EXPECT_EQ(count_live(), 1u) << "the host's next answer is heard";
}

} // namespace
