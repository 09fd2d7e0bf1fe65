// Tokens and credentials: helCreateToken and helGetCredentials.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

bool all_zero(const Credentials &c) {
	for (char b : c)
		if (b)
			return false;
	return true;
}

int load(const int *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }

// Blocks the calling simulated thread until *word == want.
void wait_for(int *word, int want) {
	for (int v = load(word); v != want; v = load(word)) {
		HelError e = helFutexWait(word, v, kHelWaitInfinite);
		ASSERT_TRUE(e == kHelErrNone || e == kHelErrFutexRace) << "helFutexWait: " << e;
	}
}

TEST(Token, CreateTokenHasTokenTypeAndNullRights) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle t = make_token();
	EXPECT_GE(t, 1);
	HelDescriptorInfo info{-1};
	ASSERT_EQ(helDescriptorInfo(t, &info), kHelErrNone);
	EXPECT_EQ(info.type, kHelDescToken);
	EXPECT_EQ(info_of(t).rights, kHelRightNull);
}

TEST(Token, EveryCreateGivesAnIndependentToken) {
	helsim::Machine machine;
	auto attached = machine.attach();
	std::set<HelHandle> handles;
	for (int i = 0; i < 50; ++i)
		handles.insert(make_token());
	EXPECT_EQ(handles.size(), 50u);
	HelHandle first = *handles.begin();
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, first), kHelErrNone);
	handles.erase(first);
	for (HelHandle h : handles)
		EXPECT_EQ(info_of(h).type, kHelDescToken) << h;
	EXPECT_EQ(info_of(first).type, -1);
}

TEST(Token, TransferredTokenKeepsTypeAndNullRights) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle t = make_token();
	HelHandle u = kHelNullHandle, in_u = -1, back = -1;
	ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &in_u),
			kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(in_u, u, kHelTransferDescriptorIn, kHelRightsMax, 0, &back),
			kHelErrNone);
	EXPECT_EQ(info_of(back).type, kHelDescToken);
	EXPECT_EQ(info_of(back).rights, kHelRightNull) << "a transfer added rights";
	HelHandle out = -1;
	EXPECT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, kHelRightGrant,
					  &out),
			kHelErrBadRights);
}

TEST(Token, GetCredentialsOfThisThreadIsStableAndWritesSixteenBytes) {
	helsim::Machine machine;
	auto attached = machine.attach();
	char buffer[20];
	std::memset(buffer, 0x5a, sizeof(buffer));
	ASSERT_EQ(helGetCredentials(kHelThisThread, 0, buffer), kHelErrNone);
	for (int i = 16; i < 20; ++i)
		EXPECT_EQ(buffer[i], 0x5a) << "wrote past 16 bytes at " << i;
	Credentials first{};
	std::memcpy(first.data(), buffer, 16);
	EXPECT_FALSE(all_zero(first));
	for (int i = 0; i < 10; ++i)
		EXPECT_EQ(credentials_of(kHelThisThread), first);
}

TEST(Token, CredentialsDifferBetweenThreads) {
	helsim::Machine machine;
	std::mutex mutex;
	std::vector<Credentials> seen;
	auto record = [&](const Credentials &c) {
		std::lock_guard lock{mutex};
		seen.push_back(c);
	};
	constexpr int kFibers = 4;
	std::atomic<int> stable{0};
	for (int i = 0; i < kFibers; ++i)
		machine.spawn("fiber" + std::to_string(i), [&](std::span<const HelHandle>) {
			Credentials c = credentials_of(kHelThisThread);
			if (credentials_of(kHelThisThread) == c)
				++stable;
			record(c);
		});
	{
		auto attached = machine.attach({.name = "main"});
		record(credentials_of(kHelThisThread));
		std::thread other{[&] {
			auto a = machine.attach({.name = "other"});
			record(credentials_of(kHelThisThread));
		}};
		other.join();
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(stable.load(), kFibers);
	ASSERT_EQ(seen.size(), std::size_t{kFibers + 2});
	std::set<Credentials> distinct(seen.begin(), seen.end());
	EXPECT_EQ(distinct.size(), seen.size()) << "two threads share credentials";
}

struct ChildView {
	Credentials own{};
	int done = 0;
};

void report_own_credentials(std::uintptr_t argument) {
	auto *view = reinterpret_cast<ChildView *>(argument);
	helGetCredentials(kHelThisThread, 0, view->own.data());
	__atomic_store_n(&view->done, 1, __ATOMIC_SEQ_CST);
	helFutexWake(&view->done, 1);
}

TEST(Token, ThreadHandleCredentialsMatchTheThreadsOwnView) {
	helsim::Machine machine;
	ChildView view;
	{
		auto attached = machine.attach({.name = "parent"});
		HelHandle child = kHelNullHandle;
		ASSERT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
						  reinterpret_cast<void *>(&report_own_credentials), &view, 0, &child),
				kHelErrNone);
		wait_for(&view.done, 1);
		Credentials through_handle = credentials_of(child);
		EXPECT_EQ(through_handle, view.own);
		EXPECT_NE(through_handle, credentials_of(kHelThisThread));
		EXPECT_EQ(credentials_of(child), through_handle) << "credentials changed";

		// A thread that never ran has credentials too, its own and stable ones.
		HelHandle stopped = make_stopped_thread();
		Credentials s = credentials_of(stopped);
		EXPECT_EQ(credentials_of(stopped), s);
		EXPECT_NE(s, through_handle);
		EXPECT_NE(s, credentials_of(kHelThisThread));
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, stopped), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, child), kHelErrNone);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Token, GetCredentialsRejectsNonZeroFlags) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle thread = make_stopped_thread();
	char buffer[16];
	std::memset(buffer, 0x33, sizeof(buffer));
	for (std::uint32_t flags : {1u, 2u, 0x100u, 0x80000000u, ~0u}) {
		EXPECT_EQ(helGetCredentials(kHelThisThread, flags, buffer), kHelErrIllegalArgs) << flags;
		EXPECT_EQ(helGetCredentials(thread, flags, buffer), kHelErrIllegalArgs) << flags;
	}
	// Flags are checked before the handle and the pointer.
	EXPECT_EQ(helGetCredentials(HelHandle{1} << 40, 1, nullptr), kHelErrIllegalArgs);
	for (char b : buffer)
		EXPECT_EQ(b, 0x33) << "a refused call wrote the buffer";
}

