// Helpers shared by the tests: create objects from the calling simulated thread and read
// them back. Failures are reported through gtest's EXPECT so the calling test fails.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>

#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::test {

using Credentials = std::array<char, 16>;

inline HelHandle make_universe() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateUniverse(&h), kHelErrNone);
	return h;
}

inline HelHandle make_token() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateToken(&h), kHelErrNone);
	return h;
}

// A small queue without SQ chunks (two 1 KiB CQ chunks).
inline HelHandle make_queue() {
	HelQueueParameters params{0, 2, 1024, 0};
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateQueue(&params, &h), kHelErrNone);
	return h;
}

inline HelHandle make_space() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateSpace(&h), kHelErrNone);
	return h;
}

inline void idle_entry(std::uintptr_t) {}

// A thread of the caller's universe and space, created with kHelThreadStopped.
inline HelHandle make_stopped_thread() {
	HelHandle h = kHelNullHandle;
	EXPECT_EQ(helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
					  reinterpret_cast<void *>(&idle_entry), nullptr, kHelThreadStopped, &h),
			kHelErrNone);
	return h;
}

// helDescriptorInfo; type -1 when the call fails.
inline HelDescriptorInfo info_of(HelHandle h) {
	HelDescriptorInfo info{-1, 0};
	if (helDescriptorInfo(h, &info) != kHelErrNone)
		info = {-1, 0};
	return info;
}

inline Credentials credentials_of(HelHandle h) {
	Credentials c{};
	EXPECT_EQ(helGetCredentials(h, 0, c.data()), kHelErrNone) << "handle " << h;
	return c;
}

inline int load(const int *word) { return __atomic_load_n(word, __ATOMIC_SEQ_CST); }
inline void store(int *word, int value) { __atomic_store_n(word, value, __ATOMIC_SEQ_CST); }

// Blocks the calling simulated thread until *word == want; false if helFutexWait misbehaves.
inline bool wait_for(int *word, int want) {
	for (int v = load(word); v != want; v = load(word)) {
		HelError e = helFutexWait(word, v, kHelWaitInfinite);
		if (e != kHelErrNone && e != kHelErrFutexRace)
			return false;
	}
	return true;
}

inline const ThreadReport *find_thread(const RunReport &report, const std::string &name) {
	for (const auto &t : report.threads)
		if (t.name == name)
			return &t;
	return nullptr;
}

} // namespace helsim::test
