// Extension syscalls and supercalls (helsim/extension.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <helsim/dispatcher.hpp>
#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using helsim::kFirstExtensionSyscall;
using helsim::kSyscallSlots;
using helsim::ext::Caller;

constexpr std::uint32_t kAdd = kFirstExtensionSyscall;
constexpr std::uint32_t kEcho = kFirstExtensionSyscall + 1;
constexpr std::uint32_t kComplete = kFirstExtensionSyscall + 2;
constexpr std::uint32_t kFailing = kFirstExtensionSyscall + 3;
constexpr std::uint32_t kInfo = kFirstExtensionSyscall + 4;

// Handlers are plain function pointers; they leave what they saw here. Each test makes its
// own machine and runs its calls one at a time.
std::mutex g_mutex;
std::vector<std::string> g_callers;
std::vector<unsigned> g_cpus;
HelWord g_args[9];

void reset_globals() {
	std::lock_guard lock{g_mutex};
	g_callers.clear();
	g_cpus.clear();
	std::fill(std::begin(g_args), std::end(g_args), HelWord{0});
}

std::vector<std::string> callers() {
	std::lock_guard lock{g_mutex};
	return g_callers;
}

HelError add_handler(Caller &caller, const HelWord *args, HelWord *outs) {
	{
		std::lock_guard lock{g_mutex};
		g_callers.push_back(caller.thread_name());
		g_cpus.push_back(caller.cpu());
	}
	outs[0] = args[0] + args[1];
	return kHelErrNone;
}

HelError echo_handler(Caller &, const HelWord *args, HelWord *outs) {
	{
		std::lock_guard lock{g_mutex};
		std::copy(args, args + 9, g_args);
	}
	outs[0] = ~args[0];
	outs[1] = args[8];
	outs[2] = args[4] ^ args[5];
	return kHelErrNone;
}

struct ValueResult {
	HelError error;
	int reserved;
	std::uint64_t value;
};

// args: queue, context, value, payload size (>= sizeof(ValueResult); the rest is 0xab).
HelError complete_handler(Caller &caller, const HelWord *args, HelWord *) {
	std::vector<std::byte> payload(std::max<std::size_t>(args[3], sizeof(ValueResult)),
			std::byte{0xab});
	ValueResult result{kHelErrNone, 0, args[2]};
	std::memcpy(payload.data(), &result, sizeof(result));
	return caller.complete(static_cast<HelHandle>(args[0]), args[1], payload);
}

HelError throwing_handler(Caller &caller, const HelWord *, HelWord *) {
	throw std::runtime_error("thrown by " + caller.thread_name());
}

HelError failing_handler(Caller &, const HelWord *, HelWord *outs) {
	outs[0] = 99;
	return kHelErrOutOfBounds;
}

// args: handle, user pointer for a helsim::ext::DescriptorInfo.
HelError info_handler(Caller &caller, const HelWord *args, HelWord *) {
	helsim::ext::DescriptorInfo info{};
	if (HelError e = caller.descriptor_info(static_cast<HelHandle>(args[0]), info);
			e != kHelErrNone)
		return e;
	if (!caller.copy_to_user(reinterpret_cast<void *>(args[1]), &info, sizeof(info)))
		return kHelErrFault;
	return kHelErrNone;
}

TEST(Extension, SyscallFromFiberPassesArgumentsAndResult) {
	reset_globals();
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kAdd, "test.add", add_handler);
	std::atomic<HelError> error{-1};
	std::atomic<HelWord> result{0};
	machine.spawn("adder", [&](std::span<const HelHandle>) {
		HelWord out = 0;
		error = helSyscall2_1(static_cast<int>(kAdd), 40, 2, &out);
		result = out;
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(error.load(), kHelErrNone);
	EXPECT_EQ(result.load(), 42u);
	EXPECT_EQ(callers(), std::vector<std::string>{"adder"});
	ASSERT_EQ(g_cpus.size(), 1u);
	EXPECT_LT(g_cpus[0], machine.config().cpus);
}

TEST(Extension, SyscallFromAttachedThread) {
	reset_globals();
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kAdd, "test.add", add_handler);
	auto attached = machine.attach({.name = "attached-caller"});
	HelWord out = 0;
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kAdd), ~HelWord{0}, 5, &out), kHelErrNone);
	EXPECT_EQ(out, 4u) << "64-bit arithmetic on the words, wrapping";
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kAdd), 1000, 234, &out), kHelErrNone);
	EXPECT_EQ(out, 1234u);
	EXPECT_EQ(callers(), (std::vector<std::string>{"attached-caller", "attached-caller"}));
	EXPECT_EQ(g_cpus, (std::vector<unsigned>{0, 0})) << "attached threads report CPU 0";
}