TEST(Token, GetCredentialsRejectsHandlesThatAreNotThreads) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle token = make_token();
	HelQueueParameters params{0, 2, 1024, 0};
	HelHandle queue = kHelNullHandle, universe = kHelNullHandle, space = kHelNullHandle;
	ASSERT_EQ(helCreateQueue(&params, &queue), kHelErrNone);
	ASSERT_EQ(helCreateUniverse(&universe), kHelErrNone);
	ASSERT_EQ(helCreateSpace(&space), kHelErrNone);
	char buffer[16] = {};
	for (HelHandle h : {token, queue, universe, space})
		EXPECT_EQ(helGetCredentials(h, 0, buffer), kHelErrBadDescriptor) << "handle " << h;
	HelHandle closed = make_stopped_thread();
	ASSERT_EQ(helCloseDescriptor(kHelThisUniverse, closed), kHelErrNone);
	for (HelHandle h : {closed, closed + 1, HelHandle{0}, HelHandle{kHelThisUniverse},
				 HelHandle{-9}, HelHandle{1} << 40})
		EXPECT_EQ(helGetCredentials(h, 0, buffer), kHelErrNoDescriptor) << "handle " << h;
}

TEST(Token, GetCredentialsFaultsOnBadPointer) {
	helsim::Machine machine;
	auto attached = machine.attach();
	HelHandle thread = make_stopped_thread();
	for (std::uintptr_t bad : {std::uintptr_t{0}, std::uintptr_t{16}, std::uintptr_t{4095},
				 std::uintptr_t{1} << 60, ~std::uintptr_t{0} - 8}) {
		auto *p = reinterpret_cast<char *>(bad);
		EXPECT_EQ(helGetCredentials(kHelThisThread, 0, p), kHelErrFault) << "pointer " << bad;
		EXPECT_EQ(helGetCredentials(thread, 0, p), kHelErrFault) << "pointer " << bad;
	}
	// A range that starts canonical but runs past the end of user space.
	auto *edge = reinterpret_cast<char *>((std::uintptr_t{1} << 47) - 8);
	EXPECT_EQ(helGetCredentials(kHelThisThread, 0, edge), kHelErrFault);
}

TEST(Token, TokensLeftOpenDoNotLeak) {
	helsim::Machine machine;
	std::atomic<int> made{0};
	machine.spawn("owner", [&](std::span<const HelHandle>) {
		for (int i = 0; i < 10; ++i)
			if (make_token() > 0)
				++made;
		// Copies inside a nested universe are freed with it.
		HelHandle u = kHelNullHandle, out = -1;
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(1, u, kHelTransferDescriptorOut, kHelRightsMax, 0, &out),
				kHelErrNone);
	});
	{
		auto attached = machine.attach({.name = "fresh", .new_universe = true});
		make_token();
		make_token();
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(made.load(), 10);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Token, TokenInAUniverseThatLeaksIsReported) {
	helsim::Machine machine;
	machine.spawn("cycle", [&](std::span<const HelHandle>) {
		HelHandle u = kHelNullHandle, self_copy = -1, token_copy = -1;
		ASSERT_EQ(helCreateUniverse(&u), kHelErrNone);
		HelHandle t = make_token();
		ASSERT_EQ(helTransferDescriptor(t, u, kHelTransferDescriptorOut, kHelRightsMax, 0,
						  &token_copy),
				kHelErrNone);
		ASSERT_EQ(helTransferDescriptor(u, u, kHelTransferDescriptorOut, kHelRightsMax, 0,
						  &self_copy),
				kHelErrNone);
	});
	auto report = machine.run();
	ASSERT_FALSE(report.stuck) << report.to_string();
	int universes = 0, tokens = 0;
	for (const auto &leak : report.leaks) {
		universes += leak.kind == "universe";
		tokens += leak.kind == "token";
	}
	EXPECT_EQ(universes, 1) << report.to_string();
	EXPECT_EQ(tokens, 1) << report.to_string();
}

TEST(Token, TheHardwareAccessTokenIsOneInvokeHandleInTheRootUniverse) {
	helsim::Machine machine;
	HelHandle token = machine.hardware_access_token();
	EXPECT_GE(token, 1);
	EXPECT_EQ(machine.hardware_access_token(), token); // one token, one handle
	std::atomic<int> checked{0};
	machine.spawn("driver",
			[&](std::span<const HelHandle> handles) {
				ASSERT_EQ(handles.size(), 1u);
				HelDescriptorInfo info{-1};
				ASSERT_EQ(helDescriptorInfo(handles[0], &info), kHelErrNone);
				EXPECT_EQ(info.type, kHelDescToken);
				EXPECT_EQ(info_of(handles[0]).rights, kHelRightInvoke);
				checked = 1;
			},
			{token});
	auto report = machine.run();
	EXPECT_EQ(checked.load(), 1);
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string(); // the machine keeps it on purpose
}

} // namespace
