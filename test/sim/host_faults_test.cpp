// Tests of the host-fault layer (sim/host_faults.cpp): safe_copy and safe_load_u32 stop at the
// exact faulting byte instead of crashing, registered windows hand faults to their resolver
// (also from fibers that park inside the handler), unresolved window faults kill with a
// diagnostic, and every other fault reaches the handler installed before ours.
#include <gtest/gtest.h>

#include "../support.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <vector>

#include "sim/fiber.hpp"
#include "sim/host_faults.hpp"

namespace {

namespace sim = helsim::sim;

constexpr std::size_t kPage = 4096;

// Anonymous pages, unmapped on destruction.
class Pages {
public:
	explicit Pages(std::size_t count, int prot = PROT_READ | PROT_WRITE) : size_{count * kPage} {
		void *p = mmap(nullptr, size_, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			throw std::runtime_error("mmap failed");
		base_ = static_cast<unsigned char *>(p);
	}
	Pages(const Pages &) = delete;
	Pages &operator=(const Pages &) = delete;
	~Pages() {
		if (base_)
			munmap(base_, size_);
	}

	unsigned char *page(std::size_t i) const { return base_ + i * kPage; }
	std::uintptr_t address(std::size_t offset = 0) const {
		return reinterpret_cast<std::uintptr_t>(base_) + offset;
	}
	void protect(std::size_t first, std::size_t count, int prot) const {
		ASSERT_EQ(mprotect(page(first), count * kPage, prot), 0);
	}
	// Unmaps the pages: what is left is an address nothing is mapped at (until reused).
	unsigned char *release() {
		unsigned char *p = base_;
		munmap(base_, size_);
		base_ = nullptr;
		return p;
	}

private:
	std::size_t size_;
	unsigned char *base_ = nullptr;
};

void fill_pattern(unsigned char *p, std::size_t n, unsigned seed) {
	for (std::size_t i = 0; i < n; ++i)
		p[i] = static_cast<unsigned char>((i * 131 + seed) ^ (i >> 8));
}

// Makes a faulting page readable on a read fault, readable and writable on a write fault, and
// records every fault. No allocation: it runs in the signal handler.
struct RecordingResolver final : sim::FaultResolver {
	struct Fault {
		std::uintptr_t address;
		bool write;
	};
	Fault faults[64]{};
	std::atomic<int> count{0};

