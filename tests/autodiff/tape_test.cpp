// Tape lifetime, stale Vars, nesting, no-grad scopes, threads, and memory reuse.
#include <algorithm>
#include <cmath>
#include <metalearn/autodiff/autodiff.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/alloc_counter.hpp"
#include "support/catch.hpp"
#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/seed.hpp"

namespace ml = metalearn;
using ml::Shape;
using ml::Tensor;

TEST_CASE("Tape: a Var used after its tape ended or was reset throws", "[autodiff][error]") {
  ml::Var<double> stale;
  {
    ml::Tape<double> tape;
    stale = tape.leaf(Tensor<double>::scalar(1.0));
    CHECK(stale.item() == 1.0);
  }
  ml::test::check_throws<ml::StateError>([&] { (void)stale.value(); },
                                         {"metalearn::Var", "reset or ended"});
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>::scalar(2.0));
  // A new node now sits at the stale Var's index; the epoch still tells them apart.
  ml::test::check_throws<ml::StateError>([&] { (void)(stale * x); }, {"metalearn::Var"});
  tape.reset();
  ml::test::check_throws<ml::StateError>([&] { (void)ml::exp(x); }, {"reset or ended"});
  ml::test::check_throws<ml::StateError>([&] { (void)ml::Var<double>().shape(); },
                                         {"metalearn::Var"});
}

TEST_CASE("Tape: nested scopes keep outer Vars and drop inner ones", "[autodiff]") {
  ml::Tape<double> outer;
  const auto x = outer.leaf(Tensor<double>::scalar(3.0));
  const auto y = x * x;
  ml::Var<double> inner_var;
  {
    ml::Tape<double> inner;
    inner_var = y * x;  // inner scopes may use outer Vars
    CHECK(ml::grad(inner_var, {x})[0].item() == 27.0);
    ml::test::check_throws<ml::StateError>([&] { outer.reset(); }, {"inner Tape"});
  }
  CHECK_THROWS_AS(inner_var.item(), ml::StateError);
  CHECK(y.item() == 9.0);
  CHECK(ml::grad(y, {x})[0].item() == 6.0);
}

TEST_CASE("Tape: constants, detach and no-grad scopes stop gradients", "[autodiff]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>::scalar(2.0));
  const auto c = tape.constant(Tensor<double>::scalar(5.0));
  CHECK_FALSE(c.requires_grad());
  CHECK(ml::grad(x * c, {x})[0].item() == 5.0);
  // d/dx [x * detach(x)] = detach(x) = 2, not 2x = 4.
  CHECK(ml::grad(x * ml::detach(x), {x})[0].item() == 2.0);
  ml::Var<double> z;
  {
    ml::NoGradGuard<double> no_grad;
    z = ml::exp(x);
  }
  CHECK_FALSE(z.requires_grad());
  CHECK(z.item() == Approx(std::exp(2.0)));
  ml::test::check_throws<ml::InvalidArgument>([&] { (void)ml::grad(z, {x}); },
                                              {"metalearn::grad", "input 0", "not used"});
}

TEST_CASE("Tape: ops without an active tape are an error", "[autodiff][error]") {
  auto& storage = ml::detail::thread_tape<double>();
  REQUIRE_FALSE(storage.active());
  ml::test::check_throws<ml::StateError>(
      [&] { (void)storage.push(ml::detail::exp_rule<double>, Shape{}, nullptr, 0); },
      {"metalearn::exp", "no active Tape"});
}

