// SPDX-License-Identifier: MIT
/// @file metalearn/parameter_list.hpp
/// Named references to a model's tensors: parameters (trained) and buffers (running
/// statistics), in forward order.
#pragma once

#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/error.hpp>
#include <string>
#include <vector>

namespace metalearn {

/// An ordered list of (name, tensor) referring to tensors owned by a model. Names are
/// dotted paths, e.g. "0.weight" for the first layer of a Sequential. Valid as long as the
/// model is alive and not moved.
template <class Scalar>
class ParameterList {
 public:
  using scalar_type = Scalar;

  void add(std::string name, Tensor<Scalar>& tensor) {
    names_.push_back(std::move(name));
    tensors_.push_back(&tensor);
  }

  /// Append every entry of `other`, its names prefixed by `prefix` (a learner's own
  /// meta-parameters after the model's: one list for the optimizer and the checkpoint).
  void append(const ParameterList& other, const std::string& prefix = "") {
    for (std::size_t i = 0; i < other.size(); ++i)
      add(prefix + other.names_[i], *other.tensors_[i]);
  }

  std::size_t size() const noexcept { return tensors_.size(); }
  bool empty() const noexcept { return tensors_.empty(); }
  const std::string& name(std::size_t i) const { return names_.at(i); }
  const std::vector<std::string>& names() const noexcept { return names_; }
  Tensor<Scalar>& operator[](std::size_t i) { return *tensors_.at(i); }
  const Tensor<Scalar>& operator[](std::size_t i) const { return *tensors_.at(i); }

  /// Views of the tensors, for `tape.leaves(...)`.
  std::vector<TensorView<Scalar>> views() const {
    std::vector<TensorView<Scalar>> v;
    for (const auto* t : tensors_) v.push_back(t->view());
    return v;
  }
  /// Owning copies (a snapshot to restore later).
  std::vector<Tensor<Scalar>> values() const {
    std::vector<Tensor<Scalar>> v;
    for (const auto* t : tensors_) v.push_back(*t);
    return v;
  }
  /// Overwrite every tensor from `values` (shapes must match).
  void assign(const std::vector<Tensor<Scalar>>& values) {
    if (values.size() != size())
      throw InvalidArgument(
          "metalearn::nn::ParameterList::assign: " + std::to_string(values.size()) +
          " tensors for " + std::to_string(size()) + " parameters");
    for (std::size_t i = 0; i < size(); ++i)
      if (values[i].shape() != tensors_[i]->shape())
        throw InvalidArgument("metalearn::nn::ParameterList::assign: '" + names_[i] +
                              "' has shape " + tensors_[i]->shape().to_string() + ", value has " +
                              values[i].shape().to_string());
    for (std::size_t i = 0; i < size(); ++i) *tensors_[i] = values[i];
  }

  /// Indices of the entries whose name starts with `prefix` (e.g. "4." for the fifth
  /// layer: ANIL adapts the head only). Throws if nothing matches: a typo would otherwise
  /// adapt nothing, silently.
  std::vector<std::size_t> select(const std::string& prefix) const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < size(); ++i)
      if (names_[i].compare(0, prefix.size(), prefix) == 0) out.push_back(i);
    if (out.empty())
      throw InvalidArgument(
          "metalearn::nn::ParameterList::select: no parameter name starts with '" + prefix + "'");
    return out;
  }

  /// Total number of scalars.
  std::int64_t numel() const {
    std::int64_t n = 0;
    for (const auto* t : tensors_) n += t->numel();
    return n;
  }

 private:
  std::vector<std::string> names_;
  std::vector<Tensor<Scalar>*> tensors_;
};

}  // namespace metalearn

namespace metalearn::nn {
using metalearn::ParameterList;  // where models, optimizers and checkpoints meet
}  // namespace metalearn::nn
