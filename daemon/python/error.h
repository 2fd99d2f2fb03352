// Turns the current Python exception into plain data, once, at the boundary.
#pragma once

#include "daemon/base/job_outcome.h"
#include "daemon/base/status.h"

namespace ei::python {

/// Takes (and clears) the raised exception. The GIL must be held and an
/// exception must be set. Never raises; formatting failures degrade to less
/// detail.
PyErrorInfo FetchError();

/// "what failed: Type: message", for logs and Status messages.
std::string DescribeError(const std::string& what, const PyErrorInfo& error);

}  // namespace ei::python
