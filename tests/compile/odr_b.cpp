#include <metalearn/metalearn.hpp>

double odr_b() {
  metalearn::Rng rng{1};
  (void)metalearn::uniform01(rng);
  metalearn::Tape<double> tape;
  const auto x = tape.leaf(metalearn::Tensor<double>::scalar(2.0));
  return metalearn::grad(x * x, {x})[0].item();
}