TEST_CASE("Tape: each thread records on its own tape", "[autodiff]") {
  std::vector<double> results(2, 0.0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([t, &results] {
      ml::Tape<double> tape;
      const auto x = tape.leaf(Tensor<double>::scalar(1.0 + t));
      double total = 0;
      for (int i = 0; i < 200; ++i) total += ml::grad(x * x * x, {x})[0].item();
      results[t] = total;
    });
  for (auto& th : threads) th.join();
  CHECK(results[0] == 200 * 3.0);
  CHECK(results[1] == 200 * 12.0);
}

namespace {
// One training step of an MLP 1-40-40-1 on 10 points: loss, gradient (no create_graph),
// everything through the tape. Returns the loss.
double mlp_step(ml::Tape<double>& tape, const std::vector<Tensor<double>>& params,
                const Tensor<double>& x, const Tensor<double>& y, std::vector<ml::Var<double>>& w,
                std::vector<ml::Var<double>>& g) {
  tape.reset();
  tape.leaves(params, w);
  auto h = ml::relu(ml::matmul(tape.constant(x), w[0]) + w[1]);
  h = ml::relu(ml::matmul(h, w[2]) + w[3]);
  const auto loss = ml::mse(ml::matmul(h, w[4]) + w[5], tape.constant(y));
  ml::grad(loss, w, g);
  return loss.item();
}
}  // namespace

TEST_CASE("Tape: a warm training loop allocates nothing", "[autodiff][memory]") {
  auto rng = ml::test::make_rng(21);
  const std::vector<Tensor<double>> params = {
      ml::test::uniform(rng, {1, 40}, -1, 1),      ml::test::uniform(rng, {40}, -1, 1),
      ml::test::uniform(rng, {40, 40}, -0.3, 0.3), ml::test::uniform(rng, {40}, -1, 1),
      ml::test::uniform(rng, {40, 1}, -0.3, 0.3),  ml::test::uniform(rng, {1}, -1, 1)};
  const auto x = ml::test::uniform(rng, {10, 1}, -5, 5), y = ml::test::uniform(rng, {10, 1});
  ml::Tape<double> tape;
  std::vector<ml::Var<double>> w, g;
  for (int warm = 0; warm < 3; ++warm) mlp_step(tape, params, x, y, w, g);
  const std::size_t arena_chunks = tape.arena_allocations();
  const std::size_t before = ml::test::thread_allocations();
  for (int step = 0; step < 50; ++step) mlp_step(tape, params, x, y, w, g);
  CHECK(ml::test::thread_allocations() - before == 0);
  CHECK(tape.arena_allocations() == arena_chunks);
  // Resetting returned the memory to the arena: the node count is back to one step's worth.
  const auto nodes_one_step = tape.size();
  mlp_step(tape, params, x, y, w, g);
  CHECK(tape.size() == nodes_one_step);
}

TEST_CASE("Tape: the arena merges its chunks when a scope ends", "[autodiff][memory]") {
  ml::detail::thread_tape<double>().release_memory();  // start cold, whatever ran before
  std::size_t chunks_after_first = 0;
  for (int round = 0; round < 3; ++round) {
    ml::Tape<double> tape;
    const auto x = tape.leaf(Tensor<double>(Shape{64, 64}, 0.5));
    auto y = x;
    for (int i = 0; i < 100; ++i) y = ml::tanh(y);  // ~3 MB: several chunks on the first round
    CHECK(ml::grad(ml::sum(y), {x}).size() == 1);
    if (round == 0)
      chunks_after_first = tape.arena_allocations();
    else
      CHECK(tape.arena_allocations() == chunks_after_first + 1);  // one merged chunk, once
  }
}

TEST_CASE("Arena: the peak counts bytes in use, rewinds give memory back", "[autodiff][memory]") {
  ml::detail::Arena arena;
  (void)arena.allocate(100);  // rounded to 128
  CHECK(arena.peak() == 128);
  const auto mark = arena.mark();
  (void)arena.allocate(1000);  // 1,024
  CHECK(arena.peak() == 128 + 1024);
  arena.rewind(mark);
  (void)arena.allocate(640);  // fits where the 1,024 were: no new peak
  CHECK(arena.peak() == 128 + 1024);
  // Past the first chunk (64 KiB): a second one; the first counts whole, its tail held.
  (void)arena.allocate(std::size_t{1} << 17);
  CHECK(arena.capacity() == (std::size_t{1} << 16) + (std::size_t{1} << 17));
  CHECK(arena.peak() == arena.capacity());
  arena.rewind(mark);
  (void)arena.allocate(64);
  CHECK(arena.peak() == arena.capacity());
  arena.release();
  CHECK(arena.peak() == 0);
}

TEST_CASE("Tape: convolution scratch is given back when the call returns", "[autodiff][memory]") {
  ml::detail::thread_tape<float>().release_memory();
  ml::Tape<float> tape;
  // 16 channels in and out, 8x8 maps: the Winograd path, whose transforms need scratch
  // several times the output's size; then the im2col path (3 input channels).
  for (const std::int64_t c : {16, 3}) {
    INFO("input channels " << c);
    const auto x = tape.constant(Tensor<float>(Shape{4, c, 8, 8}, 0.5f));
    const auto w = tape.constant(Tensor<float>(Shape{16, c, 3, 3}, 0.1f));
    (void)ml::conv2d(x, w, {1, 1});
    const std::size_t after_one = tape.bytes_peak();
    for (int i = 0; i < 100; ++i) (void)ml::conv2d(x, w, {1, 1});
    // Each further call keeps only its output (4 x 16 x 8 x 8 floats = 16 KiB), plus the
    // unused chunk tails left when the arena grows (under 512 KiB here). Kept scratch would
    // add 43 KiB (im2col) or over 128 KiB (Winograd) a call: 4.2 MiB or more.
    CHECK(tape.bytes_peak() - after_one <= 100 * (16 * 1024 + 64) + 512 * 1024);
  }
}

TEST_CASE("grad: a sweep that is not recorded frees each value once consumed",
          "[autodiff][memory]") {
  auto rng = ml::test::make_rng(22);
  ml::detail::thread_tape<double>().release_memory();
  ml::Tape<double> tape;
  // Values of 128 KiB: pooled (the pool takes values of 64 KiB or more).
  const auto x0 = ml::test::uniform(rng, {128, 128}, -1, 1);
  const auto x = tape.leaf(x0);
  auto y = x;
  for (int i = 0; i < 60; ++i) y = ml::tanh(y * 1.01);
  const auto loss = ml::sum(y);
  const std::size_t before = tape.bytes_peak();
  // The forward values, measured from a fresh start: one per link (tanh reads its output;
  // scale reads nothing, so its outputs are freed as the loop goes: two per link before
  // every op declared what it reads).
  REQUIRE(before > 60 * 128 * 1024);
  const auto g = ml::grad(loss, {x})[0];
  // Unpooled, the sweep kept ~5 values per link (60 x 5 x 128 KiB = 37 MiB); pooled, a few.
  CHECK(tape.bytes_peak() - before < 2 * 1024 * 1024);
  // The same values as the recorded sweep (which keeps everything).
  const auto recorded = ml::grad(loss, {x}, {true})[0];
  for (std::int64_t i = 0; i < x0.numel(); ++i)
    CHECK_THAT(g.value()[i], WithinAbs(recorded.value()[i], 1e-12));
  // The result outlives the sweep's freed values, and the tape keeps recording after it.
  const auto again = ml::sum(g * g);
  CHECK(std::isfinite(again.item()));
  CHECK(ml::grad(again, {x}, {false, true})[0].value()[0] == 0.0);  // g is a constant
}

namespace {
template <class Scalar>
void throwing_backward(ml::detail::BackwardContext<Scalar>&) {
  throw std::runtime_error("backward failed");
}
}  // namespace

TEST_CASE("grad: a backward rule that throws leaves the tape recording normally",
          "[autodiff][memory][error]") {
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>(Shape{128, 128}, 0.5));
  static const ml::detail::OpRule<double> boom_rule{"boom", &throwing_backward<double>,
                                                    ml::detail::reads_nothing};
  auto boom = ml::detail::record(boom_rule, x.shape(), {x});
  std::copy_n(x.value().data(), x.numel(), boom.data);
  const auto y = ml::sum(ml::tanh(boom.var));
  CHECK_THROWS_AS(ml::grad(y, {x}), std::runtime_error);
  // The sweep's adjoints were let go (nothing stays held by its scratch).
  CHECK(ml::detail::thread_tape<double>().adjoint_scratch().empty());
  // A large value recorded now lives in the arena: later sweeps cannot reuse its memory.
  const auto kept = ml::tanh(x * 2.0);
  const double first = kept.value()[0];
  for (int i = 0; i < 3; ++i) (void)ml::grad(ml::sum(ml::tanh(x * 3.0)), {x});
  CHECK(kept.value()[0] == first);
}

