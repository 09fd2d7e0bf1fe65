// The C API from C: see c_api.c.
#include <gtest/gtest.h>

#include <cstddef>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

extern "C" {
int c_api_nop(void);
int c_api_create_and_close_token(void);
int c_api_supercall(HelWord a, HelWord b, HelWord *out0, HelWord *out1);
int c_api_memory_calls(void);
size_t c_api_memory_sq_size(unsigned int opcode);
size_t c_api_memory_sq_last_offset(unsigned int opcode);
}

TEST(CApi, WrappersWorkFromC) {
	helsim::Machine machine;
	auto attached = machine.attach();
	EXPECT_EQ(c_api_nop(), kHelErrNone);
	EXPECT_EQ(c_api_create_and_close_token(), kHelErrNone);
}

TEST(CApi, FromAnUnattachedThreadCallsFailCleanly) { EXPECT_EQ(c_api_nop(), kHelErrIllegalState); }

TEST(CApi, SupercallNumberArrivesIntactFromC) {
	helsim::Machine machine;
	std::uint32_t seen = 0;
	helsim::ext::set_supercall_handler(machine,
			[&](helsim::ext::Caller &, std::uint32_t number, const HelWord *args, HelWord *outs) {
				seen = number;
				outs[0] = args[0] + args[1];
				outs[1] = args[0] * args[1];
				return kHelErrNone;
			});
	auto attached = machine.attach();
	HelWord sum = 0, product = 0;
	EXPECT_EQ(c_api_supercall(6, 7, &sum, &product), kHelErrNone);
	EXPECT_EQ(seen, 0x80000005u);
	EXPECT_EQ(sum, 13u);
	EXPECT_EQ(product, 42u);
}

// Unattached, every call fails with kHelErrIllegalState, which proves each C wrapper got through
// to helsim_syscall (and wrote its outputs without crashing).
TEST(CApi, MemoryWrappersReachTheEntryPointFromC) { EXPECT_EQ(c_api_memory_calls(), 11); }

TEST(CApi, MemorySqPayloadLayoutsAgreeBetweenCAndCpp) {
	struct Expected {
		unsigned int opcode;
		size_t size;
		size_t lastOffset;
	};
	const Expected expected[] = {
			{kHelSubmitProtectMemory, sizeof(HelSqProtectMemory),
					offsetof(HelSqProtectMemory, flags)},
			{kHelSubmitSynchronizeSpace, sizeof(HelSqSynchronizeSpace),
					offsetof(HelSqSynchronizeSpace, size)},
			{kHelSubmitReadMemory, sizeof(HelSqReadMemory), offsetof(HelSqReadMemory, buffer)},
			{kHelSubmitWriteMemory, sizeof(HelSqWriteMemory), offsetof(HelSqWriteMemory, buffer)},
			{kHelSubmitManageMemory, sizeof(HelSqManageMemory),
					offsetof(HelSqManageMemory, handle)},
			{kHelSubmitLockMemoryView, sizeof(HelSqLockMemoryView),
					offsetof(HelSqLockMemoryView, size)},
			{kHelSubmitResizeMemory, sizeof(HelSqResizeMemory),
					offsetof(HelSqResizeMemory, newSize)},
			{kHelSubmitForkMemory, sizeof(HelSqForkMemory), offsetof(HelSqForkMemory, handle)},
			{kHelSubmitWritebackFence, sizeof(HelSqWritebackFence),
					offsetof(HelSqWritebackFence, size)},
			{kHelSubmitInvalidateMemory, sizeof(HelSqInvalidateMemory),
					offsetof(HelSqInvalidateMemory, size)},
			{kHelSubmitPopulateSpace, sizeof(HelSqPopulateSpace),
					offsetof(HelSqPopulateSpace, length)},
	};
	for (const auto &e : expected) {
		SCOPED_TRACE(e.opcode);
		EXPECT_EQ(c_api_memory_sq_size(e.opcode), e.size);
		EXPECT_EQ(c_api_memory_sq_last_offset(e.opcode), e.lastOffset);
	}
	EXPECT_EQ(c_api_memory_sq_size(kHelSubmitObserve), 0u);
}
