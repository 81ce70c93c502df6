// A build without the CUDA kernels (no OML_FAST_WITH_CUDA) still registers a CUDA kernel for every
// op: one that says how to get the real ones, instead of the dispatcher's "Could not run ... with
// arguments from the 'CUDA' backend".
#ifndef OML_FAST_WITH_CUDA
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

namespace oml_fast {
namespace {

void cuda_kernels_missing(const c10::OperatorHandle& op, torch::jit::Stack* /*stack*/) {
  TORCH_CHECK_NOT_IMPLEMENTED(
      false, op.schema().name(),
      " got CUDA tensors, but this oml_fast library was built without its "
      "CUDA kernels (rebuilt without CUDA: set FORCE_CUDA=1, with CUDA_HOME "
      "at a CUDA toolkit, and reinstall), or move the inputs to the CPU");
}

}  // namespace

TORCH_LIBRARY_IMPL(oml_fast, CUDA, m) {
  for (const char* name :
       {"pairwise_distance", "pairwise_distance.out", "_pairwise_distance_backward", "knn",
        "retrieval_relevance", "retrieval_metrics", "_pair_distance_histogram", "hard_mining"}) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<&cuda_kernels_missing>());
  }
}

}  // namespace oml_fast
#endif  // OML_FAST_WITH_CUDA
