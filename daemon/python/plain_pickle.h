// Pickles of the plainest values (None, bool, int, float, bytes, str, and
// short tuples of them), written and read without a Pickler or Unpickler: a job's queue put and
// get of such an item skip pickle's per-call objects (the Pickler, its
// memo, the Unpickler), which cost more than the queue itself for a small
// int. The bytes written are a valid pickle (protocol 5, unframed, no
// memo) that pickle.loads reads anywhere, a client included; reading
// takes only the forms of one such value (framed or not, memoized or not,
// as pickle.dumps writes them) and leaves every other pickle to pickle.
#pragma once

#include <cstddef>
#include <vector>

struct _object;

namespace ei::python {

/// Appends the pickle of `item` to `out` if `item` is exactly None, a
/// bool, an int that fits 64 bits, a float, bytes, a str that encodes in
/// UTF-8, or a tuple of at most 16 of those; returns false (and leaves
/// `out` and the error indicator alone) for anything else, subclasses
/// included. The GIL must be held.
bool DumpPlain(_object* item, std::vector<char>* out);

/// The value a pickle of one plain value (a tuple of them included)
/// holds, as a new reference, or nullptr with no error set when `data` is
/// any other pickle (or no
/// pickle: pickle.loads then says why); nullptr with an error set only
/// when Python could not make the value (memory). The GIL must be held.
_object* LoadPlain(const char* data, std::size_t size);

}  // namespace ei::python
