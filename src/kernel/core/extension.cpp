#include <helsim/extension_kernel.hpp>

#include <stdexcept>

#include "kernel/core/async_operation.hpp"
#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/ipc/queue.hpp"
#include "kernel/memory/usercopy.hpp"
#include "kernel/threads/thread.hpp"

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

HelError Caller::start(const AsyncRequest &request, AsyncOperation &operation) const {
	auto q = thread_.universe().resolve<IpcQueue>(request.queue, kHelRightInvoke);
	if (!q)
		return q.error;
	if (request.result_size < sizeof(HelSimpleResult))
		return kHelErrIllegalArgs;
	if (!q.object->fits(kernel::pad8(request.result_size)))
		return kHelErrQueueTooSmall;
	operation = AsyncOperation{kernel::ExtensionOperation::start(thread_, *q.object,
			request.context, request.cancellation_tag, request.result_size, request.on_cancel,
			request.completed_by)};
	return kHelErrNone;
}

void SqSubmission::complete(std::span<const std::byte> payload) const {
	if (payload.size() < sizeof(HelSimpleResult) || payload.size() > result_size_)
		throw std::invalid_argument(
				"helsim: SqSubmission::complete: the payload is smaller than a HelSimpleResult or "
				"larger than the opcode's result size");
	thread_.note_submitted();
	QueueSource source{payload.data(), payload.size()};
	queue_.post({&source, 1}, context_, true);
}

void SqSubmission::complete(HelError error) const {
	HelSimpleResult result{error, 0};
	complete(std::as_bytes(std::span{&result, 1}));
}

AsyncOperation SqSubmission::start(std::uint64_t cancellation_tag, std::function<void()> on_cancel,
		CompletedBy completed_by) const {
	return AsyncOperation{kernel::ExtensionOperation::start(thread_, queue_, context_,
			cancellation_tag, result_size_, std::move(on_cancel), completed_by)};
}

void Caller::charge(std::uint64_t ns) const { thread_.kernel().host().charge(ns); }

std::uint64_t Caller::now() const { return thread_.kernel().host().now(); }

void Caller::after(std::uint64_t delay_ns, std::function<void()> callback) const {
	thread_.kernel().host().call_after(delay_ns, std::move(callback));
}

const kernel::ExtensionOperation &AsyncOperation::checked() const {
	if (!op_)
		throw std::logic_error("helsim: AsyncOperation used without Caller::start");
	return *op_;
}

bool AsyncOperation::complete(std::span<const std::byte> payload) const {
	checked();
	return op_->complete(payload);
}

bool AsyncOperation::complete(HelError error) const {
	HelSimpleResult result{error, 0};
	return complete(std::as_bytes(std::span{&result, 1}));
}

bool AsyncOperation::ended() const { return checked().ended(); }

std::uintptr_t AsyncOperation::context() const { return checked().context(); }

} // namespace helsim::ext
