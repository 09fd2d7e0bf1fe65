#include <helsim/extension.hpp>

#include "kernel/ipc/queue.hpp"
#include "kernel/threads/thread.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/memory/usercopy.hpp"

namespace helsim::ext {

using kernel::IpcQueue;
using kernel::QueueSource;

const std::string &Caller::thread_name() const { return thread_.name(); }

unsigned Caller::cpu() const { return thread_.cpu_index(); }

const std::array<char, 16> &Caller::credentials() const { return thread_.credentials(); }

namespace {

HelError describe(kernel::Thread &thread, HelHandle handle, DescriptorInfo &info) {
	kernel::Resolved descriptor;
	if (HelError e = thread.universe().lookup(handle, descriptor); e != kHelErrNone)
		return e;
	info = {descriptor.object->descriptor_type(), descriptor.rights};
	return kHelErrNone;
}

} // namespace

HelError describe_descriptor(HelHandle handle, DescriptorInfo &info) {
	kernel::Thread *self = kernel::Thread::current();
	if (!self)
		return kHelErrIllegalState;
	return describe(*self, handle, info);
}

HelError self_handle(HelHandle &handle) {
	kernel::Thread *self = kernel::Thread::current();
	if (!self)
		return kHelErrIllegalState;
	return self->universe().attach(kernel::Ref<kernel::Object>{self}, kernel::kThreadDefaultRights,
			handle);
}

HelError Caller::descriptor_info(HelHandle handle, DescriptorInfo &info) const {
	return describe(thread_, handle, info);
}

HelError Caller::complete(HelHandle queue, std::uintptr_t context,
		std::span<const std::byte> payload) const {
	auto q = thread_.universe().resolve<IpcQueue>(queue, kHelRightInvoke);
	if (!q)
		return q.error;
	if (!q.object->fits(kernel::pad8(payload.size())))
		return kHelErrQueueTooSmall;
	thread_.note_submitted();
	QueueSource source{payload.data(), payload.size()};
	q.object->post({&source, 1}, context, true);
	return kHelErrNone;
}

bool Caller::copy_from_user(void *kernel_dst, const void *user_src, std::size_t size) const {
	return kernel::copy_from_user(thread_, kernel_dst, user_src, size) == kHelErrNone;
}

bool Caller::copy_to_user(void *user_dst, const void *kernel_src, std::size_t size) const {
	return kernel::copy_to_user(thread_, user_dst, kernel_src, size) == kHelErrNone;
}

void register_syscall(Machine &machine, std::uint32_t number, std::string name,
		SyscallHandler handler) {
	machine.kernel_for_extensions().register_syscall(number, std::move(name), handler);
}

void set_supercall_handler(Machine &machine, SupercallHandler handler) {
	machine.kernel_for_extensions().supercall_handler = std::move(handler);
}

} // namespace helsim::ext
