// SPDX-License-Identifier: MIT
/// @file metalearn/learners/load_model.hpp
/// Loading a trained model from a checkpoint written by meta::train, and the "architecture"
/// and "learner" texts those checkpoints record (checked on load and on resume).
#pragma once

#include <cstdlib>
#include <metalearn/io/checkpoint.hpp>
#include <metalearn/nn/model.hpp>
#include <string>
#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace metalearn::meta {

namespace detail {
inline std::string type_name(const char* mangled) {
#if defined(__GNUG__)
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  const std::string out = status == 0 && d != nullptr ? d : mangled;
  std::free(d);
  return out;
#else
  return mangled;
#endif
}

/// The model's layers (`describe()`, e.g. Sequential's "0: Conv2d(1, 64, 3)" lines with
/// batch norm's "running" flag), else its parameters' names and shapes: the "architecture"
/// text of train()'s checkpoints, checked by load_model and on resume.
template <class Model>
std::string architecture_of(Model& net) {
  if constexpr (nn::describes_itself_v<Model>) {
    return net.describe();
  } else {
    std::string s;
    const auto p = net.parameters();
    for (std::size_t i = 0; i < p.size(); ++i)
      s += p.name(i) + " " + p[i].shape().to_string() + "\n";
    return s;
  }
}
}  // namespace detail

/// Load the model (learner.meta_parameters(net) and the buffers) from a checkpoint written
/// by train(), skipping the optimizer state, the learner state and the counters: to
/// evaluate or deploy it. Strict about the model: every parameter and buffer must be in the
/// file with its shape, and every model or buffer entry of the file must be used (a
/// checkpoint with running batch-norm statistics does not load into a model without them);
/// errors name the first difference. The model's layers must match the file's
/// "architecture" when it has one (a ReLU net does not load into a tanh net of the same
/// shapes); the learner may differ (train with MAML, evaluate with another).
template <class Learner, class Model>
void load_model(Learner& learner, Model& net, const std::string& path) {
  io::Checkpoint<typename Learner::scalar_type> ckpt;
  ckpt.tensors("model", learner.meta_parameters(net)).tensors("buffers", net.buffers());
  ckpt.text("architecture", detail::architecture_of(net));
  ckpt.load(path, io::Unregistered::training_state);
}

}  // namespace metalearn::meta
