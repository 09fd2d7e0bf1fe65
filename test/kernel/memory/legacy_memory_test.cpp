// The 2022 helSubmit* memory calls (memory_syscalls.cpp): the SQ operations' code behind the
// old entry points. Completions go to the given queue with the given context; submission
// errors are the call's return value.
#include <gtest/gtest.h>

#include <cstring>

#include "../../support.hpp"
#include <helsim/dispatcher.hpp>
#include <helsim/hel.h>
#include <helsim/machine.hpp>

namespace {

using namespace helsim::test;

constexpr std::size_t kPage = 4096;

class LegacyMemory : public ::testing::Test {
protected:
	helsim::Machine machine;
	std::unique_ptr<helsim::Attachment> attached = machine.attach();
	helsim::Dispatcher dispatcher;

	// The completion with `context`; none other may arrive first.
	helsim::Element completion(std::uintptr_t context) {
		return dispatcher.wait_for(context, [](helsim::Element &&e) {
			ADD_FAILURE() << "unexpected completion " << e.context();
		});
	}
};

TEST_F(LegacyMemory, ReadWriteProtectAndSynchronizeCompleteOnTheQueue) {
	HelHandle memory = kHelNullHandle;
	auto *p = static_cast<char *>(map_new_memory(2 * kPage, &memory));
	HelHandle queue = dispatcher.queue();
	ASSERT_EQ(helSubmitWriteMemory(memory, 10, 5, "hello", queue, 1), kHelErrNone);
	EXPECT_EQ(completion(1).error(), kHelErrNone);
	EXPECT_EQ(std::string(p + 10, 5), "hello");
	char back[6] = {};
	ASSERT_EQ(helSubmitReadMemory(memory, 10, 5, back, queue, 2), kHelErrNone);
	EXPECT_EQ(completion(2).error(), kHelErrNone);
	EXPECT_STREQ(back, "hello");
	ASSERT_EQ(helSubmitProtectMemory(kHelNullHandle, p, kPage, 0, queue, 3), kHelErrNone);
	EXPECT_EQ(completion(3).error(), kHelErrNone);
	EXPECT_EQ(helLog(kHelLogSeverityDebug, p, 1), kHelErrFault);
	ASSERT_EQ(helSubmitProtectMemory(kHelNullHandle, p, kPage, kHelMapProtRead | kHelMapProtWrite,
					  queue, 4),
			kHelErrNone);
	EXPECT_EQ(completion(4).error(), kHelErrNone);
	ASSERT_EQ(helSubmitSynchronizeSpace(kHelNullHandle, p, 2 * kPage, queue, 5), kHelErrNone);
	EXPECT_EQ(completion(5).error(), kHelErrNone);
	// Errors of the operation itself still arrive in its completion.
	ASSERT_EQ(helSubmitProtectMemory(kHelNullHandle, p + 1, kPage, 0, queue, 6), kHelErrNone);
	EXPECT_EQ(completion(6).error(), kHelErrIllegalArgs);
}

TEST_F(LegacyMemory, SubmissionErrorsAreReturnedAtOnce) {
	HelHandle memory = kHelNullHandle;
	auto *p = static_cast<char *>(map_new_memory(kPage, &memory));
	HelHandle queue = dispatcher.queue();
	HelHandle token = make_token();
	char buffer[4];
	EXPECT_EQ(helSubmitProtectMemory(token, p, kPage, 0, queue, 1), kHelErrBadDescriptor);
	EXPECT_EQ(helSubmitSynchronizeSpace(kHelNullHandle, p, kPage, token, 1), kHelErrBadDescriptor)
			<< "the queue handle is checked";
	EXPECT_EQ(helSubmitReadMemory(token, 0, 4, buffer, queue, 1), kHelErrBadDescriptor);
	EXPECT_EQ(helSubmitWriteMemory(memory, 0, 4, buffer, 12345, 1), kHelErrNoDescriptor);
	EXPECT_EQ(helSubmitManageMemory(token, queue, 1), kHelErrBadDescriptor);
	EXPECT_EQ(helSubmitLockMemoryView(token, 0, kPage, queue, 1), kHelErrBadDescriptor);
	// Nothing was accepted, so nothing completes: the next operation's completion is first.
	ASSERT_EQ(helSubmitReadMemory(memory, 0, 4, buffer, queue, 7), kHelErrNone);
	EXPECT_EQ(completion(7).error(), kHelErrNone);
}

TEST_F(LegacyMemory, ManageAndLockUseTheirOperations) {
	HelHandle memory = kHelNullHandle;
	(void)map_new_memory(kPage, &memory);
	HelHandle queue = dispatcher.queue();
	ASSERT_EQ(helSubmitManageMemory(memory, queue, 1), kHelErrNone);
	EXPECT_EQ(completion(1).as<HelManageResult>().error, kHelErrIllegalObject)
			<< "allocated memory has no pager";
	ASSERT_EQ(helSubmitLockMemoryView(memory, 0, kPage, queue, 2), kHelErrNone);
	auto lock = completion(2).as<HelHandleResult>();
	ASSERT_EQ(lock.error, kHelErrNone);
	EXPECT_EQ(info_of(lock.handle).type, kHelDescMemoryViewLock);
	EXPECT_EQ(helCloseDescriptor(kHelThisUniverse, lock.handle), kHelErrNone);
}

} // namespace
