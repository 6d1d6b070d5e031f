// SPDX-License-Identifier: MIT
/// @file metalearn/data/transforms.hpp
/// Image transforms for episodes: per-channel normalisation, and random affine distortions
/// as Koch et al. 2015 (§3.3) used to train their Siamese network on Omniglot, drawn from
/// the sampler's Rng so an augmented run is deterministic per seed; random crops and flips.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <metalearn/autodiff/tensor.hpp>
#include <metalearn/data/episode.hpp>
#include <metalearn/data/pairs.hpp>
#include <metalearn/data/regression.hpp>
#include <metalearn/error.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::data {

/// An affine map of the image plane about the image centre, in pixels:
/// (x', y') = (a x + b y + tx, c x + d y + ty), with x to the right and y down, both
/// measured from the centre ((W - 1) / 2, (H - 1) / 2).
struct Affine {
  double a = 1, b = 0, c = 0, d = 1, tx = 0, ty = 0;

  /// Rotation by `degrees` (counter-clockwise as seen on the screen).
  static Affine rotation(double degrees) {
    const double t = degrees * 3.14159265358979323846 / 180.0;
    return {std::cos(t), std::sin(t), -std::sin(t), std::cos(t), 0, 0};
  }
  static Affine shear(double x, double y) { return {1, x, y, 1, 0, 0}; }
  static Affine scale(double x, double y) { return {x, 0, 0, y, 0, 0}; }
  static Affine translation(double x, double y) { return {1, 0, 0, 1, x, y}; }
  /// This map after `first`: (this o first)(p) = this(first(p)).
  Affine after(const Affine& f) const {
    return {a * f.a + b * f.c, a * f.b + b * f.d,        c * f.a + d * f.c,
            c * f.b + d * f.d, a * f.tx + b * f.ty + tx, c * f.tx + d * f.ty + ty};
  }
};

/// Koch et al. 2015's distortions: T = translation o scale o shear o rotation, each
/// component kept with `probability` (else the identity), θ ~ U[-rotation, rotation]
/// degrees, shear ~ U[-shear, shear] on each axis, scale ~ U[scale] on each axis,
/// translation ~ U[-translation, translation] pixels on each axis. The defaults are Koch's
/// values (for their 105x105 images).
struct AffineOptions {
  double rotation = 10.0;
  double shear = 0.3;
  Range scale{0.8, 1.2};
  double translation = 2.0;
  double probability = 0.5;
};

/// One draw of Koch's distortion (always 8 draws from `rng`, whatever is kept, so the
/// stream does not depend on the outcome).
inline Affine random_affine(Rng& rng, const AffineOptions& o) {
  const auto keep = [&] { return uniform01(rng) < o.probability; };
  const bool r = keep(), sh = keep(), sc = keep(), tr = keep();
  const double theta = uniform(rng, -o.rotation, o.rotation);
  const double shx = uniform(rng, -o.shear, o.shear), shy = uniform(rng, -o.shear, o.shear);
  const double sx = uniform(rng, o.scale.lo, o.scale.hi);
  const double sy = uniform(rng, o.scale.lo, o.scale.hi);
  const double tx = uniform(rng, -o.translation, o.translation);
  const double ty = uniform(rng, -o.translation, o.translation);
  Affine t;
  if (r) t = Affine::rotation(theta);
  if (sh) t = Affine::shear(shx, shy).after(t);
  if (sc) t = Affine::scale(sx, sy).after(t);
  if (tr) t = Affine::translation(tx, ty).after(t);
  return t;
}

namespace detail {
/// The shape of `images`, which must be [N, C, H, W] (an error naming `who` otherwise).
template <class Scalar>
const Shape& check_images(const char* who, const Tensor<Scalar>& images) {
  if (images.rank() != 4)
    throw InvalidArgument(std::string(who) + ": images must be [N, C, H, W], got " +
                          images.shape().to_string());
  return images.shape();
}
}  // namespace detail

