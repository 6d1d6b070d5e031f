// SPDX-License-Identifier: MIT
/// @file metalearn/mtl/mtl_learner.hpp
/// The multi-task learner: one class template composing a loss weighting and a gradient
/// aggregator, with the surface every learner shares (metalearn/learners/learner.hpp), so
/// meta::train, meta::meta_step, checkpoints and the benchmarks serve it unchanged.
#pragma once

#include <Eigen/Dense>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <metalearn/autodiff/autodiff.hpp>
#include <metalearn/error.hpp>
#include <metalearn/learners/results.hpp>
#include <metalearn/learners/scoring.hpp>
#include <metalearn/mtl/aggregators.hpp>
#include <metalearn/mtl/batch.hpp>
#include <metalearn/mtl/models.hpp>
#include <metalearn/mtl/task_loss.hpp>
#include <metalearn/mtl/weightings.hpp>
#include <metalearn/optim/clip.hpp>
#include <metalearn/parameter_list.hpp>
#include <metalearn/random.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace metalearn::mtl {

/// What the Gramian methods (aggregators, and GradNorm) take the task gradients of.
enum class GramianOf {
  /// The shared parameters: K backward passes through the whole model.
  shared_parameters,
  /// The shared representation (the model's `shared_representation`; MGDA-UB, Sener &
  /// Koltun 2018, §3.3): K backward passes through the task-specific part only, then one
  /// through the shared part with the combined sum_t a_t dL_t/dz. For MGDA, the min-norm
  /// point of these gradients bounds the parameters' one (their Theorem 1).
  representation,
};

/// Options of MtlLearner (set them by name).
struct MtlLearnerOptions {
  /// Clip the whole gradient to this global norm before the optimizer step (0: off).
  double clip_norm = 0.0;
  /// Clip the shared parameters' update alone to this norm (0: off), as Nash-MTL's
  /// authors do at 1 (`clip_grad_norm_(shared_parameters, 1)`); the task-specific
  /// parameters keep theirs.
  double clip_shared_norm = 0.0;
  /// The Gramian methods' gradients: of the shared parameters, or of the representation.
  GramianOf gramian_of = GramianOf::shared_parameters;
  /// Seed of the per-step draws (RLW's weights, PCGrad's orders): step n draws from
  /// Rng(seed + n), so a resumed run draws the same.
  std::uint64_t seed = 1;
};

namespace detail {
template <class W, class = void>
struct has_learned_gradient : std::false_type {};
template <class W>
struct has_learned_gradient<W, std::void_t<decltype(&W::template learned_gradient<float>)>>
    : std::true_type {};

}  // namespace detail

/// Multi-task learning with a loss weighting and a gradient aggregator over any
/// multi-task model (metalearn/mtl/models.hpp). One step: the task losses L_t on the batch,
/// the weighted losses l_t (Weighting), then either the gradient of sum_t l_t (SumGradients:
/// one backward pass) or the K task gradients g_t of the l_t, their Gramian over the
/// shared parameters, and the shared update sum_t a_t g_t with the aggregator's a; the
/// task-specific parameters take the gradient of sum_t l_t either way.
///
/// @tparam Weighting  EqualWeighting, UncertaintyWeighting, Dwa, GradNorm, RandomLossWeighting
/// @tparam Aggregator SumGradients, Mgda, PcGrad, CaGrad, ImtlG, NashMtl
template <class Weighting = EqualWeighting, class Aggregator = SumGradients, class Scalar = float>
class MtlLearner {
 public:
  using scalar_type = Scalar;
  /// What StepStats::tasks counts (the trainer's rate).
  static constexpr const char* rate_unit = "examples";
  using evaluation_type = MultiTaskBatch<Scalar>;  ///< what evaluate() and validation take
  using Batch = MultiTaskBatch<Scalar>;

  /// `policies`: instances of the Weighting or Aggregator, in any order, each at most
  /// once, e.g. `MtlLearner<EqualWeighting, CaGrad>(o, CaGrad({0.4}))`.
  template <class... Policies>
  explicit MtlLearner(MtlLearnerOptions options = {}, Policies&&... policies) : options_(options) {
    (take(std::forward<Policies>(policies)), ...);
    if (!(options.clip_norm >= 0) || !(options.clip_shared_norm >= 0))
      throw InvalidArgument(
          "metalearn::mtl::MtlLearner: clip_norm and clip_shared_norm must be >= 0, got " +
          std::to_string(options.clip_norm) + " and " + std::to_string(options.clip_shared_norm));
  }
  const MtlLearnerOptions& options() const { return options_; }
  const Weighting& weighting() const { return weighting_; }
  const Aggregator& aggregator() const { return aggregator_; }

