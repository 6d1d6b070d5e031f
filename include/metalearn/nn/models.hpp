// SPDX-License-Identifier: MIT
/// @file metalearn/nn/models.hpp
/// Builders for the networks every few-shot paper uses: Finn's MLP and the conv4 backbone.
#pragma once

#include <cstdint>
#include <metalearn/nn/batch_norm.hpp>
#include <metalearn/nn/conv2d.hpp>
#include <metalearn/nn/linear.hpp>
#include <metalearn/nn/per_step_batch_norm.hpp>
#include <metalearn/nn/pool.hpp>
#include <metalearn/nn/sequential.hpp>
#include <string>
#include <vector>

namespace metalearn::nn {

/// Hidden-layer activation of mlp().
enum class Activation { relu, tanh, sigmoid };

/// Fully connected network with `sizes` = {in, hidden..., out}: Linear layers with the
/// activation between them, none after the last. `mlp<float>({1, 40, 40, 1}, rng)` is the
/// sinusoid network of Finn et al. 2017 (§5.1).
template <class Scalar = float>
Sequential<Scalar> mlp(const std::vector<std::int64_t>& sizes, Rng& rng,
                       Activation activation = Activation::relu) {
  if (sizes.size() < 2)
    throw InvalidArgument("metalearn::nn::mlp: need at least an input and an output size, got " +
                          std::to_string(sizes.size()) + " sizes");
  Sequential<Scalar> net;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    net.add(Linear<Scalar>(sizes[i], sizes[i + 1], rng));
    if (i + 2 == sizes.size()) break;
    switch (activation) {
      case Activation::relu:
        net.add(Relu<Scalar>{});
        break;
      case Activation::tanh:
        net.add(Tanh<Scalar>{});
        break;
      case Activation::sigmoid:
        net.add(Sigmoid<Scalar>{});
        break;
    }
  }
  return net;
}

/// Options of conv4().
struct Conv4Options {
  std::int64_t in_channels = 1;  ///< 1 for Omniglot, 3 for mini-ImageNet
  std::int64_t filters = 64;     ///< 64 for Omniglot 28x28, 32 for 84x84 colour (Finn et al.)
  std::int64_t image_size = 28;  ///< square input side
  std::int64_t outputs = 5;      ///< classes of the linear head (ignored when embedding_only)
  /// Finn et al.'s Omniglot variant: 3x3 convolutions with stride 2 instead of max-pooling,
  /// and the features averaged over the last feature map.
  bool strided = false;
  /// No head: the network maps images to embeddings (ProtoNets, Siamese nets).
  bool embedding_only = false;
  BatchNormOptions batch_norm = {};
  /// > 0: nn::PerStepBatchNorm with one scale and shift per inner step 0 .. this many
  /// (MAML++'s BNWB; set it to the learner's inner steps); 0: nn::BatchNorm.
  int per_step_batch_norm = 0;
};

/// The width of conv4's embedding: its output with `embedding_only`, else the head's input
/// (filters x the last feature map's side squared; filters when strided, which averages it).
inline std::int64_t conv4_features(const Conv4Options& o) {
  if (o.strided) return o.filters;
  const std::int64_t side = o.image_size / 16;  // four 2x2 max-pools
  return o.filters * side * side;
}

/// The 4-block convolutional backbone of MAML, Prototypical and Matching Networks: each
/// block is conv 3x3 (padding 1) + batch norm + ReLU + 2x2 max-pool (applied as pool then
/// ReLU, which is the same function), then a linear head on
/// the flattened features (Vinyals et al. 2016; Finn et al. 2017; Snell et al. 2017).
template <class Scalar = float>
Sequential<Scalar> conv4(const Conv4Options& o, Rng& rng) {
  if (o.in_channels < 1 || o.filters < 1 || o.image_size < 16 ||
      (!o.embedding_only && o.outputs < 1))
    throw InvalidArgument(
        "metalearn::nn::conv4: in_channels, filters and outputs must be "
        "positive and image_size at least 16, got " +
        std::to_string(o.in_channels) + ", " + std::to_string(o.filters) + ", " +
        std::to_string(o.outputs) + ", " + std::to_string(o.image_size));
  Sequential<Scalar> net;
  std::int64_t channels = o.in_channels;
  for (int block = 0; block < 4; ++block) {
    Conv2dOptions conv;
    conv.kernel = 3;
    conv.padding = 1;
    conv.stride = o.strided ? 2 : 1;
    net.add(Conv2d<Scalar>(channels, o.filters, rng, conv));
    if (o.per_step_batch_norm > 0)
      net.add(PerStepBatchNorm<Scalar>(o.filters, o.per_step_batch_norm, o.batch_norm));
    else
      net.add(BatchNorm<Scalar>(o.filters, o.batch_norm));
    if (o.strided) {
      net.add(Relu<Scalar>{});
    } else {
      // Pool, then ReLU: the same function as ReLU then pool (ReLU is monotone, so it
      // commutes with max), with the ReLU on a quarter of the values.
      net.add(MaxPool2d<Scalar>(2));
      net.add(Relu<Scalar>{});
    }
    channels = o.filters;
  }
  if (o.strided)
    net.add(GlobalAvgPool2d<Scalar>{});
  else
    net.add(Flatten<Scalar>{});
  if (!o.embedding_only) net.add(Linear<Scalar>(conv4_features(o), o.outputs, rng));
  return net;
}

}  // namespace metalearn::nn