/// Every image of `images` ([N, C, H, W]) moved by `t`: output pixel p takes the input at
/// t^-1(p), bilinear, 0 outside (the background of inverted Omniglot strokes).
template <class Scalar>
Tensor<Scalar> warp_affine(const Tensor<Scalar>& images, const Affine& t) {
  const char* who = "metalearn::data::warp_affine";
  detail::check_images(who, images);
  const double det = t.a * t.d - t.b * t.c;
  if (!(std::abs(det) > 1e-12) || !std::isfinite(det))
    throw InvalidArgument(std::string(who) + ": the map is not invertible (determinant " +
                          std::to_string(det) + ")");
  // Inverse: p = M^-1 (p' - t).
  const double ia = t.d / det, ib = -t.b / det, ic = -t.c / det, id = t.a / det;
  const std::int64_t n = images.shape()[0], ch = images.shape()[1], h = images.shape()[2],
                     w = images.shape()[3];
  const double cx = (static_cast<double>(w) - 1) / 2, cy = (static_cast<double>(h) - 1) / 2;
  Tensor<Scalar> out(images.shape(), Scalar(0));
  for (std::int64_t y = 0; y < h; ++y)
    for (std::int64_t x = 0; x < w; ++x) {
      const double u = static_cast<double>(x) - cx - t.tx, v = static_cast<double>(y) - cy - t.ty;
      const double sx = ia * u + ib * v + cx, sy = ic * u + id * v + cy;
      const double fx = std::floor(sx), fy = std::floor(sy);
      const double wx = sx - fx, wy = sy - fy;
      const auto x0 = static_cast<std::int64_t>(fx), y0 = static_cast<std::int64_t>(fy);
      for (std::int64_t i = 0; i < n * ch; ++i) {
        const Scalar* src = images.data() + i * h * w;
        const auto at = [&](std::int64_t yy, std::int64_t xx) {
          return yy < 0 || yy >= h || xx < 0 || xx >= w ? 0.0
                                                        : static_cast<double>(src[yy * w + xx]);
        };
        out.data()[i * h * w + y * w + x] =
            static_cast<Scalar>((1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) +
                                wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1)));
      }
    }
  return out;
}

namespace detail {
/// The images of a sample, in the order Augmented draws for them.
template <class Scalar, class F>
void for_each_image_tensor(Episode<Scalar>& e, F&& f) {
  f(e.support_inputs);
  f(e.query_inputs);
}
template <class Scalar, class F>
void for_each_image_tensor(PairBatch<Scalar>& b, F&& f) {
  f(b.first);
  f(b.second);
}
template <class Scalar, class F>
void for_each_image_tensor(TripletBatch<Scalar>& b, F&& f) {
  f(b.anchor);
  f(b.positive);
  f(b.negative);
}
}  // namespace detail

/// Koch et al.'s distortion as a transform of `Augmented`: each draw is one random_affine.
class RandomAffine {
 public:
  using Draw = Affine;
  // Implicit, so that AffineAugmented<S>(sampler, AffineOptions) reads as before.
  RandomAffine(AffineOptions options = {}) : options_(options) {  // NOLINT(runtime/explicit)
    if (!(options_.probability >= 0 && options_.probability <= 1) || !(options_.rotation >= 0) ||
        !(options_.shear >= 0) || !(options_.translation >= 0) || !(options_.scale.lo > 0) ||
        !(options_.scale.lo <= options_.scale.hi))
      throw InvalidArgument(
          "metalearn::data::RandomAffine: need probability in [0, 1], rotation, shear and "
          "translation >= 0, and 0 < scale.lo <= scale.hi");
  }
  Affine draw(Rng& rng) const { return random_affine(rng, options_); }
  template <class Scalar>
  Tensor<Scalar> apply(const Tensor<Scalar>& images, const Affine& t) const {
    return warp_affine(images, t);
  }

 private:
  AffineOptions options_;
};

/// Random crop: the image padded with `padding` zeros on every side, then cut back to its
/// size at an offset uniform in [0, 2 padding] on each axis (the CIFAR recipe, He et al.
/// 2016 §4.2). Equivalently a shift by (dx, dy) in [-padding, padding], 0 filling.
class RandomCrop {
 public:
  struct Draw {
    std::int64_t dy = 0, dx = 0;  ///< the shift, in [-padding, padding]
  };
  explicit RandomCrop(std::int64_t padding) : padding_(padding) {
    if (padding < 0)
      throw InvalidArgument("metalearn::data::RandomCrop: padding must be >= 0, got " +
                            std::to_string(padding));
  }
  Draw draw(Rng& rng) const {
    const auto side = static_cast<std::uint64_t>(2 * padding_ + 1);
    Draw d;
    d.dy = static_cast<std::int64_t>(uniform_index(rng, side)) - padding_;
    d.dx = static_cast<std::int64_t>(uniform_index(rng, side)) - padding_;
    return d;
  }
  /// out(y, x) = in(y + dy, x + dx), 0 outside the input.
  template <class Scalar>
  Tensor<Scalar> apply(const Tensor<Scalar>& images, const Draw& d) const {
    const auto& s = detail::check_images("metalearn::data::RandomCrop", images);
    const std::int64_t planes = s[0] * s[1], h = s[2], w = s[3];
    Tensor<Scalar> out(s, Scalar(0));
    for (std::int64_t i = 0; i < planes; ++i)
      for (std::int64_t y = 0; y < h; ++y) {
        const std::int64_t sy = y + d.dy;
        if (sy < 0 || sy >= h) continue;
        for (std::int64_t x = 0; x < w; ++x) {
          const std::int64_t sx = x + d.dx;
          if (sx >= 0 && sx < w)
            out.data()[(i * h + y) * w + x] = images.data()[(i * h + sy) * w + sx];
        }
      }
    return out;
  }