  std::int64_t meta_steps() const { return steps_; }
  void set_meta_steps(std::int64_t n) { steps_ = n; }
  /// After each step, taken or skipped (meta::meta_step and train call it): the
  /// weighting's state sees the step's task losses (non-finite for a skipped step).
  void on_meta_step() {
    if (!last_losses_.empty()) weighting_.after_step(last_losses_, state_, steps_);
    last_losses_.clear();
    ++steps_;
  }

  /// The model's parameters, then the weighting's learned tensors ("uw.log_var",
  /// "gradnorm.logits"; created on the first call). Build the optimizer over this list.
  template <class Model>
  ParameterList<Scalar> meta_parameters(Model& net) {
    require_multi_task_model<Model, Scalar>();
    ensure_tensors(net.num_tasks());
    ParameterList<Scalar> list = net.parameters();
    const auto wanted = weighting_.learned(net.num_tasks());
    for (std::size_t j = 0; j < wanted.size(); ++j) list.add(wanted[j].name, learned_[j]);
    return list;
  }
  /// What the weighting remembers between steps (DWA's loss history, GradNorm's initial
  /// losses): train() checkpoints it beside the model.
  ParameterList<Scalar> learner_state() {
    ParameterList<Scalar> list;
    for (std::size_t j = 0; j < state_.size(); ++j) list.add(state_names_[j], state_[j]);
    return list;
  }