TEST_CASE("Tape: release_memory gives back the sweep pool too", "[autodiff][memory]") {
  {
    ml::Tape<double> tape;
    const auto x = tape.leaf(Tensor<double>(Shape{128, 128}, 0.5));
    (void)ml::grad(ml::sum(ml::tanh(ml::tanh(x))), {x});  // 128 KiB values: pooled
    CHECK(tape.bytes_peak() > 0);
  }
  ml::detail::thread_tape<double>().release_memory();
  const ml::Tape<double> probe;
  CHECK(probe.bytes_peak() == 0);
  CHECK(probe.bytes_reserved() == 0);
}

TEST_CASE("BlockPool: counted blocks, the smallest free block up to twice the size, rewind",
          "[autodiff][memory]") {
  ml::detail::BlockPool pool;
  const auto a = pool.allocate(1000);  // rounded up to 1024, counted by its holders
  void* const first = pool.data(a);
  CHECK(pool.held() == 1024);
  pool.retain(a);                // its Var
  pool.retain(a);                // a backward rule reads it
  CHECK_FALSE(pool.release(a));  // its Var lets go: still read
  CHECK(pool.release(a));        // nothing counts it: freed
  CHECK(pool.data(a) == nullptr);
  const auto b = pool.allocate(600);  // 640: the free 1024 block fits (<= 2x)
  CHECK(pool.data(b) == first);
  CHECK(pool.held() == 1024);
  const auto c = pool.allocate(300);  // 320: nothing free, a new block
  pool.retain(c);
  CHECK(pool.held() == 1024 + 320);
  CHECK(pool.release(c));
  (void)pool.allocate(100);  // 128: the free 320 block is over twice that
  CHECK(pool.held() == 1024 + 320 + 128);
  // Rewind frees everything made since the mark, whatever counts it.
  const std::size_t mark = pool.mark();
  const auto f = pool.allocate(300);  // takes the free 320 block
  for (int k = 0; k < 3; ++k) pool.retain(f);
  void* const reused = pool.data(f);
  pool.rewind(mark);
  CHECK(pool.mark() == mark);
  CHECK(pool.data(pool.allocate(300)) == reused);
  CHECK(pool.held() == 1024 + 320 + 128);
}