TEST(Extension, AllNineArgumentWordsAndThreeResultWordsPassThrough) {
	reset_globals();
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kEcho, "test.echo", echo_handler);
	auto attached = machine.attach();
	const HelWord args[9] = {0x1111111111111111, 0x8000000000000000, 2, 3, 0xfedcba9876543210,
			0x0123456789abcdef, 6, ~HelWord{0}, 0x8888};
	HelWord outs[3] = {};
	ASSERT_EQ(helsim_syscall(kEcho, args, outs), kHelErrNone);
	for (int i = 0; i < 9; ++i)
		EXPECT_EQ(g_args[i], args[i]) << "argument word " << i;
	EXPECT_EQ(outs[0], ~args[0]);
	EXPECT_EQ(outs[1], args[8]);
	EXPECT_EQ(outs[2], args[4] ^ args[5]);
	// A null outs pointer is allowed; the results are dropped.
	EXPECT_EQ(helsim_syscall(kEcho, args, nullptr), kHelErrNone);
}

TEST(Extension, HandlerErrorIsReturnedToTheCaller) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kFailing, "test.failing", failing_handler);
	auto attached = machine.attach();
	HelWord out = 0;
	EXPECT_EQ(helSyscall0_1(static_cast<int>(kFailing), &out), kHelErrOutOfBounds);
}

TEST(Extension, ExceptionFromHandlerReachesTheCaller) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kFailing, "test.throwing", throwing_handler);
	machine.spawn("fiber-caller",
			[](std::span<const HelHandle>) { helSyscall0(static_cast<int>(kFailing)); });
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	ASSERT_EQ(report.threads.size(), 1u);
	EXPECT_EQ(report.threads[0].outcome, helsim::ThreadOutcome::threw);
	EXPECT_EQ(report.threads[0].message, "thrown by fiber-caller");
	auto attached = machine.attach({.name = "host-caller"});
	try {
		helSyscall0(static_cast<int>(kFailing));
		ADD_FAILURE() << "the handler's exception was swallowed";
	} catch (const std::runtime_error &e) {
		EXPECT_STREQ(e.what(), "thrown by host-caller");
	}
	EXPECT_EQ(helNop(), kHelErrNone);
}

TEST(Extension, CompletePostsIntoADispatcherQueue) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kComplete, "test.complete", complete_handler);
	constexpr int kCount = 10;
	std::atomic<int> received{0};
	machine.spawn("completer", [&](std::span<const HelHandle>) {
		helsim::Dispatcher dispatcher;
		for (int i = 0; i < kCount; ++i)
			ASSERT_EQ(helSyscall4(static_cast<int>(kComplete),
							  static_cast<HelWord>(dispatcher.queue()), 100 + i, 0xdead0000 + i,
							  sizeof(ValueResult)),
					kHelErrNone);
		for (int i = 0; i < kCount; ++i) {
			auto element = dispatcher.wait();
			ASSERT_TRUE(element);
			EXPECT_EQ(element->context(), static_cast<std::uintptr_t>(100 + i)) << "order";
			EXPECT_EQ(element->payload().size(), sizeof(ValueResult));
			auto result = element->as<ValueResult>();
			EXPECT_EQ(result.error, kHelErrNone);
			EXPECT_EQ(result.value, 0xdead0000u + i);
			++received;
		}
		// A payload that is not a multiple of 8 is padded to 8 bytes, as every CQ piece is.
		ASSERT_EQ(helSyscall4(static_cast<int>(kComplete), static_cast<HelWord>(dispatcher.queue()),
						  7, 1, 21),
				kHelErrNone);
		auto odd = dispatcher.wait();
		ASSERT_TRUE(odd);
		EXPECT_EQ(odd->context(), 7u);
		ASSERT_EQ(odd->payload().size(), 24u);
		EXPECT_EQ(odd->as<ValueResult>().value, 1u);
		EXPECT_EQ(odd->payload()[20], std::byte{0xab});
		for (std::size_t i = 21; i < 24; ++i)
			EXPECT_EQ(odd->payload()[i], std::byte{0}) << "padding byte " << i;
		++received;
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(received.load(), kCount + 1);
	EXPECT_EQ(report.operations_pending(), 0u) << report.to_string();
	EXPECT_GE(report.counters.operations_completed, std::uint64_t{kCount + 1});
	EXPECT_GE(report.counters.completions_posted, std::uint64_t{kCount + 1});
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}

TEST(Extension, CompleteChecksTheQueueHandle) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kComplete, "test.complete", complete_handler);
	auto attached = machine.attach();
	HelQueueParameters params{0, 2, 1024, 0};
	HelHandle queue = kHelNullHandle, token = kHelNullHandle, no_invoke = kHelNullHandle;
	ASSERT_EQ(helCreateQueue(&params, &queue), kHelErrNone);
	ASSERT_EQ(helCreateToken(&token), kHelErrNone);
	ASSERT_EQ(helTransferDescriptor(queue, kHelThisUniverse, kHelTransferDescriptorOut,
					  kHelRightsMax & ~std::uint32_t{kHelRightInvoke}, 0, &no_invoke),
			kHelErrNone);
	auto complete = [](HelHandle h, std::size_t size) {
		return helSyscall4(static_cast<int>(kComplete), static_cast<HelWord>(h), 1, 2, size);
	};
	EXPECT_EQ(complete(token, 16), kHelErrBadDescriptor);
	EXPECT_EQ(complete(no_invoke, 16), kHelErrBadRights);
	EXPECT_EQ(complete(queue + 100, 16), kHelErrNoDescriptor);
	// 1024-byte chunks hold a 16-byte header plus at most 1008 bytes of payload.
	EXPECT_EQ(complete(queue, 1024 - sizeof(HelElement) + 8), kHelErrQueueTooSmall);
	EXPECT_EQ(complete(queue, 1024 - sizeof(HelElement)), kHelErrNone);
	helsim::ext::DescriptorInfo info{};
	helsim::ext::register_syscall(machine, kInfo, "test.info", info_handler);
	EXPECT_EQ(helSyscall2(static_cast<int>(kInfo), static_cast<HelWord>(no_invoke),
					  reinterpret_cast<HelWord>(&info)),
			kHelErrNone);
	EXPECT_EQ(info.type, kHelDescQueue);
	EXPECT_EQ(info.rights & kHelRightInvoke, 0u);
	EXPECT_EQ(helSyscall2(static_cast<int>(kInfo), static_cast<HelWord>(token), 0), kHelErrFault);
	EXPECT_EQ(helSyscall2(static_cast<int>(kInfo), 12345, reinterpret_cast<HelWord>(&info)),
			kHelErrNoDescriptor);
}

