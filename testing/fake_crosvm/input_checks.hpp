// TEST DOUBLE. What crosvm checks about the files and fds it is given before a VM starts, done as
// strictly as crosvm does it (and one step further: an fd that was inherited but named nowhere
// is a leak by the supervisor and fails the start). Failures exit 1, as crosvm's run errors do.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "crosvisor/error.hpp"
#include "testing/fake_crosvm/crosvm_args.hpp"

namespace crosvisor::fake_crosvm {

// The fds above 2 open right now. Call first thing in main, before opening anything.
std::set<int> inherited_fds();

struct CheckedInputs {
  int console = -1;                       // where the guest's console goes (-1: nowhere)
  int console_input = -1;                 // what the guest reads on its console (-1: nothing)
  int control = -1;                       // the listening control socket
  std::vector<std::string> descriptions;  // one line per disk, for the console
  int first_writable_raw = -1;            // the first writable raw --block, if any
};

// How the stand-in was built, as crosvm can be.
struct Build {
  // The `composite-disk` cargo feature, which is not among crosvm's defaults: without it a
  // composite file is taken as a raw disk of a few hundred bytes.
  bool composite_disk = true;
  // Where to append "opened PATH" for every host path the disk probing opens (a qcow2 backing
  // file, a composite component named by path): what a real crosvm would have opened.
  std::string record;
};

// Validates every input and returns the fds the VM will use. Like crosvm, every --block and
// every composite component is probed for its format (composite, qcow2, android-sparse, zstd)
// and locked (flock, exclusive for writing, shared for reading) unless `lock=false`.
Expected<CheckedInputs> check_inputs(const RunArgs& args, const std::set<int>& inherited,
                                     const Build& build);

}  // namespace crosvisor::fake_crosvm
