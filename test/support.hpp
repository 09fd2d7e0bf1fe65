// Helpers shared by the tests: create objects from the calling simulated thread and read
// them back. Failures are reported through gtest's EXPECT so the calling test fails.
#pragma once

#include <gtest/gtest.h>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace helsim::test {

// Each kind's default rights as hel-reference.md (section 1) lists them: what a test expects a
// fresh handle to carry, stated independently of the kernel's rows (ObjectKindRights.* checks
// the rows against the creation paths).
inline constexpr std::uint32_t kUniverseRights = kHelRightGrant | kHelRightTake | kHelRightAssign;
inline constexpr std::uint32_t kQueueRights = kHelRightRead | kHelRightWrite | kHelRightInvoke |
		kHelRightAssign | kHelRightWait | kHelRightSignal;
inline constexpr std::uint32_t kThreadRights =
		kHelRightRead | kHelRightWrite | kHelRightWait | kHelRightSignal | kHelRightManage;
inline constexpr std::uint32_t kSpaceRights =
		kHelRightGrant | kHelRightRead | kHelRightWrite | kHelRightAssign | kHelRightProvision;
inline constexpr std::uint32_t kLaneRights = kHelRightInvoke | kHelRightManage;

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

// Type and rights of a handle (helsim::ext::describe_descriptor); type -1 when it fails.
inline helsim::ext::DescriptorInfo info_of(HelHandle h) {
	helsim::ext::DescriptorInfo info{-1, 0};
	if (helsim::ext::describe_descriptor(h, info) != kHelErrNone)
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

// A copy of `h` in the caller's own universe with rights narrowed to `rights`.
inline HelHandle narrowed(HelHandle h, std::uint32_t rights) {
	HelHandle out = kHelNullHandle;
	EXPECT_EQ(helTransferDescriptor(h, kHelThisUniverse, kHelTransferDescriptorOut, rights, 0,
					  &out),
			kHelErrNone);
	return out;
}

// A run that ended clean: not stuck, every thread returned (or ended in one of `outcomes`),
// nothing pending, nothing leaked.
inline void expect_clean(const RunReport &report,
		std::initializer_list<ThreadOutcome> outcomes = {ThreadOutcome::returned}) {
	EXPECT_FALSE(report.stuck) << report.to_string();
	for (const auto &t : report.threads)
		EXPECT_NE(std::find(outcomes.begin(), outcomes.end(), t.outcome), outcomes.end())
				<< t.name << ": " << to_string(t.outcome) << " " << t.message << " " << t.waits_on;
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

// Runs `body` as the one spawned thread `name` of a machine and expects a clean end.
inline void run_clean(MachineConfig config, const std::function<void()> &body,
		const std::string &name = "body") {
	Machine machine{std::move(config)};
	machine.spawn(name, [&](std::span<const HelHandle>) { body(); });
	expect_clean(machine.run());
}

inline const ThreadReport *find_thread(const RunReport &report, const std::string &name) {
	for (const auto &t : report.threads)
		if (t.name == name)
			return &t;
	return nullptr;
}

// Submits one SQ operation through `d` and waits for its completion element — or for the
// context ~0 element that reports a submission error instead.
template <typename T>
Element sq_call(Dispatcher &d, std::uint32_t opcode, const T &payload) {
	static std::atomic<std::uintptr_t> next_context{1};
	std::uintptr_t context = next_context++;
	d.submit(opcode, context, payload);
	d.flush();
	for (;;) {
		auto element = d.wait();
		if (element && (element->context() == context || element->context() == ~std::uintptr_t{0}))
			return std::move(*element);
		if (element)
			ADD_FAILURE() << "unexpected completion " << element->context();
	}
}

// Allocates `size` bytes of memory and maps it read-write into the caller's space.
inline void *map_new_memory(std::size_t size, HelHandle *handle_out = nullptr,
		std::uint32_t alloc_flags = 0) {
	HelHandle memory = kHelNullHandle;
	EXPECT_EQ(helAllocateMemory(size, alloc_flags, nullptr, &memory), kHelErrNone);
	void *pointer = nullptr;
	EXPECT_EQ(helMapMemory(memory, kHelNullHandle, nullptr, 0, size,
					  kHelMapProtRead | kHelMapProtWrite, &pointer),
			kHelErrNone);
	if (handle_out)
		*handle_out = memory;
	else
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, memory), kHelErrNone);
	return pointer;
}

// Starts `body` on a new thread of the caller's universe and address space (helCreateThread)
// and returns the thread's handle. The thread may outlive the caller's frame: whatever the
// body uses must live until it returns.
inline HelHandle start_thread(std::function<void()> body) {
	auto *heap = new std::function<void()>(std::move(body));
	auto trampoline = +[](std::uintptr_t argument) {
		std::unique_ptr<std::function<void()>> f{
				reinterpret_cast<std::function<void()> *>(argument)};
		(*f)();
	};
	HelHandle h = kHelNullHandle;
	HelError e = helCreateThread(kHelNullHandle, kHelNullHandle, kHelAbiSystemV,
			reinterpret_cast<void *>(trampoline), heap, 0, &h);
	EXPECT_EQ(e, kHelErrNone);
	if (e != kHelErrNone)
		delete heap;
	return h;
}

// Stores `value` into *word and wakes every thread waiting on it (see wait_for).
inline void set_and_wake(int *word, int value) {
	store(word, value);
	EXPECT_EQ(helFutexWake(word, 1u << 30), kHelErrNone);
}

// Death tests that die of a signal would leave core files behind; their children inherit
// this limit from the test process.
inline void disable_core_dumps() {
	rlimit none{0, 0};
	setrlimit(RLIMIT_CORE, &none);
}

} // namespace helsim::test