	bool resolve_host_fault(std::uintptr_t address, bool write) override {
		const int i = count.fetch_add(1);
		if (i < 64)
			faults[i] = {address, write};
		void *page = reinterpret_cast<void *>(address & ~(kPage - 1));
		return mprotect(page, kPage, write ? PROT_READ | PROT_WRITE : PROT_READ) == 0;
	}
};

// Gives up on every fault.
struct RefusingResolver final : sim::FaultResolver {
	bool resolve_host_fault(std::uintptr_t, bool) override { return false; }
	void describe_unresolved(std::uintptr_t, bool, char *buf, std::size_t len) override {
		std::strncpy(buf, "no mapping in the test space", len);
	}
};

TEST(HostFaults, CopyMatchesMemcpy) {
	const std::size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 511, 512, 513, 4095,
			4096, 4097, 65536};
	std::vector<unsigned char> src(65536 + 64), dst(65536 + 64);
	fill_pattern(src.data(), src.size(), 7);
	for (std::size_t n : sizes) {
		for (std::size_t src_offset : {0, 1, 3}) {
			for (std::size_t dst_offset : {0, 5}) {
				std::memset(dst.data(), 0xee, dst.size());
				EXPECT_EQ(sim::safe_copy(dst.data() + dst_offset, src.data() + src_offset, n), 0u)
						<< n;
				EXPECT_EQ(std::memcmp(dst.data() + dst_offset, src.data() + src_offset, n), 0)
						<< "n " << n << " src+" << src_offset << " dst+" << dst_offset;
				for (std::size_t i = 0; i < dst_offset; ++i)
					EXPECT_EQ(dst[i], 0xee);
				for (std::size_t i = dst_offset + n; i < dst.size(); ++i)
					ASSERT_EQ(dst[i], 0xee) << "n " << n << " wrote past the end at " << i;
			}
		}
	}
}

TEST(HostFaults, CopyStopsAtProtectedSource) {
	Pages src(2);
	fill_pattern(src.page(0), kPage, 3);
	src.protect(1, 1, PROT_NONE);
	std::vector<unsigned char> dst(8192);
	struct Case {
		std::size_t offset, n, expected;
	};
	const Case cases[] = {
			{0, 6000, 6000 - 4096},           // rep movsb
			{100, 6000, 6000 - (4096 - 100)}, // rep movsb, unaligned
			{4090, 600, 594},                 // rep movsb faulting right away
			{0, 4096, 0},
			{4000, 200, 104}, // 16-byte moves
			{4090, 20, 14},   // a faulting 16-byte move at the boundary
			{4088, 16, 8},    // a faulting 16-byte move, then bytes up to the boundary
			{4092, 8, 4},     // a faulting 8-byte move
			{4080, 24, 8},    // a 16-byte move, then a faulting 8-byte one
			{4093, 5, 2},     // single bytes
			{4096, 10, 10},   // nothing readable
			{4096, 9000, 9000},
	};
	for (const Case &c : cases) {
		std::memset(dst.data(), 0, dst.size());
		EXPECT_EQ(sim::safe_copy(dst.data(), src.page(0) + c.offset, c.n), c.expected)
				<< "offset " << c.offset << " n " << c.n;
		const std::size_t copied = c.n - c.expected;
		EXPECT_EQ(std::memcmp(dst.data(), src.page(0) + c.offset, copied), 0);
	}
}

TEST(HostFaults, CopyStopsAtReadOnlyDestination) {
	Pages dst(2);
	dst.protect(1, 1, PROT_READ);
	std::vector<unsigned char> src(8192);
	fill_pattern(src.data(), src.size(), 11);
	EXPECT_EQ(sim::safe_copy(dst.page(0), src.data(), 6000), 6000u - 4096u);
	EXPECT_EQ(std::memcmp(dst.page(0), src.data(), 4096), 0);
	EXPECT_EQ(sim::safe_copy(dst.page(0) + 4090, src.data(), 20), 14u);
	EXPECT_EQ(std::memcmp(dst.page(0) + 4090, src.data(), 6), 0);
	EXPECT_EQ(sim::safe_copy(dst.page(0) + 4000, src.data(), 200), 104u);
	for (std::size_t i = 0; i < kPage; ++i)
		ASSERT_EQ(dst.page(1)[i], 0) << i;
}

// A long copy to an unaligned destination moves the bytes up to the next 64-byte boundary first,
// then the rest in one `rep movsb`: a fault in either part stops at the exact byte.
TEST(HostFaults, CopyToAnUnalignedDestinationStopsAtTheExactByte) {
	Pages src(2), dst(3);
	fill_pattern(src.page(0), kPage, 5);
	src.protect(1, 1, PROT_NONE);
	struct Case {
		std::size_t src_offset, dst_offset, n, expected;
	};
	const Case cases[] = {
			{4076, 16, 1000, 1000 - 20},      // the source ends inside the 48-byte head
			{4096 - 48, 16, 1000, 1000 - 48}, // the source ends right after the head
			{3000, 16, 2000, 2000 - 1096},    // in the `rep movsb` after the head
			{0, 1, 4096, 0},                  // a 63-byte head, nothing faults
			{0, 63, 600, 0},                  // a 1-byte head; 599 bytes still take rep movsb
			{0, 40, 560, 0},                  // too short to split: one rep movsb
	};
	for (const Case &c : cases) {
		std::memset(dst.page(0), 0, 3 * kPage);
		unsigned char *to = dst.page(0) + c.dst_offset;
		EXPECT_EQ(sim::safe_copy(to, src.page(0) + c.src_offset, c.n), c.expected)
				<< "source +" << c.src_offset << " destination +" << c.dst_offset << " n " << c.n;
		const std::size_t copied = c.n - c.expected;
		EXPECT_EQ(std::memcmp(to, src.page(0) + c.src_offset, copied), 0);
		for (std::size_t i = c.dst_offset + copied; i < 3 * kPage; ++i)
			ASSERT_EQ(dst.page(0)[i], 0) << "wrote past the fault at " << i;
	}
	// The destination: writable up to the end of page 1, so the head (from page 1 + 16 to the
	// next 64-byte boundary) fits; a read-only page first fails at once.
	dst.protect(2, 1, PROT_READ);
	std::vector<unsigned char> from(8192);
	fill_pattern(from.data(), from.size(), 9);
	EXPECT_EQ(sim::safe_copy(dst.page(1) + 16, from.data(), 6000), 6000u - (4096 - 16));
	EXPECT_EQ(std::memcmp(dst.page(1) + 16, from.data(), 4096 - 16), 0);
	EXPECT_EQ(sim::safe_copy(dst.page(2) + 16, from.data(), 1000), 1000u);
}

TEST(HostFaults, CopyFromOrToUnmappedMemoryFails) {
	Pages gone(2);
	unsigned char *p = gone.release();
	std::vector<unsigned char> buf(10000, 1);
	EXPECT_EQ(sim::safe_copy(buf.data(), p, 100), 100u);
	EXPECT_EQ(sim::safe_copy(buf.data(), p, 5000), 5000u);
	EXPECT_EQ(sim::safe_copy(p, buf.data(), 3), 3u);
	EXPECT_EQ(sim::safe_copy(p, buf.data(), 8000), 8000u);
	EXPECT_EQ(sim::safe_copy(buf.data(), nullptr, 64), 64u);
	// Non-canonical: a general-protection fault (SI_KERNEL, no address) instead of a page fault.
	const auto *non_canonical = reinterpret_cast<const void *>(std::uintptr_t{1} << 63);
	EXPECT_EQ(sim::safe_copy(buf.data(), non_canonical, 100), 100u);
	EXPECT_EQ(sim::safe_copy(buf.data(), non_canonical, 5), 5u);
	for (unsigned char c : buf)
		ASSERT_EQ(c, 1);
}

TEST(HostFaults, SafeLoadU32) {
	Pages pages(2);
	const std::uint32_t value = 0xdeadbeef;
	std::memcpy(pages.page(0) + 4, &value, 4);
	std::memcpy(pages.page(0) + 4092, &value, 4);
	pages.protect(1, 1, PROT_NONE);

	std::uint32_t out = 0;
	EXPECT_TRUE(sim::safe_load_u32(pages.page(0) + 4, out));
	EXPECT_EQ(out, value);
	out = 0;
	EXPECT_TRUE(sim::safe_load_u32(pages.page(0) + 4092, out));
	EXPECT_EQ(out, value);

	out = 17;
	EXPECT_FALSE(sim::safe_load_u32(pages.page(1), out));
	EXPECT_FALSE(sim::safe_load_u32(pages.page(0) + 4094, out)); // straddles into PROT_NONE
	EXPECT_FALSE(sim::safe_load_u32(nullptr, out));
	Pages gone(1);
	unsigned char *p = gone.release();
	EXPECT_FALSE(sim::safe_load_u32(p, out));
	EXPECT_EQ(out, 17u);
}

TEST(HostFaults, WindowResolvesReadAndWriteFaults) {
	Pages window(3, PROT_NONE);
	RecordingResolver resolver;
	sim::register_window(window.address(), 3 * kPage, &resolver);

	auto *word = reinterpret_cast<volatile std::uint32_t *>(window.page(0) + 8);
	EXPECT_EQ(*word, 0u); // read fault: the page becomes readable
	*word = 5;            // write fault on the now read-only page
	EXPECT_EQ(*word, 5u);
	auto *other = reinterpret_cast<volatile std::uint64_t *>(window.page(2) + 128);
	*other = 0x1234; // write fault on a never-touched page
	EXPECT_EQ(*other, 0x1234u);
	auto *byte = reinterpret_cast<volatile unsigned char *>(window.page(1) + kPage - 1);
	EXPECT_EQ(*byte, 0); // read fault on the last byte of the window

	ASSERT_EQ(resolver.count.load(), 4);
	EXPECT_EQ(resolver.faults[0].address, window.address(8));
	EXPECT_FALSE(resolver.faults[0].write);
	EXPECT_EQ(resolver.faults[1].address, window.address(8));
	EXPECT_TRUE(resolver.faults[1].write);
	EXPECT_EQ(resolver.faults[2].address, window.address(2 * kPage + 128));
	EXPECT_TRUE(resolver.faults[2].write);
	EXPECT_EQ(resolver.faults[3].address, window.address(2 * kPage - 1));
	EXPECT_FALSE(resolver.faults[3].write);

	sim::unregister_window(window.address());
}

TEST(HostFaults, SafeCopyDoesNotCallTheResolver) {
	Pages window(1, PROT_NONE);
	RecordingResolver resolver;
	sim::register_window(window.address(), kPage, &resolver);
	unsigned char buf[100];
	EXPECT_EQ(sim::safe_copy(buf, window.page(0), sizeof(buf)), sizeof(buf));
	EXPECT_EQ(sim::safe_copy(window.page(0), buf, sizeof(buf)), sizeof(buf));
	std::uint32_t out;
	EXPECT_FALSE(sim::safe_load_u32(window.page(0), out));
	EXPECT_EQ(resolver.count.load(), 0);
	sim::unregister_window(window.address());
}

TEST(HostFaults, WindowSlotsAreLimitedAndReused) {
	Pages window(1, PROT_NONE);
	RecordingResolver resolver;
	EXPECT_THROW(sim::register_window(window.address(), 0, &resolver), std::invalid_argument);
	EXPECT_THROW(sim::register_window(window.address(), kPage, nullptr), std::invalid_argument);
	// Other tests keep no windows registered, so every slot is free here.
	std::vector<std::uintptr_t> bases;
	for (std::size_t i = 0; i < sim::kMaxFaultWindows; ++i) {
		bases.push_back(std::uintptr_t{0x100000000} + i * kPage);
		sim::register_window(bases.back(), kPage, &resolver);
	}
	EXPECT_THROW(sim::register_window(window.address(), kPage, &resolver), std::length_error);
	for (std::uintptr_t base : bases)
		sim::unregister_window(base);
	sim::unregister_window(0x12345000); // never registered: no-op

	sim::register_window(window.address(), kPage, &resolver);
	EXPECT_EQ(*reinterpret_cast<volatile int *>(window.page(0)), 0);
	EXPECT_EQ(resolver.count.load(), 1);
	sim::unregister_window(window.address());
}

// Faults keep being resolved while another thread registers and unregisters windows.
TEST(HostFaults, WindowLookupRacesWithRegistration) {
	Pages window(4, PROT_NONE);
	RecordingResolver resolver, other;
	sim::register_window(window.address(), 4 * kPage, &resolver);
	std::atomic<bool> stop{false};
	std::thread churn([&] {
		for (std::uintptr_t i = 0; !stop.load(); i = (i + 1) % 8) {
			sim::register_window(std::uintptr_t{0x200000000} + i * kPage, kPage, &other);
			sim::unregister_window(std::uintptr_t{0x200000000} + i * kPage);
		}
	});
	for (int round = 0; round < 200; ++round) {
		const std::size_t page = static_cast<std::size_t>(round) % 4;
		window.protect(page, 1, PROT_NONE);
		*reinterpret_cast<volatile int *>(window.page(page) + 4 * page) = round;
		EXPECT_EQ(*reinterpret_cast<volatile int *>(window.page(page) + 4 * page), round);
	}
	stop.store(true);
	churn.join();
	EXPECT_EQ(resolver.count.load(), 200);
	EXPECT_EQ(other.count.load(), 0);
	sim::unregister_window(window.address());
}

// A resolver parks its fiber inside the signal handler; another fiber on the same host thread
// faults (and is resolved) meanwhile; then the first one resumes and retries its access.
TEST(HostFaults, ResolverMaySwitchFibers) {
	Pages window(2, PROT_NONE);

	struct ParkingResolver final : sim::FaultResolver {
		std::uintptr_t park_page = 0;
		std::vector<int> *order = nullptr;
		bool resolve_host_fault(std::uintptr_t address, bool write) override {
			const std::uintptr_t page = address & ~(kPage - 1);
			if (page == park_page) {
				order->push_back(1);
				sim::Fiber::switch_out(); // parked inside the handler
				order->push_back(4);
			} else {
				order->push_back(2);
			}
			return mprotect(reinterpret_cast<void *>(page), kPage,
						   write ? PROT_READ | PROT_WRITE : PROT_READ) == 0;
		}
	} resolver;
	std::vector<int> order;
	order.reserve(16);
	resolver.park_page = window.address();
	resolver.order = &order;
	sim::register_window(window.address(), 2 * kPage, &resolver);

	// The bodies end parked and are unwound rather than returning: under TSan, a fiber body
	// that returns unbalances the scheduler's shadow call stack (a problem of sim/fiber.cpp
	// that shows when the scheduler's stack is this shallow).
	int a_read = -1;
	bool a_done = false, b_done = false;
	sim::Fiber a, b;
	a.create(64 * 1024, [&] {
		a_read = *reinterpret_cast<volatile int *>(window.page(0));
		order.push_back(5);
		a_done = true;
		sim::Fiber::switch_out();
	});
	b.create(64 * 1024, [&] {
		*reinterpret_cast<volatile int *>(window.page(1)) = 42;
		order.push_back(3);
		b_done = true;
		sim::Fiber::switch_out();
	});
	a.switch_in();
	EXPECT_FALSE(a_done); // parked inside the signal handler
	b.switch_in();
	EXPECT_TRUE(b_done);
	a.switch_in();
	EXPECT_TRUE(a_done);
	a.unwind();
	b.unwind();

	EXPECT_EQ(a_read, 0);
	EXPECT_EQ(*reinterpret_cast<volatile int *>(window.page(1)), 42);
	EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
	sim::unregister_window(window.address());
}

// Death tests run in a freshly executed child, so that the handler chain there is exactly
// what the test sets up.
class HostFaultsDeathTest : public ::testing::Test {
protected:
	void SetUp() override {
		GTEST_FLAG_SET(death_test_style, "threadsafe");
		helsim::test::disable_core_dumps();
	}
};

TEST_F(HostFaultsDeathTest, UnresolvedReadKillsWithDiagnostic) {
	EXPECT_EXIT(
			{
				Pages window(1, PROT_NONE);
				RefusingResolver resolver;
				sim::register_window(window.address(), kPage, &resolver);
				(void)*reinterpret_cast<volatile int *>(window.page(0) + 12);
			},
			::testing::KilledBySignal(SIGSEGV),
			"helsim: unresolved host fault \\(SIGSEGV\\): read at 0x[0-9a-f]+c, pc 0x[0-9a-f]+: "
			"no mapping in the test space");
}

TEST_F(HostFaultsDeathTest, UnresolvedWriteKillsWithDiagnostic) {
	EXPECT_EXIT(
			{
				Pages window(1, PROT_READ);
				RefusingResolver resolver;
				sim::register_window(window.address(), kPage, &resolver);
				*reinterpret_cast<volatile int *>(window.page(0)) = 1;
			},
			::testing::KilledBySignal(SIGSEGV),
			"unresolved host fault \\(SIGSEGV\\): write at 0x[0-9a-f]+000, .*test space");
}

// The handler installed before ours.
void previous_handler(int, siginfo_t *info, void *) {
	static const char message[] = "previous handler got the fault\n";
	(void)!write(STDERR_FILENO, message, sizeof(message) - 1);
	_exit(info->si_code > 0 ? 42 : 43);
}

void install_previous_handler() {
	struct sigaction action;
	std::memset(&action, 0, sizeof(action));
	action.sa_sigaction = previous_handler;
	action.sa_flags = SA_SIGINFO;
	sigemptyset(&action.sa_mask);
	if (sigaction(SIGSEGV, &action, nullptr) != 0)
		_exit(44);
}

// Ours is installed on top of the previous one.
void expect_ours_installed() {
	struct sigaction current;
	sigaction(SIGSEGV, nullptr, &current);
	if (current.sa_sigaction == previous_handler)
		_exit(45);
}

TEST_F(HostFaultsDeathTest, FaultOutsideWindowsReachesPreviousHandler) {
	EXPECT_EXIT(
			{
				install_previous_handler();
				Pages window(1, PROT_NONE);
				RecordingResolver resolver;
				sim::register_window(window.address(), kPage, &resolver);
				expect_ours_installed();
				Pages gone(1);
				unsigned char *p = gone.release();
				(void)*reinterpret_cast<volatile int *>(p);
			},
			::testing::ExitedWithCode(42), "previous handler got the fault");
}

TEST_F(HostFaultsDeathTest, FaultInUnregisteredWindowReachesPreviousHandler) {
	EXPECT_EXIT(
			{
				install_previous_handler();
				Pages window(1, PROT_NONE);
				RecordingResolver resolver;
				sim::register_window(window.address(), kPage, &resolver);
				expect_ours_installed();
				sim::unregister_window(window.address());
				(void)*reinterpret_cast<volatile int *>(window.page(0));
			},
			::testing::ExitedWithCode(42), "previous handler got the fault");
}

// SIGILL, SIGFPE and SIGTRAP are ours too (for simulated threads' faults), but outside a
// simulated thread they end the process with the default action as before; an int3 does not
// just go on after itself.
TEST_F(HostFaultsDeathTest, InstructionFaultsOutsideSimulatedThreadsKeepTheirDefault) {
	auto install_ours = [] {
		Pages window(1, PROT_NONE);
		RecordingResolver resolver;
		sim::register_window(window.address(), kPage, &resolver);
		sim::unregister_window(window.address());
	};
	EXPECT_EXIT(
			{
				install_ours();
				asm volatile("int3");
				std::_Exit(0);
			},
			::testing::KilledBySignal(SIGTRAP), "");
	EXPECT_EXIT(
			{
				install_ours();
				asm volatile("ud2");
				std::_Exit(0);
			},
			::testing::KilledBySignal(SIGILL), "");
}

} // namespace
