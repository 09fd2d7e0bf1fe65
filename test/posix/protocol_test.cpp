// test/posix/protocol_test.cpp tests src/posix/protocol.hpp: the clock tracker page's
// seqlock (write_tracker / read_tracker) and the message helpers.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "../../src/posix/protocol.hpp"

namespace protocol = helsim::posix::protocol;

namespace {

// The base written with each ref: base - ref jumps around with every write, so a reader that
// paired the ref of one write with the base of another would see base != base_for(ref).
std::int64_t base_for(std::int64_t ref) {
	std::uint64_t x = static_cast<std::uint64_t>(ref) * 0x9e3779b97f4a7c15u;
	x ^= x >> 29;
	return static_cast<std::int64_t>(x >> 1);
}

TEST(PosixProtocol, TrackerPageReadsWhatWasWritten) {
	protocol::TrackerPage page{};
	std::int64_t ref = -1, base = -1;
	EXPECT_FALSE(protocol::read_tracker(page, ref, base)); // never written
	protocol::write_tracker(page, 10, 20);
	EXPECT_TRUE(protocol::read_tracker(page, ref, base));
	EXPECT_EQ(ref, 10);
	EXPECT_EQ(base, 20);
	EXPECT_EQ(page.seqlock, 2u);
	protocol::write_tracker(page, -5, 1'000);
	EXPECT_TRUE(protocol::read_tracker(page, ref, base));
	EXPECT_EQ(ref, -5);
	EXPECT_EQ(base, 1'000);
	EXPECT_EQ(page.seqlock, 4u); // even: no writer inside
}

// A host thread writes (ref, base_for(ref)) pairs as fast as it can while this thread reads:
// every read must be one whole write, and the writes must appear in order.
TEST(PosixProtocol, ConcurrentTrackerReadsNeverSeeATornPair) {
	constexpr std::int64_t kWrites = 1'000'000;
	protocol::TrackerPage page{};
	protocol::write_tracker(page, 0, base_for(0));
	std::atomic<bool> reading{false}, done{false};
	std::thread writer{[&] {
		while (!reading.load(std::memory_order_acquire)) {
			// Start with the reader, so that the two overlap.
		}
		for (std::int64_t ref = 1; ref <= kWrites; ++ref)
			protocol::write_tracker(page, ref, base_for(ref));
		done.store(true, std::memory_order_release);
	}};
	std::int64_t last = 0, reads = 0, torn = 0, backwards = 0;
	reading.store(true, std::memory_order_release);
	for (;;) {
		bool finished = done.load(std::memory_order_acquire);
		std::int64_t ref = -1, base = -1;
		ASSERT_TRUE(protocol::read_tracker(page, ref, base));
		torn += base != base_for(ref);
		backwards += ref < last;
		last = ref;
		++reads;
		if (finished)
			break;
	}
	writer.join();
	EXPECT_EQ(torn, 0) << "of " << reads << " reads";
	EXPECT_EQ(backwards, 0) << "of " << reads << " reads";
	EXPECT_EQ(last, kWrites); // the read after the writer finished sees its last write
	EXPECT_EQ(page.seqlock, 2u * (kWrites + 1));
}

// A writer stopped halfway (odd sequence number, a new ref with the old base): a reader
// waits for the write to finish and then reads the whole new pair, never the half one.
TEST(PosixProtocol, ConcurrentReaderWaitsWhileAWriteIsHalfDone) {
	protocol::TrackerPage page{};
	protocol::write_tracker(page, 1, base_for(1));
	std::atomic_ref<std::uint64_t> seq{page.seqlock};
	seq.store(seq.load() + 1, std::memory_order_relaxed); // W1 of the write of 2
	std::atomic_ref<std::int64_t>{page.ref_clock}.store(2, std::memory_order_release);
	std::atomic<bool> returned{false};
	std::int64_t ref = -1, base = -1;
	std::thread reader{[&] {
		EXPECT_TRUE(protocol::read_tracker(page, ref, base));
		returned.store(true, std::memory_order_release);
	}};
	// The reader spins meanwhile; one that took the half-written pair would have returned.
	for (int i = 0; i < 100'000 && !returned.load(std::memory_order_acquire); ++i) {
	}
	EXPECT_FALSE(returned.load(std::memory_order_acquire));
	std::atomic_ref<std::int64_t>{page.base_realtime}.store(base_for(2), std::memory_order_release);
	seq.store(seq.load() + 1, std::memory_order_release); // W3
	reader.join();
	EXPECT_EQ(ref, 2);
	EXPECT_EQ(base, base_for(2));
}

TEST(PosixProtocol, DecodeZeroFillsShortInput) {
	protocol::Response response{-2, 3, 4};
	auto bytes = protocol::bytes_of(response);
	auto whole = protocol::decode<protocol::Response>(bytes);
	EXPECT_EQ(whole.error, -2);
	EXPECT_EQ(whole.value, 3);
	EXPECT_EQ(whole.value2, 4);
	auto part = protocol::decode<protocol::Response>(bytes.first(sizeof(std::int64_t)));
	EXPECT_EQ(part.error, -2);
	EXPECT_EQ(part.value, 0);
	EXPECT_EQ(part.value2, 0);
}

} // namespace
