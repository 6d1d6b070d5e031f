// Differentiates x^3 twice through the packaged headers; exits 0 when d2/dx2 = 6x.
#include <cstdio>
#include <metalearn/metalearn.hpp>

int main() {
  metalearn::Tape<double> tape;
  const auto x = tape.leaf(metalearn::Tensor<double>::scalar(2.0));
  metalearn::GradOptions keep;
  keep.create_graph = true;
  const auto dx = metalearn::grad(x * x * x, {x}, keep)[0];
  const double d2 = metalearn::grad(dx, {x})[0].item();
  std::printf("metalearn %s: d2/dx2 x^3 at 2 = %g\n", METALEARN_VERSION_STRING, d2);
  return d2 == 12.0 ? 0 : 1;
}
