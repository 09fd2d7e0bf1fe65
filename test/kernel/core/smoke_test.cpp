#include <gtest/gtest.h>

#include <atomic>

#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

TEST(Smoke, NopFromUnattachedHostThreadFails) { EXPECT_EQ(helNop(), kHelErrIllegalState); }

TEST(Smoke, NopFromAttached) {
	helsim::Machine machine;
	auto attached = machine.attach();
	EXPECT_EQ(helNop(), kHelErrNone);
}

TEST(Smoke, SpawnAndAsyncNop) {
	helsim::Machine machine;
	std::atomic<int> seen{0};
	machine.spawn("worker", [&](std::span<const HelHandle>) {
		helsim::Dispatcher d;
		for (int i = 0; i < 100; ++i)
			d.submit(kHelSubmitAsyncNop, static_cast<std::uintptr_t>(i),
					std::span<const std::byte>{});
		for (int i = 0; i < 100; ++i) {
			auto e = d.wait();
			ASSERT_TRUE(e);
			EXPECT_EQ(e->context(), static_cast<std::uintptr_t>(i));
			EXPECT_EQ(e->error(), kHelErrNone);
			++seen;
		}
	});
	auto report = machine.run();
	EXPECT_FALSE(report.stuck);
	EXPECT_EQ(seen, 100);
	EXPECT_EQ(report.operations_pending(), 0u);
	EXPECT_TRUE(report.leaks.empty()) << report.to_string();
}