std::string invalid_argument_message(helsim::Machine &machine, std::uint32_t number,
		helsim::ext::SyscallHandler handler) {
	try {
		helsim::ext::register_syscall(machine, number, "bad", handler);
	} catch (const std::invalid_argument &e) {
		return e.what();
	}
	return "<no exception>";
}

TEST(Extension, RegisterRejectsNumbersOutsideTheExtensionRange) {
	helsim::Machine machine;
	for (std::uint32_t number : {0u, 2u, std::uint32_t{kHelNumCalls}, kFirstExtensionSyscall - 1,
				 static_cast<std::uint32_t>(kSyscallSlots), 100000u, 0x80000000u, ~0u}) {
		std::string message = invalid_argument_message(machine, number, add_handler);
		EXPECT_NE(message.find(std::to_string(number)), std::string::npos)
				<< "number " << number << ": " << message;
	}
	// Both ends of the range are usable.
	EXPECT_NO_THROW(
			helsim::ext::register_syscall(machine, kFirstExtensionSyscall, "first", add_handler));
	EXPECT_NO_THROW(helsim::ext::register_syscall(machine,
			static_cast<std::uint32_t>(kSyscallSlots - 1), "last", add_handler));
	auto attached = machine.attach();
	HelWord out = 0;
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kSyscallSlots - 1), 3, 4, &out), kHelErrNone);
	EXPECT_EQ(out, 7u);
}

TEST(Extension, RegisterRejectsDuplicatesAndMissingHandlers) {
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kAdd, "test.add", add_handler);
	EXPECT_THROW(helsim::ext::register_syscall(machine, kAdd, "test.other", failing_handler),
			std::invalid_argument);
	EXPECT_THROW(helsim::ext::register_syscall(machine, kEcho, "test.null", nullptr),
			std::invalid_argument);
	auto attached = machine.attach();
	HelWord out = 0;
	EXPECT_EQ(helSyscall2_1(static_cast<int>(kAdd), 1, 2, &out), kHelErrNone)
			<< "the first registration must stay in place";
	EXPECT_EQ(out, 3u);
	EXPECT_EQ(helSyscall0(static_cast<int>(kEcho)), kHelErrIllegalSyscall)
			<< "a refused registration must not install anything";
}