  /// The gradient of the step's objective, one tensor per entry of meta_parameters(net).
  template <class Model>
  meta::StepStats meta_gradient(Model& net, const Batch& batch,
                                std::vector<Tensor<Scalar>>& grads) const {
    require_multi_task_model<Model, Scalar>();
    const std::string who = "metalearn::mtl::MtlLearner::meta_gradient";
    batch.validate(who);
    const std::size_t k = net.num_tasks();
    if (batch.num_tasks() != k)
      throw InvalidArgument(who + ": the batch has " + std::to_string(batch.num_tasks()) +
                            " tasks, the model " + std::to_string(k));
    if (learned_.size() != weighting_.learned(k).size() ||
        state_.size() != weighting_.state(k).size())
      throw StateError(who +
                       ": call meta_parameters(net) first (it creates the weighting's "
                       "tensors) and build the optimizer over it");
    Tape<Scalar> tape;
    const auto model_params = net.parameters();
    std::vector<Var<Scalar>> vars = tape.leaves(model_params.views());
    const std::size_t n_model = vars.size(), n_shared = net.num_shared();
    std::vector<Var<Scalar>> learned;
    for (const auto& l : learned_) learned.push_back(tape.leaf(l.view()));
    constexpr bool gramian_step = Aggregator::uses_gramian || Weighting::needs_gramian;
    const bool through_representation =
        gramian_step && options_.gramian_of == GramianOf::representation;
    const Var<Scalar> x = tape.constant(batch.inputs);
    std::vector<Var<Scalar>> representation, outs;
    if (through_representation) {
      if constexpr (detail::has_shared_representation<Model, Scalar>::value) {
        representation = net.shared_representation(vars, x);
        outs = net.task_outputs(vars, representation, x);
      } else {
        throw InvalidArgument(who +
                              ": gramian_of = representation needs the model's "
                              "shared_representation(params, x) and task_outputs(params, "
                              "representation, x) (see metalearn/mtl/models.hpp; HardSharing "
                              "and Mmoe have them)");
      }
    } else {
      outs = net.forward_tasks(vars, x);
    }
    if (outs.size() != k)
      throw InvalidArgument(who + ": forward_tasks gave " + std::to_string(outs.size()) +
                            " outputs for " + std::to_string(k) + " tasks");
    std::vector<Var<Scalar>> losses;
    for (std::size_t t = 0; t < k; ++t)
      losses.push_back(detail::task_loss(outs[t], batch.tasks[t], t));
    Rng rng(options_.seed + static_cast<std::uint64_t>(steps_));
    const auto ell = weighting_.weighted(losses, learned, state_, steps_, rng);

    meta::StepStats s;
    s.tasks = batch.rows();
    last_losses_.assign(k, 0.0);
    for (std::size_t t = 0; t < k; ++t) {
      last_losses_[t] = losses[t].item();
      s.support_loss += last_losses_[t];
      s.query_loss += ell[t].item();
    }
    s.query_metric = metric(outs, batch);

    std::vector<Var<Scalar>> wrt = vars;
    wrt.insert(wrt.end(), learned.begin(), learned.end());
    GradOptions go;
    go.allow_unused = true;  // a head, or a detached weighting, is unused by other losses
    grads.assign(wrt.size(), Tensor<Scalar>());
    if constexpr (!gramian_step) {
      Var<Scalar> total = ell[0];
      for (std::size_t t = 1; t < k; ++t) total = total + ell[t];
      const auto g = grad(total, wrt, go);
      for (std::size_t i = 0; i < g.size(); ++i) grads[i] = g[i].to_tensor();
    } else {
      // Per task, the gradients of l_t: of the shared parameters (or of the
      // representation), then of the rest (heads, the weighting's tensors).
      std::vector<Var<Scalar>> per_task_wrt = wrt;
      if (through_representation) {
        per_task_wrt.assign(representation.begin(), representation.end());
        per_task_wrt.insert(per_task_wrt.end(), wrt.begin() + static_cast<std::ptrdiff_t>(n_shared),
                            wrt.end());
      }
      const std::size_t n_gram = through_representation ? representation.size() : n_shared;
      std::vector<std::vector<Tensor<Scalar>>> per_task(k);
      for (std::size_t t = 0; t < k; ++t)
        for (const auto& g : grad(ell[t], per_task_wrt, go)) per_task[t].push_back(g.to_tensor());
      const Eigen::MatrixXd G = gramian(per_task, n_gram);
      // A non-finite gradient makes the step non-finite (the trainer's stop or skip), not
      // an aggregator error.
      const std::vector<double> a =
          G.allFinite() ? aggregator_.weights(G, rng) : std::vector<double>(k, std::nan(""));
      std::vector<Tensor<Scalar>> combined;  // sum_t a_t g_t on the Gramian's tensors
      for (std::size_t i = 0; i < per_task_wrt.size(); ++i) {
        Tensor<Scalar> sum(per_task[0][i].shape(), Scalar(0));
        for (std::size_t t = 0; t < k; ++t) {
          const double c = i < n_gram ? a[t] : 1.0;
          sum.array() += per_task[t][i].array() * static_cast<Scalar>(c);
        }
        combined.push_back(std::move(sum));
      }
      if (through_representation) {
        // The shared parameters' update J^T v, v = sum_t a_t dl_t/dz: the gradient of
        // sum_j <z_j, v_j> with v held constant, one backward pass through the shared part.
        Var<Scalar> inner;
        for (std::size_t j = 0; j < n_gram; ++j) {
          const Var<Scalar> term = sum(representation[j] * constant(combined[j]));
          inner = j == 0 ? term : inner + term;
        }
        const std::vector<Var<Scalar>> shared(vars.begin(),
                                              vars.begin() + static_cast<std::ptrdiff_t>(n_shared));
        const auto g = grad(inner, shared, go);
        for (std::size_t i = 0; i < n_shared; ++i) grads[i] = g[i].to_tensor();
        for (std::size_t i = n_gram; i < combined.size(); ++i)
          grads[n_shared + i - n_gram] = std::move(combined[i]);
      } else {
        for (std::size_t i = 0; i < combined.size(); ++i) grads[i] = std::move(combined[i]);
      }
      if constexpr (detail::has_learned_gradient<Weighting>::value) {
        std::vector<Tensor<Scalar>> lg(learned_.size());
        weighting_.learned_gradient(G, last_losses_, learned_, state_, lg);
        for (std::size_t j = 0; j < lg.size(); ++j) grads[n_model + j] = lg[j];
      }
    }
    double sq = 0;
    for (const auto& g : grads) sq += static_cast<double>(g.array().square().sum());
    s.grad_norm = std::sqrt(sq);  // before clipping, as clip_by_global_norm reports it
    s.finite = std::isfinite(s.query_loss) && std::isfinite(s.grad_norm);
    if (options_.clip_shared_norm > 0 && s.finite && n_shared > 0) {
      std::vector<Tensor<Scalar>> shared(
          std::make_move_iterator(grads.begin()),
          std::make_move_iterator(grads.begin() + static_cast<std::ptrdiff_t>(n_shared)));
      optim::clip_by_global_norm(shared, options_.clip_shared_norm);
      std::move(shared.begin(), shared.end(), grads.begin());
    }
    return s;
  }

  /// Scores `batch`: loss = the sum of the task losses; accuracy = the mean accuracy over
  /// the classification tasks, mse = the mean MSE over the regression ones (NaN when there
  /// are none).
  template <class Model>
  meta::EpisodeResult evaluate(Model& net, const Batch& batch) const {
    require_multi_task_model<Model, Scalar>();
    batch.validate("metalearn::mtl::MtlLearner::evaluate");
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    const auto outs = outputs(net, batch, tape);
    meta::EpisodeResult r;
    for (std::size_t t = 0; t < outs.size(); ++t)
      r.loss += detail::task_loss(outs[t], batch.tasks[t], t).item();
    const auto m = task_metrics_of(outs, batch);
    double acc = 0, err = 0;
    int n_acc = 0, n_err = 0;
    for (std::size_t t = 0; t < m.size(); ++t) {
      if (batch.tasks[t].is_classification()) {
        acc += m[t];
        ++n_acc;
      } else {
        err += m[t];
        ++n_err;
      }
    }
    if (n_acc > 0) r.accuracy = acc / n_acc;
    if (n_err > 0) r.mse = err / n_err;
    return r;
  }