namespace {
// Reads its input's value although its op declares that it keeps only its output.
template <class Scalar>
void reads_undeclared_input(ml::detail::BackwardContext<Scalar>& c) {
  (void)c.input(0).value();
  c.grad_inputs[0] = c.grad_output;
}
}  // namespace

TEST_CASE("backward rules: reading a value the op does not declare throws, naming both ops",
          "[autodiff][memory][error]") {
  static const ml::detail::OpRule<double> sneaky{"sneaky", &reads_undeclared_input<double>,
                                                 ml::detail::reads_output};
  for (const std::int64_t side : {4, 64}) {  // arena values and blocks of their own
    ml::Tape<double> tape;
    const auto x = tape.leaf(Tensor<double>(Shape{4, 4, side, side}, 0.5));
    ml::Var<double> out;
    {
      const auto pooled = ml::max_pool2d(x, 1, 1);  // its own rule reads no value
      auto r = ml::detail::record(sneaky, pooled.shape(), {pooled});
      std::copy_n(pooled.value().data(), pooled.numel(), r.data);
      out = r.var;
    }
    for (const bool create_graph : {false, true}) {
      try {
        (void)ml::grad(ml::sum(out), {x}, {create_graph});
        FAIL("no exception");
      } catch (const ml::StateError& e) {
        CHECK_THAT(e.what(), Catch::Matchers::Contains("'sneaky'") &&
                                 Catch::Matchers::Contains("'max_pool2d'") &&
                                 Catch::Matchers::Contains("does not declare"));
      }
    }
    // Nothing stays sealed after the throw: the tape's values read normally.
    CHECK(out.value()[0] == 0.5);
  }
}