TEST(Extension, UnregisteredNumbersAreIllegalSyscalls) {
	helsim::Machine other;
	helsim::ext::register_syscall(other, kAdd, "test.add", add_handler);
	helsim::Machine machine;
	auto attached = machine.attach();
	// 92 was helCancelAsync, which Managarm removed; 113 is kHelNumCalls, one past the last call.
	for (std::uint32_t number :
			{0u, 92u, 113u, 200u, kAdd, 300u, static_cast<std::uint32_t>(kSyscallSlots - 1),
					static_cast<std::uint32_t>(kSyscallSlots), 100000u, 0x7fffffffu})
		EXPECT_EQ(helSyscall2(static_cast<int>(number), 1, 2), kHelErrIllegalSyscall)
				<< "number " << number << " (registrations of another machine do not count)";
}

TEST(Extension, SupercallReachesHandlerWithNumberAndArguments) {
	helsim::Machine machine;
	std::mutex mutex;
	struct Seen {
		std::uint32_t number;
		std::vector<HelWord> args;
		std::string thread;
	};
	std::vector<Seen> seen;
	helsim::ext::set_supercall_handler(machine,
			[&](Caller &caller, std::uint32_t number, const HelWord *args, HelWord *outs) {
				std::lock_guard lock{mutex};
				seen.push_back({number, {args, args + 9}, caller.thread_name()});
				outs[0] = number + args[0];
				return number == 0xffffffffu ? kHelErrUnsupportedOperation : kHelErrNone;
			});
	std::atomic<HelError> fiber_error{-1};
	machine.spawn("super-fiber", [&](std::span<const HelHandle>) {
		const HelWord args[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
		fiber_error = helsim_syscall(0xffffffffu, args, nullptr);
	});
	{
		auto attached = machine.attach({.name = "super-host"});
		HelWord out = 0;
		EXPECT_EQ(helSyscall6_1(static_cast<int>(0x80000007u), 10, 0xffffffffffffffff, 12,
						  0x8000000000000000, 14, 15, &out),
				kHelErrNone);
		EXPECT_EQ(out, 0x80000007u + 10);
		EXPECT_EQ(helSyscall0_1(static_cast<int>(0x80000000u), &out), kHelErrNone);
		EXPECT_EQ(out, 0x80000000u);
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	EXPECT_EQ(fiber_error.load(), kHelErrUnsupportedOperation);
	ASSERT_EQ(seen.size(), 3u);
	std::sort(seen.begin(), seen.end(), [](auto &a, auto &b) { return a.number < b.number; });
	EXPECT_EQ(seen[0].number, 0x80000000u);
	EXPECT_EQ(seen[0].args, std::vector<HelWord>(9, 0));
	EXPECT_EQ(seen[0].thread, "super-host");
	EXPECT_EQ(seen[1].number, 0x80000007u);
	EXPECT_EQ(seen[1].args,
			(std::vector<HelWord>{10, 0xffffffffffffffff, 12, 0x8000000000000000, 14, 15, 0, 0,
					0}));
	EXPECT_EQ(seen[1].thread, "super-host");
	EXPECT_EQ(seen[2].number, 0xffffffffu);
	EXPECT_EQ(seen[2].args, (std::vector<HelWord>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
	EXPECT_EQ(seen[2].thread, "super-fiber");
}

TEST(Extension, ReportCountsExtensionCallsByName) {
	reset_globals();
	helsim::Machine machine;
	helsim::ext::register_syscall(machine, kAdd, "test.add", add_handler);
	helsim::ext::register_syscall(machine, kEcho, "test.echo", echo_handler);
	machine.spawn("counter", [&](std::span<const HelHandle>) {
		HelWord out;
		for (int i = 0; i < 3; ++i)
			helSyscall2_1(static_cast<int>(kAdd), 1, 1, &out);
		helSyscall0(300); // unregistered: not counted under any name
	});
	{
		auto attached = machine.attach();
		HelWord out;
		helSyscall2_1(static_cast<int>(kAdd), 1, 1, &out);
		helSyscall2_1(static_cast<int>(kAdd), 1, 1, &out);
		helNop();
	}
	auto report = machine.run();
	EXPECT_FALSE(report.stuck) << report.to_string();
	auto count_of = [&](const std::string &name) -> std::int64_t {
		for (const auto &[n, c] : report.counters.syscalls)
			if (n == name)
				return static_cast<std::int64_t>(c);
		return -1;
	};
	EXPECT_EQ(count_of("test.add"), 5) << report.to_string();
	EXPECT_EQ(count_of("test.echo"), -1) << "never called, so not listed";
	EXPECT_EQ(count_of("helNop"), 1);
	for (const auto &[name, count] : report.counters.syscalls)
		EXPECT_FALSE(name.empty()) << "a counter without a name (count " << count << ")";
	EXPECT_NE(report.to_string().find("test.add"), std::string::npos);
	EXPECT_EQ(callers().size(), 5u);
}

} // namespace
