// With odr_b.cpp: two TUs including everything, linked together. A non-template function
// defined in a header without `inline` makes this fail to link.
#include <metalearn/metalearn.hpp>

double odr_b();

int main() {
  metalearn::Tape<double> tape;
  const auto x = tape.leaf(metalearn::Tensor<double>::scalar(2.0));
  const double a = metalearn::grad(x * x, {x})[0].item();
  return (a == 4.0 && odr_b() == 4.0) ? 0 : 1;
}
