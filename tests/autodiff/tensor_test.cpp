// Shape and Tensor: construction, indexing, Eigen views, and errors.
#include <metalearn/autodiff/tensor.hpp>

#include "support/catch.hpp"
#include "support/errors.hpp"

namespace ml = metalearn;
using ml::Shape;
using ml::Tensor;

TEST_CASE("Shape: rank 0 to 4, element counts, matrix view", "[autodiff][shape]") {
  CHECK(Shape{}.rank() == 0);
  CHECK(Shape{}.numel() == 1);
  const Shape s{2, 3, 4};
  CHECK(s.numel() == 24);
  CHECK(s.rows() == 6);
  CHECK(s.cols() == 4);
  CHECK(s.to_string() == "[2, 3, 4]");
  CHECK(s.normalize_axis(-1, "f") == 2);
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        (void)Shape{1, 2, 3, 4, 5};
      },
      {"metalearn::Shape", "rank 5"});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        (void)Shape{2, -1};
      },
      {"negative dimension -1"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)s.normalize_axis(3, "metalearn::f"); },
                                              {"metalearn::f", "axis 3", "[2, 3, 4]"});
}

TEMPLATE_TEST_CASE("Tensor: values, indexing, Eigen maps", "[autodiff][shape]", float, double) {
  Tensor<TestType> t(Shape{2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(t.at(1, 2) == TestType(6));
  t.at(0, 1) = 7;
  CHECK(t.matrix()(0, 1) == TestType(7));  // row-major
  CHECK(t.data()[1] == TestType(7));
  const Eigen::MatrixXd m = Eigen::MatrixXd::Identity(2, 2);
  const auto u = Tensor<TestType>::from_matrix(m);
  CHECK(u.shape() == Shape{2, 2});
  CHECK(u.at(1, 1) == TestType(1));
  CHECK(t.reshaped(Shape{3, 2}).at(2, 1) == TestType(6));
  CHECK(Tensor<TestType>::scalar(3).item() == TestType(3));
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)t.at(2, 0); },
                                              {"metalearn::Tensor::at", "[2, 3]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)t.at(0); }, {"1 indices"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)t.item(); }, {"item", "[2, 3]"});
  ml::test::check_throws<ml::InvalidArgument>(
      [] {
        (void)Tensor<TestType>(Shape{2, 2}, {1, 2, 3});
      },
      {"metalearn::Tensor", "3 values", "[2, 2]"});
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)t.reshaped(Shape{4}); },
                                              {"reshaped", "[2, 3]", "[4]"});
}
