// The oml_fast op library: every operator schema of the `oml_fast` namespace, and the Python module
// stub that lets `from . import _C` load this shared library.
//
// Kernels live beside their family (csrc/<family>/{cpu,cuda}/) and register themselves with
// TORCH_LIBRARY_IMPL at the bottom of their own file; fake kernels and autograd formulas are
// registered from Python (oml_fast/ops/).

#include <Python.h>
#include <torch/library.h>

// Loading the library runs the static TORCH_LIBRARY registrations below; Python only needs a module
// object to import. No functions are exposed through pybind11: every entry point is a torch op.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(oml_fast, m) {
  // ---- distance (csrc/distance) ----
  m.def("pairwise_distance(Tensor x1, Tensor x2, str metric=\"euclidean\") -> Tensor");
  // The same distances written into `out` ([N, M], x1's dtype, contiguous): a caller that streams
  // tiles reuses one buffer instead of allocating one per tile.
  m.def(
      "pairwise_distance.out(Tensor x1, Tensor x2, str metric=\"euclidean\", *, Tensor(a!) out)"
      " -> Tensor(a!)");
  m.def(
      "_pairwise_distance_backward(Tensor grad, Tensor x1, Tensor x2, Tensor dist, str metric)"
      " -> (Tensor, Tensor)");

  // ---- retrieval (csrc/retrieval) ----
  m.def(
      "knn(Tensor queries, Tensor gallery, int k, str metric=\"euclidean\", Tensor? query_ids=None,"
      " Tensor? gallery_ids=None, Tensor? query_groups=None, Tensor? gallery_groups=None)"
      " -> (Tensor, Tensor)");
  m.def(
      "retrieval_relevance(Tensor retrieved, Tensor query_labels, Tensor gallery_labels,"
      " Tensor? query_ids=None, Tensor? gallery_ids=None, Tensor? query_groups=None,"
      " Tensor? gallery_groups=None) -> (Tensor, Tensor)");
  m.def(
      "retrieval_metrics(Tensor is_relevant, Tensor n_gt, Tensor n_retrieved, int[] cmc_top_k,"
      " int[] precision_top_k, int[] map_top_k) -> (Tensor, Tensor, Tensor)");
  // Private: one streaming pass of FNMR@FMR over a distance tile (oml_fast/metrics/fnmr.py); the
  // slots of the window [lower, upper]: csrc/retrieval/fnmr_common.h.
  m.def(
      "_pair_distance_histogram(Tensor dist, Tensor query_labels, Tensor gallery_labels,"
      " Tensor? query_ids, Tensor? gallery_ids, Tensor? query_groups, Tensor? gallery_groups,"
      " float lower, float upper, int n_bins, bool collect, bool with_positives)"
      " -> (Tensor counts, Tensor mins, Tensor maxs, Tensor collected, Tensor positives)");
  // Private: one whole pass of FNMR@FMR from the embeddings (CPU): the distances of
  // pairwise_distance, tile by tile, through the slots of several windows at once, never
  // written out (csrc/retrieval/cpu/fnmr_fused_cpu.cpp).
  m.def(
      "_embedding_pair_histogram(Tensor queries, Tensor gallery, str metric, Tensor query_labels,"
      " Tensor gallery_labels, Tensor? query_ids, Tensor? gallery_ids, Tensor? query_groups,"
      " Tensor? gallery_groups, float[] lowers, float[] uppers, int[] n_bins, bool[] collect,"
      " int max_collect, bool with_positives) -> (Tensor[] counts, Tensor[] mins, Tensor[] maxs,"
      " Tensor[] collected, Tensor overflowed, Tensor positives)");

  // ---- mining (csrc/mining) ----
  m.def(
      "hard_mining(Tensor embeddings, Tensor labels, int n_positive, int n_negative,"
      " str metric=\"euclidean\", Tensor? anchor_mask=None) -> (Tensor, Tensor)");
  // Private: the Euclidean distances of index triplets (anchor t: row t when `anchors` is absent)
  // and their gradient, for the triplet losses with an in-batch miner (oml_fast/losses/_common.py;
  // csrc/mining/triplet_distances.h).
  m.def(
      "_triplet_distances(Tensor embeddings, Tensor? anchors, Tensor positives, Tensor negatives)"
      " -> (Tensor, Tensor)");
  m.def(
      "_triplet_distances_backward(Tensor grad_ap, Tensor grad_an, Tensor embeddings,"
      " Tensor? anchors, Tensor positives, Tensor negatives, Tensor dist_ap, Tensor dist_an)"
      " -> Tensor");
}
