// kernel_counter: a new object kind, a counter that lives in the kernel, with rights of its own.
//
// A handle to a counter may carry any of three rights, each gating one syscall:
//   kRightAdd    helsimCounterAdd(handle, delta) -> the new value
//   kRightRead   helsimCounterRead(handle) -> the value
//   kRightReset  helsimCounterReset(handle) -> the value before the reset (now 0)
// helsimCounterCreate(initial) -> a handle with all three. Handles move between universes like
// any descriptor (helTransferDescriptor, push/pull descriptor actions), and a handle given with
// fewer rights cannot call what they gate: rights only ever narrow.
//
// Header-only, so that the example, its test and its benchmark share it:
//   kernel_counter::install(machine);   // once per machine, before the calls
#pragma once

#include <atomic>
#include <cstdint>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace kernel_counter {

inline constexpr const char *kKindName = "kernel counter";
// What helDescriptorInfo reports for a counter handle: any value no kHelDesc* uses.
inline constexpr int kDescCounter = 0x4b43;

inline constexpr std::uint32_t kRightAdd = helsim::ext::kind_right(0);
inline constexpr std::uint32_t kRightRead = helsim::ext::kind_right(1);
inline constexpr std::uint32_t kRightReset = helsim::ext::kind_right(2);
inline constexpr std::uint32_t kAllRights = kRightAdd | kRightRead | kRightReset;

inline constexpr std::uint32_t kCallCreate = helsim::kFirstExtensionSyscall + 32;
inline constexpr std::uint32_t kCallAdd = kCallCreate + 1;
inline constexpr std::uint32_t kCallRead = kCallCreate + 2;
inline constexpr std::uint32_t kCallReset = kCallCreate + 3;

// The object. Its destructor is the kind's teardown hook; a counter needs none beyond it.
class Counter final : public helsim::ext::KernelObject {
public:
	explicit Counter(std::uint64_t initial) : value_{initial} {}

	std::uint64_t add(std::uint64_t delta) {
		return value_.fetch_add(delta, std::memory_order_relaxed) + delta;
	}
	std::uint64_t read() const { return value_.load(std::memory_order_relaxed); }
	std::uint64_t reset() { return value_.exchange(0, std::memory_order_relaxed); }

private:
	std::atomic<std::uint64_t> value_;
};

namespace detail {

// The handlers are plain functions: each finds the kind by name in the caller's machine.
inline HelError create(helsim::ext::Caller &caller, const HelWord *args, HelWord *outs) {
	auto kind = caller.object_kind(kKindName);
	if (!kind)
		return kHelErrIllegalState; // install() was not called on this machine
	auto counter = caller.create<Counter>(*kind, args[0]);
	HelHandle handle;
	if (HelError e = caller.attach(*counter, handle); e != kHelErrNone)
		return e;
	outs[0] = static_cast<HelWord>(handle);
	return kHelErrNone;
}

inline HelError add(helsim::ext::Caller &caller, const HelWord *args, HelWord *outs) {
	auto counter = caller.resolve<Counter>(static_cast<HelHandle>(args[0]), kRightAdd);
	if (!counter)
		return counter.error;
	outs[0] = counter.object->add(args[1]);
	return kHelErrNone;
}

inline HelError read(helsim::ext::Caller &caller, const HelWord *args, HelWord *outs) {
	auto counter = caller.resolve<Counter>(static_cast<HelHandle>(args[0]), kRightRead);
	if (!counter)
		return counter.error;
	outs[0] = counter.object->read();
	return kHelErrNone;
}

inline HelError reset(helsim::ext::Caller &caller, const HelWord *args, HelWord *outs) {
	auto counter = caller.resolve<Counter>(static_cast<HelHandle>(args[0]), kRightReset);
	if (!counter)
		return counter.error;
	outs[0] = counter.object->reset();
	return kHelErrNone;
}

} // namespace detail

// Registers the kind and its four syscalls on `machine`.
inline void install(helsim::Machine &machine) {
	helsim::ext::register_object_kind(machine,
			{.name = kKindName,
					.rights = kAllRights,
					.default_rights = kAllRights,
					.descriptor_type = kDescCounter});
	helsim::ext::register_syscall(machine, kCallCreate, "helsimCounterCreate", detail::create);
	helsim::ext::register_syscall(machine, kCallAdd, "helsimCounterAdd", detail::add);
	helsim::ext::register_syscall(machine, kCallRead, "helsimCounterRead", detail::read);
	helsim::ext::register_syscall(machine, kCallReset, "helsimCounterReset", detail::reset);
}

// The user side: thin wrappers over Managarm's raw syscall stubs.
inline HelError create(std::uint64_t initial, HelHandle &handle) {
	HelWord out = 0;
	HelError e = helSyscall1_1(static_cast<int>(kCallCreate), initial, &out);
	handle = static_cast<HelHandle>(out);
	return e;
}

inline HelError add(HelHandle counter, std::uint64_t delta, std::uint64_t &value) {
	HelWord out = 0;
	HelError e =
			helSyscall2_1(static_cast<int>(kCallAdd), static_cast<HelWord>(counter), delta, &out);
	value = out;
	return e;
}

inline HelError read(HelHandle counter, std::uint64_t &value) {
	HelWord out = 0;
	HelError e = helSyscall1_1(static_cast<int>(kCallRead), static_cast<HelWord>(counter), &out);
	value = out;
	return e;
}

inline HelError reset(HelHandle counter, std::uint64_t &before) {
	HelWord out = 0;
	HelError e = helSyscall1_1(static_cast<int>(kCallReset), static_cast<HelWord>(counter), &out);
	before = out;
	return e;
}

} // namespace kernel_counter
