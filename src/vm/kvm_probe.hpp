// Whether KVM can boot the kernel here. /dev/kvm existing is not enough (in
// nested setups QEMU stops with "KVM internal error"), so a probe boots the
// real kernel once under KVM; the verdict is cached per host boot and kernel.
#pragma once

#include "scxkit/vm.hpp"

namespace scxkit::vm::internal {

bool kvm_boots(const RunOptions& options);

}  // namespace scxkit::vm::internal