 private:
  std::int64_t padding_;
};

/// Horizontal flip (mirror left to right) with probability `probability`.
class RandomFlip {
 public:
  using Draw = bool;
  explicit RandomFlip(double probability = 0.5) : probability_(probability) {
    if (!(probability >= 0 && probability <= 1))
      throw InvalidArgument("metalearn::data::RandomFlip: probability must be in [0, 1], got " +
                            std::to_string(probability));
  }
  bool draw(Rng& rng) const { return uniform01(rng) < probability_; }
  template <class Scalar>
  Tensor<Scalar> apply(const Tensor<Scalar>& images, bool flip) const {
    const auto& s = detail::check_images("metalearn::data::RandomFlip", images);
    if (!flip) return images;
    const std::int64_t rows = s[0] * s[1] * s[2], w = s[3];
    Tensor<Scalar> out(s);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t x = 0; x < w; ++x)
        out.data()[r * w + x] = images.data()[r * w + (w - 1 - x)];
    return out;
  }

 private:
  double probability_;
};

namespace detail {
/// Image i of `images` [N, C, H, W] under its own draw of `transform` from `rng`, written to
/// `out` (C * H * W values; may be image i itself). `one` is [1, C, H, W] scratch.
template <class Scalar, class Transform>
void distort_image(const Tensor<Scalar>& images, std::int64_t i, const Transform& transform,
                   Rng& rng, Tensor<Scalar>& one, Scalar* out) {
  const std::int64_t per = one.numel();
  std::copy(images.data() + i * per, images.data() + (i + 1) * per, one.data());
  const Tensor<Scalar> moved = transform.apply(one, transform.draw(rng));
  std::copy(moved.data(), moved.data() + per, out);
}
}  // namespace detail

/// How often `Augmented` draws: a transform of its own for every image, or one for every
/// sample (the same transform on all images of an episode or a pair batch).
enum class AugmentEvery { image, sample };

/// A sampler whose samples (episodes, pair or triplet batches) have their images moved by
/// `Transform` (RandomAffine, RandomCrop, RandomFlip, or any class with `draw(Rng&)` and
/// `apply(images, draw)`); the draws are made from the Rng passed to sample() after the
/// sample itself, support before query, image by image, so an augmented run is the same for
/// a seed and any thread count of a MetaBatchSampler around it. Labels are untouched.
/// Transforms chain by nesting: Augmented<Augmented<S, RandomCrop>, RandomFlip>.
template <class Sampler, class Transform>
class Augmented {
 public:
  Augmented(Sampler sampler, Transform transform, AugmentEvery every = AugmentEvery::image)
      : sampler_(std::move(sampler)), transform_(std::move(transform)), every_(every) {}

  auto sample(Rng& rng) const {
    auto s = sampler_.sample(rng);
    if (every_ == AugmentEvery::sample) {
      const auto d = transform_.draw(rng);
      detail::for_each_image_tensor(s, [&](auto& images) { images = transform_.apply(images, d); });
      return s;
    }
    detail::for_each_image_tensor(s, [&](auto& images) {
      using Scalar = typename std::decay_t<decltype(images)>::value_type;
      const auto& shape = detail::check_images("metalearn::data::Augmented", images);
      const std::int64_t per = shape[1] * shape[2] * shape[3];
      Tensor<Scalar> one(Shape{1, shape[1], shape[2], shape[3]});
      for (std::int64_t i = 0; i < shape[0]; ++i)
        detail::distort_image(images, i, transform_, rng, one, images.data() + i * per);
    });
    return s;
  }

 private:
  Sampler sampler_;
  Transform transform_;
  AugmentEvery every_;
};

/// Koch et al. 2015's augmentation: every image of every episode by its own random_affine.
template <class Sampler>
using AffineAugmented = Augmented<Sampler, RandomAffine>;