  /// Each task's metric on `batch`: accuracy (classification) or MSE (regression).
  template <class Model>
  std::vector<double> task_metrics(Model& net, const Batch& batch) const {
    require_multi_task_model<Model, Scalar>();
    batch.validate("metalearn::mtl::MtlLearner::task_metrics");
    Tape<Scalar> tape;
    NoGradGuard<Scalar> no_grad;
    return task_metrics_of(outputs(net, batch, tape), batch);
  }

 private:
  template <class P>
  void take(P&& policy) {
    using T = std::decay_t<P>;
    static_assert(std::is_same_v<T, Weighting> || std::is_same_v<T, Aggregator>,
                  "MtlLearner: an argument after the options must be an instance of the "
                  "learner's Weighting or Aggregator");
    if constexpr (std::is_same_v<T, Weighting>)
      weighting_ = std::forward<P>(policy);
    else
      aggregator_ = std::forward<P>(policy);
  }

  void ensure_tensors(std::size_t k) {
    const auto wanted = weighting_.learned(k);
    bool same = learned_.size() == wanted.size();
    for (std::size_t j = 0; same && j < wanted.size(); ++j)
      same = learned_[j].shape() == wanted[j].shape;
    if (!same) {
      learned_.clear();
      for (const auto& m : wanted) learned_.emplace_back(m.shape, Scalar(m.init));
    }
    const auto kept = weighting_.state(k);
    if (state_.size() != kept.size() || (!kept.empty() && state_[0].shape() != kept[0].shape)) {
      state_.clear();
      state_names_.clear();
      for (const auto& m : kept) {
        state_.emplace_back(m.shape, Scalar(m.init));
        state_names_.push_back(m.name);
      }
    }
  }

  template <class Model>
  std::vector<Var<Scalar>> outputs(Model& net, const Batch& batch, Tape<Scalar>& tape) const {
    if (batch.num_tasks() != net.num_tasks())
      throw InvalidArgument("metalearn::mtl::MtlLearner: the batch has " +
                            std::to_string(batch.num_tasks()) + " tasks, the model " +
                            std::to_string(net.num_tasks()));
    const auto params = tape.leaves(net.parameters().views());
    if constexpr (detail::has_forward_tasks_mode<Model, Scalar>::value)
      return net.forward_tasks(params, tape.constant(batch.inputs), nn::Mode::eval);
    else
      return net.forward_tasks(params, tape.constant(batch.inputs));
  }

  static std::vector<double> task_metrics_of(const std::vector<Var<Scalar>>& outs,
                                             const Batch& batch) {
    std::vector<double> m;
    for (std::size_t t = 0; t < outs.size(); ++t) {
      const auto& k = batch.tasks[t];
      if (k.is_classification()) {
        m.push_back(meta::accuracy(outs[t].value(), k.labels));
      } else {
        const auto diff = outs[t].value().array() - k.values.array();
        m.push_back(static_cast<double>(diff.square().mean()));
      }
    }
    return m;
  }
  static double metric(const std::vector<Var<Scalar>>& outs, const Batch& batch) {
    const auto m = task_metrics_of(outs, batch);
    double total = 0;
    for (double x : m) total += x / static_cast<double>(m.size());
    return total;
  }

  // The Gramian of the task gradients over the shared parameters (the first n_shared).
  static Eigen::MatrixXd gramian(const std::vector<std::vector<Tensor<Scalar>>>& g,
                                 std::size_t n_shared) {
    const auto k = static_cast<Eigen::Index>(g.size());
    Eigen::MatrixXd G = Eigen::MatrixXd::Zero(k, k);
    for (std::size_t p = 0; p < n_shared; ++p)
      for (Eigen::Index i = 0; i < k; ++i)
        for (Eigen::Index j = 0; j <= i; ++j) {
          const auto& a = g[static_cast<std::size_t>(i)][p];
          const auto& b = g[static_cast<std::size_t>(j)][p];
          G(i, j) += a.array().template cast<double>().matrix().dot(
              b.array().template cast<double>().matrix());
        }
    return G.selfadjointView<Eigen::Lower>();
  }

  MtlLearnerOptions options_;
  Weighting weighting_;
  Aggregator aggregator_;
  std::vector<Tensor<Scalar>> learned_, state_;
  std::vector<std::string> state_names_;
  std::int64_t steps_ = 0;
  mutable std::vector<double> last_losses_;  // the last meta_gradient's, for on_meta_step
};

}  // namespace metalearn::mtl
