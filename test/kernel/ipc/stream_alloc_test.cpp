// A warm exchange allocates nothing on the heap (src/kernel/ipc/stream_cache.hpp): packets, the
// kernel's copy of a send of up to 4096 bytes and the copy object of a larger send are recycled
// per host thread. Counted by replacing the global operator new of this test binary; builds
// with a sanitizer keep the sanitizer's own, and skip the test.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

#include "../../support.hpp"
#include "sim/sanitizers.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/ipc.hpp>
#include <helsim/machine.hpp>

#if !defined(HELSIM_ASAN) && !defined(HELSIM_TSAN)
namespace {
// Allocations made by this host thread while `counting` is set. The kernel runs a syscall
// inline on its caller, so an attached host thread counts its kernel's work too.
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
} // namespace

// GCC sees free() of what an inlined operator new returned; these replacements are the pair.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void *operator new(std::size_t bytes) {
	if (counting)
		++allocations;
	if (void *p = std::malloc(bytes ? bytes : 1))
		return p;
	throw std::bad_alloc{};
}
void *operator new[](std::size_t bytes) { return ::operator new(bytes); }
void *operator new(std::size_t bytes, const std::nothrow_t &) noexcept {
	if (counting)
		++allocations;
	return std::malloc(bytes ? bytes : 1);
}
void *operator new[](std::size_t bytes, const std::nothrow_t &tag) noexcept {
	return ::operator new(bytes, tag);
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }
void operator delete(void *p, const std::nothrow_t &) noexcept { std::free(p); }
void operator delete[](void *p, const std::nothrow_t &) noexcept { std::free(p); }
#endif

namespace {

namespace ipc = helsim::ipc;

// Heap allocations of one send of `bytes` into a receive buffer and of the receive that
// pairs with it: both submitted through the SQ, counted while the kernel processes them.
std::size_t allocations_of_a_send(helsim::Dispatcher &dispatcher, HelHandle from, HelHandle to,
		std::vector<char> &out, std::vector<char> &in, std::size_t bytes) {
	ipc::submit(dispatcher, from, 1, ipc::send_buffer(out.data(), bytes));
	ipc::submit(dispatcher, to, 2, ipc::recv_buffer(in.data(), in.size()));
#if !defined(HELSIM_ASAN) && !defined(HELSIM_TSAN)
	allocations = 0;
	counting = true;
#endif
	dispatcher.flush();
#if !defined(HELSIM_ASAN) && !defined(HELSIM_TSAN)
	counting = false;
	std::size_t counted = allocations;
#else
	std::size_t counted = 0;
#endif
	for (int i = 0; i < 2; ++i) {
		auto element = dispatcher.wait();
		EXPECT_TRUE(element);
		if (!element)
			break;
		EXPECT_EQ(element->error(), kHelErrNone)
				<< bytes << " bytes, context " << element->context();
		if (element->context() == 2) {
			auto [received] = ipc::parse<ipc::Leaf<ipc::LengthResult>>(*element);
			EXPECT_EQ(received.length, bytes);
		}
	}
	EXPECT_EQ(in[bytes - 1], out[bytes - 1]);
	return counted;
}

TEST(StreamAllocation, AWarmSendAndReceiveAllocateNothing) {
	if (helsim::sim::kAsan || helsim::sim::kTsan)
		GTEST_SKIP() << "a sanitizer replaces operator new";
	helsim::MachineConfig config;
	config.cpus = 1;
	helsim::Machine machine{config};
	{
		auto host = machine.attach();
		HelHandle a, b;
		ASSERT_EQ(helCreateStream(&a, &b, 0), kHelErrNone);
		std::vector<char> out(65536), in(65536);
		for (std::size_t i = 0; i < out.size(); ++i)
			out[i] = static_cast<char>(i * 7 + 1);
		{
			helsim::Dispatcher dispatcher;
			// 1 and 128: the node's own array; 129 to 4096: a cached kernel buffer; 65536:
			// copied from the sender's buffer by a cached copy object.
			const std::size_t sizes[] = {1, 128, 129, 1000, 4096, 65536};
			for (std::size_t bytes : sizes) // warm the caches
				allocations_of_a_send(dispatcher, a, b, out, in, bytes);
			for (int round = 0; round < 3; ++round)
				for (std::size_t bytes : sizes)
					EXPECT_EQ(allocations_of_a_send(dispatcher, a, b, out, in, bytes), 0u)
							<< bytes << " bytes";
		}
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, a), kHelErrNone);
		EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, b), kHelErrNone);
	}
	helsim::test::expect_clean(machine.run());
}

} // namespace