namespace {
// A user-defined op, cube(x) = x^3, with both rules (docs/autodiff.md, "Writing an op").
template <class S>
void cube_backward(ml::detail::BackwardContext<S>& c) {  // differentiable: g 3 x^2
  c.grad_inputs[0] = c.grad_output * (ml::square(c.input(0)) * 3.0);
}
template <class S, int Factor>
void cube_fused_backward(ml::detail::BackwardContext<S>& c) {  // plain loop: g Factor x^2
  const S* x = c.input(0).value().data();
  const S* g = c.grad_output.value().data();
  auto dx = ml::detail::record_constant(c.grad_output, c.grad_output.shape());
  const std::int64_t n = c.grad_output.numel();
  for (std::int64_t i = 0; i < n; ++i) dx.data[i] = g[i] * S(Factor) * x[i] * x[i];
  c.grad_inputs[0] = dx.var;
}
template <class S, int Factor>
inline const ml::detail::OpRule<S> cube_rule{"cube", &cube_backward<S>, ml::detail::reads_input(0),
                                             &cube_fused_backward<S, Factor>};
template <int Factor>
ml::Var<double> cube(const ml::Var<double>& x) {
  auto out = ml::detail::record(cube_rule<double, Factor>, x.shape(), {x});
  for (std::int64_t i = 0; i < x.numel(); ++i) out.data[i] = std::pow(x.value()[i], 3.0);
  return out.var;
}
}  // namespace

TEST_CASE("OpRule: gradcheck runs an op's differentiable and fused rules", "[autodiff][grad]") {
  auto rng = ml::test::make_rng(61);
  const auto x = ml::test::uniform(rng, {3, 4}, -1.5, 1.5);
  const auto right = [](const std::vector<ml::Var<double>>& v) { return cube<3>(v[0]); };
  ml::test::check_gradients(right, {x});
  ml::test::check_second_order(right, {x});
  // A fused rule that disagrees with the differentiable one fails the same first-order
  // check: the unrecorded sweep runs it.
  const auto wrong = [](const std::vector<ml::Var<double>>& v) { return cube<2>(v[0]); };
  const ml::GradcheckResult r = ml::gradcheck(wrong, {x});
  CHECK_FALSE(r.ok);
  CHECK_THAT(r.message, Catch::Matchers::Contains("element"));
}

namespace {
struct Stored {
  double value;
};
struct Other {
  double value;
};
template <class S>
void reads_other_attrs(ml::detail::BackwardContext<S>& c) {
  (void)ml::detail::attrs_of<Other>(c);
  c.grad_inputs[0] = c.grad_output;
}
}  // namespace

TEST_CASE("NodeAttrs: typed; a rule reading another type than its op stored throws",
          "[autodiff][error]") {
  static const ml::detail::OpRule<double> rule{"typed", &reads_other_attrs<double>,
                                               ml::detail::reads_nothing};
  ml::Tape<double> tape;
  const auto x = tape.leaf(Tensor<double>(Shape{2}, 1.0));
  auto out = ml::detail::record(rule, x.shape(), {x}, ml::detail::NodeAttrs::of(Stored{2.5}));
  std::copy_n(x.value().data(), 2, out.data);
  CHECK(ml::detail::thread_tape<double>().node(out.var.index()).attrs.as<Stored>("typed").value ==
        2.5);
  ml::test::check_throws<ml::StateError>([&] { (void)ml::grad(ml::sum(out.var), {x}); },
                                         {"metalearn::typed", "another type"});
}
