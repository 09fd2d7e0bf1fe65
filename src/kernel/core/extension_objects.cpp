// Extension objects (helsim/extension.hpp, "Object kinds"): a kernel object of an extension
// kind owns the extension's KernelObject, and handles, references, transfers and teardown work
// on the kernel object as on any built-in.
#include <stdexcept>

#include <fmt/core.h>

#include <helsim/extension_kernel.hpp>

#include "kernel/core/kernel.hpp"
#include "kernel/core/universe.hpp"
#include "kernel/threads/thread.hpp"

namespace helsim::kernel {
namespace {

// Only this class is created with a kind of an extension row (rows past the built-ins come
// from register_object_kind alone), so such a kind identifies it.
class ExtensionObject final : public Object {
public:
	ExtensionObject(Kernel &kernel, ObjectKind kind, std::unique_ptr<ext::KernelObject> object)
	: Object{kernel, kind}, object_{std::move(object)} {}

	static bool is(const Object &object) {
		return static_cast<std::size_t>(object.kind()) >= kBuiltinKinds;
	}
	ext::KernelObject &object() const { return *object_; }
	void abandon() override { object_->abandon(); }

private:
	// Destroyed with this object: the extension's destructor is its kind's teardown hook.
	std::unique_ptr<ext::KernelObject> object_;
};

} // namespace

ext::ObjectKindId add_object_kind(Kernel &kernel, ext::ObjectKindSpec spec) {
	if (spec.rights & ~ext::kKindRightsMask)
		throw std::invalid_argument(
				fmt::format("helsim: object kind \"{}\": its own rights {:#x} must be bits of "
							"kKindRightsMask (kind_right(0..15))",
						spec.name, spec.rights));
	ObjectKind kind = kernel.kinds().add({std::move(spec.name), spec.descriptor_type,
			kRightsMask | spec.rights, spec.default_rights, Teardown::abandon});
	return ext::ObjectKindId{static_cast<std::uint32_t>(kind)};
}

} // namespace helsim::kernel

namespace helsim::ext {

using kernel::ExtensionObject;

ObjectKindId KernelObject::kind() const {
	return ObjectKindId{static_cast<std::uint32_t>(core_->kind())};
}

void retain_object(const KernelObject &object) { object.core_->ref(); }

void release_object(const KernelObject &object) { object.core_->unref(); }

void Caller::adopt(ObjectKindId kind, std::unique_ptr<KernelObject> object) const {
	kernel::Kernel &k = thread_.kernel();
	auto id = static_cast<kernel::ObjectKind>(kind.value());
	if (kind.value() < kernel::kBuiltinKinds || !k.kinds().contains(id))
		throw std::invalid_argument(fmt::format(
				"helsim: Caller::create: kind {} is not an extension kind of this machine",
				kind.value()));
	KernelObject &raw = *object;
	// The kernel object's first reference becomes the caller's ObjectRef.
	raw.core_ = kernel::make_object<ExtensionObject>(k, id, std::move(object)).release();
}

HelError Caller::attach(const KernelObject &object, std::uint32_t rights, HelHandle &handle) const {
	return thread_.universe().attach(kernel::Ref<kernel::Object>{object.core_}, rights, handle);
}

HelError Caller::attach(const KernelObject &object, HelHandle &handle) const {
	const kernel::KindRow &row = thread_.kernel().kinds()[object.core_->kind()];
	return attach(object, row.default_rights, handle);
}

std::optional<ObjectKindId> Caller::object_kind(std::string_view name) const {
	const kernel::ObjectKinds &kinds = thread_.kernel().kinds();
	for (std::size_t i = 0, n = kinds.size(); i < n; ++i)
		if (kinds[static_cast<kernel::ObjectKind>(i)].name == name)
			return ObjectKindId{static_cast<std::uint32_t>(i)};
	return std::nullopt;
}

HelError Caller::lookup(HelHandle handle, ObjectRef<KernelObject> &object,
		std::uint32_t &rights) const {
	kernel::Resolved descriptor;
	if (HelError e = thread_.universe().lookup(handle, descriptor); e != kHelErrNone)
		return e;
	if (!ExtensionObject::is(*descriptor.object))
		return kHelErrBadDescriptor;
	auto *core = static_cast<ExtensionObject *>(descriptor.object.release());
	object = ObjectRef<KernelObject>::adopt(&core->object());
	rights = descriptor.rights;
	return kHelErrNone;
}

} // namespace helsim::ext
