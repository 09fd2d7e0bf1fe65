// The C API from C: see c_api.c.
#include <gtest/gtest.h>

#include <helsim/extension.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

extern "C" {
int c_api_nop(void);
int c_api_create_and_close_token(void);
int c_api_supercall(HelWord a, HelWord b, HelWord *out0, HelWord *out1);
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
