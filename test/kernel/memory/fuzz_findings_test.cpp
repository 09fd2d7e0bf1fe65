// Regression tests for what test/fuzz (helsim_fuzz) found in the memory subsystem; each
// test's name is the finding's, and its input is in test/fuzz/corpus/ under the same name.
#include <gtest/gtest.h>

#include <cstring>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;

helsim::MachineConfig threads_mode() { return {}; }

helsim::MachineConfig deterministic(std::uint64_t seed) {
	helsim::MachineConfig config;
	config.mode = helsim::Mode::deterministic;
	config.seed = seed;
	return config;
}

// A WriteMemory into the caller's own space whose buffer overlaps the target range: the
// direct copy between the two frames was a memcpy of overlapping ranges (undefined; ASan's
// memcpy-param-overlap). It is a move: the target ends up with the buffer's bytes as they
// were.
void write_memory_onto_its_own_buffer(helsim::MachineConfig config) {
	run_clean(std::move(config), [] {
		auto *p = static_cast<unsigned char *>(map_new_memory(kPage));
		for (std::size_t i = 0; i < 64; ++i)
			p[i] = static_cast<unsigned char>(i);
		helsim::Dispatcher d;
		for (std::size_t shift : {1u, 21u}) {
			for (std::size_t i = 0; i < 64; ++i)
				p[i] = static_cast<unsigned char>(i);
			HelSqWriteMemory forward{kHelNullHandle, reinterpret_cast<std::uintptr_t>(p + shift),
					34, p};
			EXPECT_EQ(sq_call(d, kHelSubmitWriteMemory, forward).error(), kHelErrNone);
			for (std::size_t i = 0; i < 34; ++i)
				EXPECT_EQ(p[shift + i], i) << "shift " << shift << " byte " << i;
			HelSqReadMemory backward{kHelNullHandle, reinterpret_cast<std::uintptr_t>(p + shift),
					34, p};
			EXPECT_EQ(sq_call(d, kHelSubmitReadMemory, backward).error(), kHelErrNone);
			for (std::size_t i = 0; i < 34; ++i)
				EXPECT_EQ(p[i], i) << "shift " << shift << " byte " << i;
		}
	});
}

TEST(FuzzFinding, WriteMemoryOntoItsOwnBuffer) {
	write_memory_onto_its_own_buffer(threads_mode());
	write_memory_onto_its_own_buffer(deterministic(3));
}

} // namespace
