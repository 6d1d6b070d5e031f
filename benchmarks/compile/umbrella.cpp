// The compile-time probe of issue 19 (item 7): a consumer that includes the umbrella header
// and trains MAML through the trainer. scripts/compile-time times it beside modules.cpp.
#include <metalearn/metalearn.hpp>

int main() {
  namespace ml = metalearn;
  ml::Rng rng(1);
  auto net = ml::nn::mlp<float>({1, 40, 40, 1}, rng);
  ml::meta::GradientLearnerOptions o;
  o.inner_lr = 0.01;
  ml::meta::Maml maml(o);
  ml::optim::Adam<float> adam(maml.meta_parameters(net), {1e-3});
  const ml::data::MetaBatchSampler<ml::data::SineTasks<float>> batches({}, 25);
  const auto validation = ml::data::fixed_episodes(ml::data::SineTasks<float>(), 20, 7);
  ml::meta::TrainerOptions t;
  t.steps = 100;
  const auto r = ml::meta::train(maml, net, adam, batches, validation, rng, t);
  return r.steps == 100 ? 0 : 1;
}