/// Test-time augmentation of a few-shot episode: every support image followed by `copies`
/// distorted versions of itself (each by its own `transform` draw from `rng`, in row
/// order), so a class-major support set stays class-major; labels repeated and `shots`
/// multiplied by 1 + copies; the queries are untouched. A
/// metric learner scores the result as it scores any episode (a ProtoNet's prototype
/// becomes the mean over the distortions, a nearest-neighbour Siamese or Matching Network
/// sees more neighbours), so no learner changes. Deterministic for a seed of `rng`.
template <class Scalar, class Transform = RandomAffine>
Episode<Scalar> augment_support(const Episode<Scalar>& episode, int copies, Rng& rng,
                                const Transform& transform = {}) {
  const char* who = "metalearn::data::augment_support";
  if (copies < 0)
    throw InvalidArgument(std::string(who) + ": copies must be >= 0, got " +
                          std::to_string(copies));
  if (!episode.is_classification())
    throw InvalidArgument(std::string(who) + ": needs a classification episode (ways > 0)");
  const Shape& shape = detail::check_images(who, episode.support_inputs);
  const std::int64_t n = shape[0], per = shape[1] * shape[2] * shape[3];
  if (n != static_cast<std::int64_t>(episode.support_labels.size()))
    throw InvalidArgument(std::string(who) + ": " + std::to_string(n) + " support images for " +
                          std::to_string(episode.support_labels.size()) + " labels");
  Episode<Scalar> out = episode;
  out.support_inputs = Tensor<Scalar>(Shape{n * (1 + copies), shape[1], shape[2], shape[3]});
  out.support_labels.clear();
  Tensor<Scalar> one(Shape{1, shape[1], shape[2], shape[3]});
  Scalar* row = out.support_inputs.data();
  const Scalar* in = episode.support_inputs.data();
  for (std::int64_t i = 0; i < n; ++i) {
    std::copy(in + i * per, in + (i + 1) * per, row);
    row += per;
    for (int k = 0; k < copies; ++k, row += per)
      detail::distort_image(episode.support_inputs, i, transform, rng, one, row);
    out.support_labels.insert(out.support_labels.end(), static_cast<std::size_t>(1 + copies),
                              episode.support_labels[static_cast<std::size_t>(i)]);
  }
  out.shots = episode.shots * (1 + copies);
  return out;
}

/// Per-channel mean and standard deviation of images [N, C, H, W] (population std).
template <class Scalar>
std::pair<std::vector<double>, std::vector<double>> channel_statistics(
    const Tensor<Scalar>& images) {
  if (images.rank() != 4 || images.shape()[0] == 0)
    throw InvalidArgument(
        "metalearn::data::channel_statistics: images must be [N, C, H, W], N > 0, got " +
        images.shape().to_string());
  const std::int64_t n = images.shape()[0], ch = images.shape()[1],
                     hw = images.shape()[2] * images.shape()[3];
  std::vector<double> mean(static_cast<std::size_t>(ch), 0), sd(static_cast<std::size_t>(ch), 0);
  for (std::int64_t c = 0; c < ch; ++c) {
    double sum = 0, sq = 0;
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = 0; k < hw; ++k) {
        const double v = images.data()[(i * ch + c) * hw + k];
        sum += v;
        sq += v * v;
      }
    const double count = static_cast<double>(n * hw);
    mean[static_cast<std::size_t>(c)] = sum / count;
    sd[static_cast<std::size_t>(c)] =
        std::sqrt(std::max(0.0, sq / count - (sum / count) * (sum / count)));
  }
  return {mean, sd};
}

/// images[:, c] = (images[:, c] - mean[c]) / std[c], in place. Compute mean and std on the
/// training images (channel_statistics) and apply them to every split.
template <class Scalar>
void normalize_channels(Tensor<Scalar>& images, const std::vector<double>& mean,
                        const std::vector<double>& std_dev) {
  const char* who = "metalearn::data::normalize_channels";
  if (images.rank() != 4)
    throw InvalidArgument(std::string(who) + ": images must be [N, C, H, W], got " +
                          images.shape().to_string());
  const std::int64_t n = images.shape()[0], ch = images.shape()[1],
                     hw = images.shape()[2] * images.shape()[3];
  if (static_cast<std::int64_t>(mean.size()) != ch ||
      static_cast<std::int64_t>(std_dev.size()) != ch)
    throw InvalidArgument(std::string(who) + ": " + std::to_string(ch) + " channels but " +
                          std::to_string(mean.size()) + " means and " +
                          std::to_string(std_dev.size()) + " standard deviations");
  for (const double s : std_dev)
    if (!(s > 0) || !std::isfinite(s))
      throw InvalidArgument(std::string(who) + ": standard deviations must be > 0, got " +
                            std::to_string(s));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t c = 0; c < ch; ++c) {
      const auto m = mean[static_cast<std::size_t>(c)], s = std_dev[static_cast<std::size_t>(c)];
      Scalar* p = images.data() + (i * ch + c) * hw;
      for (std::int64_t k = 0; k < hw; ++k) p[k] = static_cast<Scalar>((p[k] - m) / s);
    }
}

}  // namespace metalearn::data
