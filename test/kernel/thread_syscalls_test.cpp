// Tests of src/kernel/thread_syscalls.cpp: the per-thread fs/gs words and register-set sizes.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "../support.hpp"
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

void *word(std::uintptr_t v) { return reinterpret_cast<void *>(v); }

std::uintptr_t read_fs() {
	void *p = nullptr;
	EXPECT_EQ(helReadFsBase(&p), kHelErrNone);
	return reinterpret_cast<std::uintptr_t>(p);
}

std::uintptr_t read_gs() {
	void *p = nullptr;
	EXPECT_EQ(helReadGsBase(&p), kHelErrNone);
	return reinterpret_cast<std::uintptr_t>(p);
}

// Each thread has its own words, which stay with it when it moves to another CPU (and so
// to another host thread): what the POSIX layer will anchor per-thread state in.
TEST(ThreadBases, FsAndGsArePerThreadAndFollowTheThreadAcrossCpus) {
	helsim::MachineConfig config;
	config.cpus = 2;
	helsim::Machine machine{config};
	std::atomic<int> wrong{0};
	for (std::uintptr_t id = 1; id <= 3; ++id)
		machine.spawn("t" + std::to_string(id), [id, &wrong](std::span<const HelHandle>) {
			if (read_fs() != 0 || read_gs() != 0)
				++wrong; // a new thread starts with both 0
			EXPECT_EQ(helWriteFsBase(word(id << 12)), kHelErrNone);
			EXPECT_EQ(helWriteGsBase(word(~id)), kHelErrNone);
			for (int i = 0; i < 50; ++i) {
				std::uint8_t mask = static_cast<std::uint8_t>(1u << ((id + i) % 2));
				EXPECT_EQ(helSetAffinity(kHelThisThread, &mask, 1), kHelErrNone);
				EXPECT_EQ(helYield(), kHelErrNone);
				if (read_fs() != id << 12 || read_gs() != ~id)
					++wrong;
			}
		});
	expect_clean(machine.run());
	EXPECT_EQ(wrong.load(), 0);
}

TEST(ThreadBases, AttachedThreadsHaveTheirOwnToo) {
	helsim::Machine machine;
	std::uintptr_t other_fs = 1;
	{
		auto attached = machine.attach();
		EXPECT_EQ(read_fs(), 0u);
		// Any value, as thor writes the MSR unchecked.
		EXPECT_EQ(helWriteFsBase(word(~std::uintptr_t{0})), kHelErrNone);
		EXPECT_EQ(helWriteGsBase(word(0x1234)), kHelErrNone);
		EXPECT_EQ(read_fs(), ~std::uintptr_t{0});
		EXPECT_EQ(read_gs(), 0x1234u);
		machine.spawn("other", [&](std::span<const HelHandle>) { other_fs = read_fs(); });
	}
	expect_clean(machine.run());
	EXPECT_EQ(other_fs, 0u) << "another thread's word";
}

TEST(ThreadRegisters, QueryRegisterInfoGivesX86SizesInBytes) {
	helsim::Machine machine;
	auto attached = machine.attach();
	struct Case {
		int set;
		int size;
	};
	for (Case c : {Case{kHelRegsProgram, 16}, Case{kHelRegsGeneral, 120}, Case{kHelRegsThread, 16},
				 Case{kHelRegsVirtualization, 424}, Case{kHelRegsSimd, 0},
				 Case{kHelRegsSignal, 152}}) {
		HelRegisterInfo info{-1};
		EXPECT_EQ(helQueryRegisterInfo(c.set, &info), kHelErrNone) << c.set;
		EXPECT_EQ(info.setSize, c.size) << c.set;
	}
	HelRegisterInfo info{-1};
	for (int set : {0, int{kHelRegsDebug}, int{kHelRegsPageFault}, 9, -1})
		EXPECT_EQ(helQueryRegisterInfo(set, &info), kHelErrIllegalArgs) << set;
	EXPECT_EQ(info.setSize, -1) << "a refused query wrote nothing";
	EXPECT_EQ(helQueryRegisterInfo(kHelRegsGeneral, nullptr), kHelErrFault);
	EXPECT_EQ(helQueryRegisterInfo(kHelRegsGeneral, reinterpret_cast<HelRegisterInfo *>(8)),
			kHelErrFault);
}

} // namespace
